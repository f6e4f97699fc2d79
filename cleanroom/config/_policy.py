"""A table owner's policy (TOML), modelled on AWS Clean Rooms analysis rules in snake_case.

    analysis_rule             "aggregation" | "list"
    join_columns              token columns usable to link records; never output
    dimension_columns         attribute columns that may be selected, grouped by, filtered on
    aggregate_columns         [{columns = [...], functions = ["SUM", "AVG", ...],
                               bounds = [lo, hi]}]  (bounds: public clamping bounds, needed
                               for SUM/AVG in differential mode; optional otherwise)
    output_constraints        [{column = "entity_id", type = "COUNT_DISTINCT", minimum = n}]
    join_required             "query_runner": the querier's own table must be in the join
    scalar_functions          scalar functions allowed on dimensions (AWS list)
    list_columns              list rule: columns that may be listed
    disallowed_output_columns never in a final projection
    allowed_result_receivers  members allowed to receive results (absent: every receiver)
    allowed_join_operators    ["AND"] (default) or ["AND", "OR"]
    user_contribution_limit   differential mode: records per person per query (default 1)
    public_keys               differential mode: {column = [values...]}: a dimension's values
                              that are public, so its groups are released without DP
                              partition selection (every listed value, even an empty one)

`Policy.from_path` checks syntax and values; `Policy.check_against` checks the policy against
the token file's manifest and the collaboration's members. Every problem is a ConfigError
naming the file, the key and the reason. `EffectivePolicy.combine` applies "most restrictive
wins" where several tables meet: the highest minimum, intersected allow-lists, union of bans.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from protocols import ConfigError, Manifest

from ._names import valid_name

AnalysisRule = Literal["aggregation", "list"]
AggregateFunction = Literal["SUM", "SUM_DISTINCT", "COUNT", "COUNT_DISTINCT", "AVG"]
ScalarFunction = Literal[
    "ABS", "CAST", "CEILING", "COALESCE", "CONVERT", "CURRENT_DATE", "DATEADD", "EXTRACT",
    "FLOOR", "GETDATE", "LN", "LOG", "LOWER", "ROUND", "RTRIM", "SQRT", "SUBSTRING", "TO_CHAR",
    "TO_DATE", "TO_NUMBER", "TO_TIMESTAMP", "TRIM", "TRUNC", "UPPER",
]
JoinOperator = Literal["AND", "OR"]
JoinRequired = Literal["query_runner"]
ConstraintType = Literal["COUNT_DISTINCT"]
ENTITY_COLUMN = "entity_id"
AGGREGATE_FUNCTIONS: tuple[str, ...] = get_args(AggregateFunction)
SCALAR_FUNCTIONS: tuple[str, ...] = get_args(ScalarFunction)
MINIMUM_RANGE = (2, 100_000)

_KEYS = {
    "analysis_rule", "join_columns", "dimension_columns", "aggregate_columns",
    "output_constraints", "join_required", "scalar_functions", "list_columns",
    "disallowed_output_columns", "allowed_result_receivers", "allowed_join_operators",
    "user_contribution_limit", "public_keys",
}
CONTRIBUTION_LIMIT_RANGE = (1, 1000)
PublicValue = str | int | float | bool


@dataclass(frozen=True)
class AggregateColumns:
    """Columns that may be aggregated, and with which functions."""

    columns: tuple[str, ...]
    functions: tuple[AggregateFunction, ...]
    bounds: tuple[float, float] | None = None
    file: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        key = "aggregate_columns"
        if not self.columns or not self.functions:
            raise ConfigError("each entry needs non-empty 'columns' and 'functions'",
                              file=self.file, key=key)
        if self.bounds is not None:
            b = self.bounds
            if not (isinstance(b, tuple) and len(b) == 2 and all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    for v in b) and b[0] <= b[1]):
                raise ConfigError(f"bounds must be [lo, hi]: two finite numbers with lo <= hi, "
                                  f"not {list(b) if isinstance(b, tuple) else b!r}",
                                  file=self.file, key=key)
            object.__setattr__(self, "bounds", (float(b[0]), float(b[1])))
        for f in self.functions:
            if f not in AGGREGATE_FUNCTIONS:
                raise ConfigError(f"unknown function {f!r} (allowed: "
                                  f"{', '.join(AGGREGATE_FUNCTIONS)})", file=self.file, key=key)


@dataclass(frozen=True)
class OutputConstraint:
    """Every output row must stand for at least `minimum` distinct values of `column`."""

    column: str
    type: ConstraintType
    minimum: int
    file: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        key = "output_constraints"
        if self.column != ENTITY_COLUMN:
            raise ConfigError(f"column must be {ENTITY_COLUMN!r} (the resolved person), "
                              f"not {self.column!r}", file=self.file, key=key)
        if self.type != "COUNT_DISTINCT":
            raise ConfigError(f"type must be 'COUNT_DISTINCT', not {self.type!r}",
                              file=self.file, key=key)
        lo, hi = MINIMUM_RANGE
        if isinstance(self.minimum, bool) or not isinstance(self.minimum, int) \
                or not lo <= self.minimum <= hi:
            raise ConfigError(f"minimum must be an integer from {lo} to {hi}, "
                              f"not {self.minimum!r}", file=self.file, key=key)


@dataclass(frozen=True)
class Policy:
    """One table's analysis rule, as its owner wrote it."""

    analysis_rule: AnalysisRule
    join_columns: tuple[str, ...]
    dimension_columns: tuple[str, ...] = ()
    aggregate_columns: tuple[AggregateColumns, ...] = ()
    output_constraints: tuple[OutputConstraint, ...] = ()
    join_required: JoinRequired | None = None
    scalar_functions: tuple[ScalarFunction, ...] = ()
    list_columns: tuple[str, ...] = ()
    disallowed_output_columns: tuple[str, ...] = ()
    allowed_result_receivers: tuple[str, ...] | None = None
    allowed_join_operators: tuple[JoinOperator, ...] = ("AND",)
    user_contribution_limit: int | None = None
    public_keys: tuple[tuple[str, tuple[PublicValue, ...]], ...] = ()
    file: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        f = self.file
        if self.analysis_rule not in get_args(AnalysisRule):
            raise ConfigError(f"must be 'aggregation' or 'list', not {self.analysis_rule!r}",
                              file=f, key="analysis_rule")
        if not self.join_columns:
            raise ConfigError("at least one join column is required", file=f, key="join_columns")
        for key in ("join_columns", "dimension_columns", "list_columns",
                    "disallowed_output_columns"):
            for name in getattr(self, key):
                if not valid_name(name):
                    raise ConfigError(f"{name!r} is not a valid column name", file=f, key=key)
                if name == ENTITY_COLUMN:
                    raise ConfigError(f"{ENTITY_COLUMN!r} is reserved for the engine",
                                      file=f, key=key)
        for entry in self.aggregate_columns:
            for name in entry.columns:
                if not valid_name(name) or name == ENTITY_COLUMN:
                    raise ConfigError(f"{name!r} is not a valid column name",
                                      file=f, key="aggregate_columns")
        both = sorted(set(self.join_columns) & set(self.dimension_columns))
        if both:
            raise ConfigError(f"join column {both[0]!r} is also a dimension column; join "
                              "columns are never output", file=f, key="dimension_columns")
        for key in ("aggregate_columns", "list_columns"):
            cols = self.aggregated_columns() if key == "aggregate_columns" else self.list_columns
            bad = sorted(set(cols) & set(self.join_columns))
            if bad:
                raise ConfigError(f"join column {bad[0]!r} cannot be listed or aggregated "
                                  "directly", file=f, key=key)
        if self.join_required not in (None, "query_runner"):
            raise ConfigError(f"must be 'query_runner' or absent, not {self.join_required!r}",
                              file=f, key="join_required")
        for s in self.scalar_functions:
            if s not in SCALAR_FUNCTIONS:
                raise ConfigError(f"unknown scalar function {s!r}", file=f,
                                  key="scalar_functions")
        if not self.allowed_join_operators or any(
                op not in ("AND", "OR") for op in self.allowed_join_operators):
            raise ConfigError("must be a non-empty subset of ['AND', 'OR']", file=f,
                              key="allowed_join_operators")
        self._check_privacy_keys()
        if self.analysis_rule == "aggregation":
            if not self.aggregate_columns:
                raise ConfigError("the aggregation rule needs at least one entry", file=f,
                                  key="aggregate_columns")
            if not self.output_constraints:
                raise ConfigError("the aggregation rule needs a minimum: "
                                  "[{column = \"entity_id\", type = \"COUNT_DISTINCT\", "
                                  "minimum = n}]", file=f, key="output_constraints")
            if self.list_columns:
                raise ConfigError("list_columns belongs to the list rule", file=f,
                                  key="list_columns")
        else:
            if not self.list_columns:
                raise ConfigError("the list rule needs at least one list column", file=f,
                                  key="list_columns")
            for key in ("dimension_columns", "aggregate_columns", "output_constraints"):
                if getattr(self, key):
                    raise ConfigError(f"{key} belongs to the aggregation rule", file=f, key=key)

    def _check_privacy_keys(self) -> None:
        """user_contribution_limit, public_keys and per-column bounds are consistent."""
        f = self.file
        limit = self.user_contribution_limit
        lo, hi = CONTRIBUTION_LIMIT_RANGE
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or not lo <= limit <= hi):
            raise ConfigError(f"must be an integer from {lo} to {hi}, not {limit!r}", file=f,
                              key="user_contribution_limit")
        for column, values in self.public_keys:
            key = f"public_keys.{column}"
            if column not in self.dimension_columns:
                raise ConfigError("only a dimension column can have public values", file=f,
                                  key=key)
            if not values or any(isinstance(v, float) and not math.isfinite(v) or
                                 not isinstance(v, PublicValue) for v in values):
                raise ConfigError("must be a non-empty list of plain values (text, numbers, "
                                  "true/false)", file=f, key=key)
            if len(set(values)) != len(values):
                raise ConfigError("a value is listed twice", file=f, key=key)
        for column in self.aggregated_columns():
            given = {e.bounds for e in self.aggregate_columns
                     if column in e.columns and e.bounds is not None}
            if len(given) > 1:
                raise ConfigError(f"{column!r} has different bounds in two entries", file=f,
                                  key="aggregate_columns")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, file: str | None = None) -> Policy:
        """Build a policy from parsed TOML, refusing unknown keys and wrong types."""
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ConfigError(f"unknown key (allowed: {', '.join(sorted(_KEYS))})", file=file,
                              key=unknown[0])
        if "analysis_rule" not in data:
            raise ConfigError("missing (\"aggregation\" or \"list\")", file=file,
                              key="analysis_rule")
        rule = _str(data["analysis_rule"], file, "analysis_rule")
        aggs = tuple(_aggregate(e, file) for e in _list(data.get("aggregate_columns", []),
                                                        file, "aggregate_columns"))
        cons = tuple(_constraint(e, file) for e in _list(data.get("output_constraints", []),
                                                         file, "output_constraints"))
        receivers = data.get("allowed_result_receivers")
        jr = data.get("join_required")
        return cls(
            analysis_rule=cast(AnalysisRule, rule),
            join_columns=_names(data.get("join_columns", []), file, "join_columns"),
            dimension_columns=_names(data.get("dimension_columns", []), file,
                                     "dimension_columns"),
            aggregate_columns=aggs,
            output_constraints=cons,
            join_required=None if jr is None else cast(
                JoinRequired, _str(jr, file, "join_required").lower()),
            scalar_functions=cast(tuple[ScalarFunction, ...], tuple(s.upper() for s in _names(
                data.get("scalar_functions", []), file, "scalar_functions"))),
            list_columns=_names(data.get("list_columns", []), file, "list_columns"),
            disallowed_output_columns=_names(data.get("disallowed_output_columns", []), file,
                                             "disallowed_output_columns"),
            allowed_result_receivers=None if receivers is None else _names(
                receivers, file, "allowed_result_receivers"),
            allowed_join_operators=cast(tuple[JoinOperator, ...], tuple(s.upper() for s in _names(
                data.get("allowed_join_operators", ["AND"]), file, "allowed_join_operators"))),
            user_contribution_limit=data.get("user_contribution_limit"),
            public_keys=_public_keys(data.get("public_keys", {}), file),
            file=file,
        )

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Policy:
        """Read and validate a policy TOML file."""
        name = os.fspath(path)
        return cls.from_dict(read_toml(name), file=name)

    # -- questions ------------------------------------------------------------------------
    @property
    def minimum(self) -> int | None:
        """The minimum number of distinct people behind every output row (None: list rule)."""
        if not self.output_constraints:
            return None
        return max(c.minimum for c in self.output_constraints)

    def aggregated_columns(self) -> tuple[str, ...]:
        """Every column named in aggregate_columns, in order, without repeats."""
        return tuple(dict.fromkeys(c for e in self.aggregate_columns for c in e.columns))

    def bounds_for(self, column: str) -> tuple[float, float] | None:
        """The public clamping bounds of an aggregate column, if its owner gave them."""
        return next((e.bounds for e in self.aggregate_columns
                     if column in e.columns and e.bounds is not None), None)

    def public_values(self, column: str) -> tuple[PublicValue, ...] | None:
        """The declared public values of a dimension column (None: its values are private)."""
        return dict(self.public_keys).get(column)

    def functions_for(self, column: str) -> tuple[str, ...]:
        """The aggregate functions allowed on `column` (empty if none)."""
        return tuple(dict.fromkeys(f for e in self.aggregate_columns if column in e.columns
                                   for f in e.functions))

    def analyst_columns(self) -> tuple[str, ...]:
        """Attribute columns an analyst may touch at all (never a join/token column)."""
        cols = self.dimension_columns + self.aggregated_columns() + self.list_columns
        return tuple(dict.fromkeys(cols))

    def receives(self, member: str) -> bool:
        """Whether `member` may receive results computed on this table."""
        return self.allowed_result_receivers is None or member in self.allowed_result_receivers

    def check_against(self, manifest: Manifest, members: Collection[str]) -> None:
        """Check the policy against its token file's manifest and the collaboration members."""
        f = self.file
        for col in self.join_columns:
            if col not in manifest.identifiers:
                raise ConfigError(f"{col!r} is not a token column of the token file "
                                  f"(has: {', '.join(sorted(manifest.identifiers)) or 'none'})",
                                  file=f, key="join_columns")
        for key, cols in (("dimension_columns", self.dimension_columns),
                          ("aggregate_columns", self.aggregated_columns()),
                          ("list_columns", self.list_columns)):
            for col in cols:
                if col in manifest.identifiers:
                    raise ConfigError(f"{col!r} is a token column; tokens are never output "
                                      "or aggregated", file=f, key=key)
                if col not in manifest.attributes:
                    raise ConfigError(f"{col!r} is not an attribute column of the token file "
                                      f"(has: {', '.join(sorted(manifest.attributes)) or 'none'})",
                                      file=f, key=key)
        for member in self.allowed_result_receivers or ():
            if member not in members:
                raise ConfigError(f"{member!r} is not a member of the collaboration", file=f,
                                  key="allowed_result_receivers")


