"""Probabilistic entity resolution over token columns (Fellegi-Sunter, trained by Splink).

Input: one DuckDB table of records, each with a record key, a source (the party's table) and
token columns: per field an exact token column (`first_name`) and, where the party tokenized
with `--fuzzy`, derived-form token columns (`first_name__phonetic`, strongest first). Tokens
are opaque, so every comparison is token equality:

    null (either side)  ->  exact token agrees (term-frequency adjusted)
                        ->  form 1 agrees  ->  form 2 agrees ...  ->  else

Training is unsupervised: u by random sampling, the prior by deterministic rules with an
assumed recall, m by expectation maximisation in two or more sessions, each blocked on fields
the others estimate; above `train_max_records` records, on a seeded uniform sample of them
(see `_splink.training_sample`). Predictions come from blocking rules on pairs of token
columns, every record against every other (all sources in one table, so within and across
sources at once); the pairs scoring at least `threshold` link records into clusters
(connected components).

Blocked pairs stay in proportion to the records: a blocking key (the values of a rule of two
or more columns) shared by more than `max_block_size` records blocks none of them. Such a key
is common (a frequent name, a frequent first name born in one month) and, as the records
grow, would pair each of its records with ever more strangers that agree on nothing else;
pairs that agree on something else still meet through the other rules. Without the cap, the
pairs of the name rule grow with the square of the records (1M x 1M demo parties: 12.4M pairs
from first + last name alone; 1.9M with the cap of 10).

Tokens are compacted to 64-bit integers before Splink sees them (DuckDB `hash()` of the token,
null kept null; columns that are 64-bit integers already are taken as they are): equality
on integers joins faster than on 32-byte blobs, and two distinct tokens of one column share
a hash with probability about n^2 / 2^65 (3e-4 for 10^8 values), an
event that only adds one spurious agreement on one field.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from protocols import FORM_SEPARATOR, CleanroomBug, ConfigError

from ._scoring import TokenField
from ._splink import (
    LevelWeight,
    clusters_at,
    fit_and_score,
    level_weights,
)

#: single tokens that identify a person alone: blocked on by themselves
STRONG_IDENTIFIERS = ("email", "phone", "external_id", "maid")
#: default prediction blocking rules, kept when all their columns are present (each key of a
#: rule of two or more columns capped at `ProbabilisticOptions.max_block_size` records)
DEFAULT_BLOCKING: tuple[tuple[str, ...], ...] = (
    ("email",), ("phone",), ("external_id",), ("maid",),
    ("first_name", "last_name"),
    ("last_name", "dob"),
    ("first_name", "dob"),
    ("dob", "postal_code"),
    ("last_name", "postal_code"),
    ("first_name", "postal_code"),
    ("first_name__nickname", "last_name__phonetic", "dob__year"),
    ("last_name__soundex", "dob__swap"),
    ("first_name__phonetic", "last_name__phonetic", "dob__year_month"),
    ("first_name__initial", "last_name__phonetic", "postal_code__prefix"),
    ("street", "postal_code"),
    ("street__number_phonetic", "city__phonetic"),
    ("last_name", "street__number"),
)
#: EM sessions, in order; enough are used that every field is estimated by one of them
DEFAULT_TRAINING: tuple[tuple[str, ...], ...] = (
    ("first_name", "last_name"),
    ("dob",),
    ("postal_code",),
    ("email",),
    ("phone",),
    ("street",),
)
#: deterministic rules whose matches set the prior (with `ProbabilisticOptions.prior_recall`)
DEFAULT_DETERMINISTIC: tuple[tuple[str, ...], ...] = (
    ("first_name", "last_name", "dob"),
    ("email",), ("phone",), ("external_id",),
)


@dataclass(frozen=True)
class FieldSpec:
    """One compared field: its exact token column and its derived-form columns, strongest
    first. `term_frequency` adjusts the exact level for how common the token is, and
    `form_term_frequency` each form's level for how common the form's token is (off by
    default: on the demo and FEBRL3 it changed recall and precision by less than 0.001 and
    cost a third of the time)."""

    name: str
    exact: str
    forms: tuple[str, ...] = ()
    term_frequency: bool = True
    form_term_frequency: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.exact, *self.forms)


@dataclass(frozen=True)
class ProbabilisticOptions:
    """How to train and cluster; the defaults were measured on the benchmarks (bench/)."""

    threshold: float = 0.9
    blocking: tuple[tuple[str, ...], ...] | None = None
    training: tuple[tuple[str, ...], ...] | None = None
    deterministic: tuple[tuple[str, ...], ...] | None = None
    prior_recall: float = 0.7
    u_max_pairs: float = 5e6
    seed: int = 7
    keep_pairs_above: float = 0.5
    train_max_records: int = 300_000  # above this many records, train on a sample of them
    memory_limit: str | None = None
    threads: int | None = None
    max_block_size: int | None = 10  # blocking keys shared by more records block none of them

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError("threshold must be between 0 and 1 (exclusive)", key="threshold")
        if not 0.0 < self.prior_recall <= 1.0:
            raise ConfigError("prior_recall must be in (0, 1]", key="prior_recall")
        if not 0.0 < self.keep_pairs_above <= self.threshold:
            raise ConfigError("keep_pairs_above must be in (0, threshold]",
                              key="keep_pairs_above")
        if self.max_block_size is not None and self.max_block_size < 2:
            raise ConfigError("max_block_size must be at least 2 (or None: no cap)",
                              key="max_block_size")


@dataclass(frozen=True)
class ProbabilisticResult:
    """Clusters of records, the trained model's weights, and the scored pairs kept.

    `clusters` has columns key and source (as the input gave them) and cluster_id, an int64,
    the same for every record of one cluster and equal to no other cluster's. `pairs` holds
    the pairs scoring at least `keep_pairs_above`, by position in `clusters` (left_id,
    right_id), so `clusters_at(t)` re-clusters at another threshold without training again.
    """

    clusters: pa.Table
    pairs: pa.Table
    weights: tuple[LevelWeight, ...]
    fields: tuple[FieldSpec, ...]
    blocking: tuple[tuple[str, ...], ...]
    threshold: float
    probability_two_random_records_match: float
    timings: dict[str, float] = field(default_factory=dict)

    def clusters_at(self, threshold: float) -> pa.Table:
        """The same records clustered at another match-probability threshold."""
        labels = clusters_at(self.clusters.num_rows, self.pairs, threshold)
        return self.clusters.set_column(2, "cluster_id", pa.array(labels, pa.int64()))

    @property
    def links(self) -> int:
        """Number of scored pairs at or above the threshold."""
        prob = self.pairs.column("match_probability").to_numpy(zero_copy_only=False)
        return int((prob >= self.threshold).sum())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: what drove the links (no token, no key)."""
        return {
            "method": "probabilistic", "threshold": self.threshold,
            "probability_two_random_records_match": self.probability_two_random_records_match,
            "fields": {f.name: list(f.columns) for f in self.fields},
            "blocking": [list(rule) for rule in self.blocking],
            "weights": [w.to_dict() for w in self.weights],
            "records": self.clusters.num_rows, "links": self.links,
            "timings": dict(self.timings),
        }