@dataclass(frozen=True)
class EffectivePolicy:
    """What applies where several tables meet: the most restrictive of their policies."""

    tables: tuple[str, ...]
    minimum: int | None
    dimension_columns: Mapping[str, tuple[str, ...]]
    aggregate_functions: Mapping[str, Mapping[str, tuple[str, ...]]]
    scalar_functions: tuple[str, ...]
    allowed_join_operators: tuple[str, ...]
    disallowed_output_columns: Mapping[str, tuple[str, ...]]
    allowed_result_receivers: tuple[str, ...] | None
    join_required: tuple[str, ...]

    @classmethod
    def combine(cls, policies: Mapping[str, Policy]) -> EffectivePolicy:
        """Combine table policies: highest minimum, intersected allow-lists, union of bans."""
        if not policies:
            raise ConfigError("no tables given")
        names = tuple(policies)
        mins = [p.minimum for p in policies.values() if p.minimum is not None]
        receivers: set[str] | None = None
        for p in policies.values():
            if p.allowed_result_receivers is not None:
                r = set(p.allowed_result_receivers)
                receivers = r if receivers is None else receivers & r
        return cls(
            tables=names,
            minimum=max(mins) if mins else None,
            dimension_columns={t: tuple(c for c in p.dimension_columns
                                        if c not in p.disallowed_output_columns)
                               for t, p in policies.items()},
            aggregate_functions={t: {c: p.functions_for(c) for c in p.aggregated_columns()}
                                 for t, p in policies.items()},
            scalar_functions=_intersect(p.scalar_functions for p in policies.values()),
            allowed_join_operators=_intersect(p.allowed_join_operators
                                              for p in policies.values()),
            disallowed_output_columns={t: p.disallowed_output_columns
                                       for t, p in policies.items()},
            allowed_result_receivers=None if receivers is None else tuple(sorted(receivers)),
            join_required=tuple(t for t, p in policies.items()
                                if p.join_required == "query_runner"),
        )