def fields_from_columns(columns: Sequence[str], *,
                        exclude: Sequence[str] = ()) -> tuple[FieldSpec, ...]:
    """Group token columns into fields: `kind` is the exact column, `kind__form` its forms in
    the order given (the tokenizer writes them strongest first). Forms without their exact
    column are ignored; strong identifiers (email, phone, ...) get no term-frequency
    adjustment (their tokens are nearly all unique)."""
    skip = set(exclude)
    names = [c for c in columns if c not in skip]
    exact = [c for c in names if FORM_SEPARATOR not in c]
    forms: dict[str, list[str]] = {c: [] for c in exact}
    for c in names:
        kind, sep, _ = c.partition(FORM_SEPARATOR)
        if sep and kind in forms:
            forms[kind].append(c)
    return tuple(FieldSpec(c, c, tuple(forms[c]), term_frequency=c not in STRONG_IDENTIFIERS)
                 for c in exact)


def resolve_probabilistic(con: duckdb.DuckDBPyConnection, table: str | pa.Table, *,
                          key: str = "record_key", source: str = "source",
                          fields: Sequence[FieldSpec] | None = None,
                          options: ProbabilisticOptions | None = None) -> ProbabilisticResult:
    """Train a Fellegi-Sunter model on the token columns of `table` and cluster its records.

    `table` is a table or view on `con` with columns `key`, `source` and token columns (binary
    or strings), or an Arrow table of them (read in place where its token columns are 64-bit
    integers already); `fields` defaults to every other column, grouped by
    `fields_from_columns`. Splink's working tables live in a private DuckDB connection and are
    dropped with it. The same records in any order train the same model (the training records
    are picked and ordered by a hash of their key; u is estimated on a seeded sample of them).
    """
    opts = options or ProbabilisticOptions()
    if isinstance(table, pa.Table):
        types = {f.name: _INTEGERS[0] if pa.types.is_integer(f.type)
                 and f.type.bit_width == 64 else str(f.type) for f in table.schema}
    else:
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * "
                                 "FROM query_table(?))", [table]).fetchall())
    columns = list(types)
    for needed in (key, source):
        if needed not in columns:
            raise ConfigError(f"the records table has no column {needed!r}", key="key")
    specs = tuple(fields) if fields is not None else fields_from_columns(
        columns, exclude=(key, source))
    if not specs:
        raise ConfigError("no token column to compare", key="fields")
    used = list(dict.fromkeys(c for spec in specs for c in spec.columns))
    for c in used:
        if c not in columns:
            raise ConfigError(f"the records table has no token column {c!r}", key="fields")
    blocking = _present(opts.blocking or DEFAULT_BLOCKING, set(used))
    if not blocking:
        raise ConfigError("no blocking rule has all its columns among the token columns",
                          key="blocking")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    records = _token_records(con, table, key, source, used, types)
    keys = _block_keys(blocking, opts.max_block_size)
    records = _with_identity_and_keys(records, keys, opts)
    timings["prepare"] = time.perf_counter() - t0
    predict = tuple((keys[r][1],) if r in keys else r for r in blocking)
    caps = {name: opts.max_block_size for _, name in keys.values()
            if opts.max_block_size is not None}
    pairs, weights, prior, more = _train_and_score(records, specs, used, predict, caps, opts)
    timings.update(more)
    labels = clusters_at(records.num_rows, pairs, opts.threshold)
    clusters = pa.table({"key": records.column("key"), "source": records.column("source"),
                         "cluster_id": pa.array(labels, pa.int64())})
    timings["total"] = time.perf_counter() - t0
    return ProbabilisticResult(clusters, pairs, weights, specs, blocking, opts.threshold,
                               prior, timings)


_INTEGERS = ("UBIGINT", "BIGINT")  # token columns taken as 64-bit hashes already
_ONE_BATCH = 1 << 40  # rows per Arrow batch: every column in one chunk


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _token_records(con: duckdb.DuckDBPyConnection, table: str | pa.Table, key: str,
                   source: str, used: Sequence[str], types: dict[str, str]) -> pa.Table:
    """key, source and the `used` token columns as 64-bit hashes (DuckDB `hash()`, null kept
    null); an Arrow table of 64-bit columns is taken as it is (its chunks too: Arrow's
    concatenation of validity bitmaps took 28 s for 22 columns of 20M rows)."""
    if isinstance(table, pa.Table) and all(types[c] in _INTEGERS for c in used):
        return pa.table([table.column(c) for c in (key, source, *used)],
                        names=["key", "source", *used])
    name = table
    if isinstance(table, pa.Table):
        name = f"_records_{id(table)}"
        con.register(name, table)
    try:
        compact = [_q(c) if types[c] in _INTEGERS  # tokens already compacted by the caller
                   else f"CASE WHEN {_q(c)} IS NULL THEN NULL ELSE hash({_q(c)}) END AS {_q(c)}"
                   for c in used]
        return con.sql(f"SELECT {_q(key)} AS key, {_q(source)} AS source, "
                       f"{', '.join(compact)} FROM query_table($1)",
                       params=[name]).to_arrow_table(batch_size=_ONE_BATCH)
    finally:
        if isinstance(table, pa.Table):
            con.unregister(str(name))


def _with_identity_and_keys(records: pa.Table, keys: dict[tuple[str, ...], tuple[str, str]],
                            opts: ProbabilisticOptions) -> pa.Table:
    """The records with `identity` (a hash of the key: training picks its records by it) and
    one blocking-key column per rule of `keys`, appended in place (no copy of the records:
    the new columns come from a private connection that keeps the rows' order)."""
    exprs = ['hash("key") AS identity', *(sql for sql, _ in keys.values())]
    con = duckdb.connect(config={"memory_limit": opts.memory_limit} if opts.memory_limit
                         else {})
    try:
        con.execute("SET preserve_insertion_order = true")
        con.register("_records", records)
        derived = con.sql(f"SELECT {', '.join(exprs)} FROM _records").to_arrow_table(
            batch_size=_ONE_BATCH)
    finally:
        con.close()
    if derived.num_rows != records.num_rows:
        raise CleanroomBug("blocking keys: a row was lost")
    for name in derived.column_names:
        records = records.append_column(name, derived.column(name))
    return records