def _intersect(lists: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """Items present in every list, in the order of the first."""
    lists = list(lists)
    common = set(lists[0]).intersection(*map(set, lists[1:])) if lists else set()
    return tuple(x for x in lists[0] if x in common) if lists else ()


def read_toml(name: str) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a ConfigError naming it."""
    try:
        with open(name, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("file not found", file=name) from None
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror})", file=name) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=name) from None


def _str(value: Any, file: str | None, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"must be a string, not {type(value).__name__}", file=file, key=key)
    return value


def _list(value: Any, file: str | None, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"must be a list, not {type(value).__name__}", file=file, key=key)
    return value


def _names(value: Any, file: str | None, key: str) -> tuple[str, ...]:
    items = tuple(_str(v, file, key) for v in _list(value, file, key))
    dup = sorted({v for v in items if items.count(v) > 1})
    if dup:
        raise ConfigError(f"{dup[0]!r} is listed twice", file=file, key=key)
    return items


def _table(value: Any, file: str | None, key: str, keys: set[str],
           optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError("each entry must be a table {...}", file=file, key=key)
    unknown = sorted(set(value) - keys - optional)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} (allowed: "
                          f"{', '.join(sorted(keys | optional))})", file=file, key=key)
    missing = sorted(keys - set(value))
    if missing:
        raise ConfigError(f"missing key {missing[0]!r}", file=file, key=key)
    return value


def _aggregate(value: Any, file: str | None) -> AggregateColumns:
    key = "aggregate_columns"
    d = _table(value, file, key, {"columns", "functions"}, frozenset({"bounds"}))
    bounds = d.get("bounds")
    if bounds is not None and not isinstance(bounds, list):
        raise ConfigError(f"bounds must be [lo, hi], not {bounds!r}", file=file, key=key)
    return AggregateColumns(
        columns=_names(d["columns"], file, key),
        functions=cast(tuple[AggregateFunction, ...],
                       tuple(f.upper() for f in _names(d["functions"], file, key))),
        bounds=None if bounds is None else tuple(bounds),
        file=file,
    )


def _public_keys(value: Any, file: str | None) -> tuple[tuple[str, tuple[PublicValue, ...]], ...]:
    """`public_keys = {column = [values...]}` as sorted pairs (validated by Policy)."""
    if not isinstance(value, dict):
        raise ConfigError("must be a table {column = [values...]}", file=file, key="public_keys")
    out = []
    for column, values in sorted(value.items()):
        if not isinstance(values, list):
            raise ConfigError("must be a list of values", file=file, key=f"public_keys.{column}")
        out.append((column, tuple(values)))
    return tuple(out)


def _constraint(value: Any, file: str | None) -> OutputConstraint:
    key = "output_constraints"
    d = _table(value, file, key, {"column", "type", "minimum"})
    return OutputConstraint(column=_str(d["column"], file, key),
                            type=cast(ConstraintType, _str(d["type"], file, key).upper()),
                            minimum=d["minimum"], file=file)