def _block_keys(rules: Sequence[tuple[str, ...]], cap: int | None
                ) -> dict[tuple[str, ...], tuple[str, str]]:
    """{rule: (SQL, column)}: a blocking key per rule of two or more columns, the hash of the
    rule's values (null where one is null), capped at `cap` records (`fit_and_score`'s
    `caps`). None: no keys, the rules block on their columns."""
    if cap is None:
        return {}
    out = {}
    for i, rule in enumerate(r for r in rules if len(r) > 1):
        cols = ", ".join(_q(c) for c in rule)
        known = " AND ".join(f"{_q(c)} IS NOT NULL" for c in rule)
        name = f"_block_{i}"
        out[rule] = (f"CASE WHEN {known} THEN hash({cols}) END AS {name}", name)
    return out


def _present(rules: Sequence[tuple[str, ...]], columns: set[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(rule for rule in rules if set(rule) <= columns)


def _training_rules(rules: Sequence[tuple[str, ...]],
                    specs: Sequence[FieldSpec]) -> list[tuple[str, ...]]:
    """Enough EM sessions that each field is estimated in one (not blocked on in it)."""
    chosen: list[tuple[str, ...]] = []
    missing = {s.name for s in specs}
    owner = {c: s.name for s in specs for c in s.columns}
    for rule in rules:
        blocked = {owner[c] for c in rule}
        if missing - blocked:
            chosen.append(rule)
            missing -= {s.name for s in specs} - blocked
        if not missing:
            break
    return chosen


def _comparison(spec: FieldSpec) -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    levels: list[Any] = [
        cll.NullLevel(spec.exact).configure(label_for_charts="null"),
        cll.ExactMatchLevel(spec.exact, term_frequency_adjustments=spec.term_frequency)
        .configure(label_for_charts="exact")]
    for column in spec.forms:
        label = column.partition(FORM_SEPARATOR)[2] or column
        levels.append(cll.ExactMatchLevel(column,
                                          term_frequency_adjustments=spec.form_term_frequency)
                      .configure(label_for_charts=label))
    levels.append(cll.ElseLevel().configure(label_for_charts="else"))
    return cl.CustomComparison(levels, output_column_name=spec.name)


def _train_and_score(records: pa.Table, specs: Sequence[FieldSpec], used: Sequence[str],
                     blocking: Sequence[tuple[str, ...]], caps: dict[str, int],
                     opts: ProbabilisticOptions
                     ) -> tuple[pa.Table, tuple[LevelWeight, ...], float, dict[str, float]]:
    timings: dict[str, float] = {}
    present = set(used)
    training = _training_rules(_present(opts.training or DEFAULT_TRAINING, present), specs)
    deterministic = _present(opts.deterministic or DEFAULT_DETERMINISTIC, present) or blocking
    n = records.num_rows
    # one table of every source's records, deduplicated as one: the same pairs as Splink's
    # link_and_dedupe (all pairs, within and across sources), joined on an integer id
    splink_input = records.drop_columns(["key", "source", "identity"]).add_column(
        0, "unique_id", pa.array(np.arange(n, dtype=np.int64)))
    # training picks and orders its records by their key (hashed), not by their position
    identity = np.asarray(records.column("identity"), dtype=np.uint64).view(np.int64)
    comparisons = [_comparison(s) for s in specs]
    config: dict[str, Any] = {}
    if opts.memory_limit:
        config["memory_limit"] = opts.memory_limit
    if opts.threads:
        config["threads"] = opts.threads
    pairs, model, more = fit_and_score(
        splink_input, {"link_type": "dedupe_only", "unique_id_column_name": "unique_id"},
        comparisons=comparisons, blocking=blocking, deterministic=deterministic,
        training=training, opts=opts, config=config, identity=identity,
        fields=[TokenField(s.name, s.columns) for s in specs], caps=caps)
    timings.update(more)
    prior = float(model["probability_two_random_records_match"])
    return pairs, level_weights(model), prior, timings
