"""Customer 360 before the clean room: deduplicate one party's own file, locally, in the clear.

The party's normalized identifiers (the output of `normalize`, one column per kind) go into a
Splink model (DuckDB backend) with the comparisons the clear text allows:

    first_name, last_name   exact (term-frequency adjusted) > Jaro-Winkler 0.92 / 0.88 / 0.7
    dob                     exact > one character off > within a month / a year / ten years
    postal_code             exact (tf) > same first 3 characters
    street, city, other     exact (tf) > Jaro-Winkler 0.9 / 0.8
    email, phone, state, country, gender, maid, external_id   exact

Emails are compared exactly, not by similarity of their user names: an address is often
made of the person's name (`mary.hill@...`), so two Mary Hills would agree twice on one
piece of evidence (on the demo airline's 100k rows, similarity levels took pairwise
precision from 0.99 down to 0.21).

trained unsupervised (u by random sampling, the prior from deterministic rules, m by EM) and
clustered at a match-probability threshold. Each row gets a `person_id` (the smallest row
number of its cluster: the same for every row of one person, meaningless outside this file),
which `tokenize --id external_id=person_id` then carries into the clean room.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from protocols import ConfigError

from ._splink import (
    LevelWeight,
    clusters_at,
    fit_and_score,
    level_weights,
)

NAME_KINDS = ("first_name", "last_name")
EXACT_KINDS = ("email", "phone", "state", "country", "gender", "maid", "external_id")
#: prediction blocking rules (SQL on the clear columns), kept when all columns are present
DEDUPE_BLOCKING: tuple[tuple[str, ...], ...] = (
    ("email",), ("phone",),
    ("first_name", "last_name"),
    ("last_name", "dob"),
    ("first_name", "dob"),
    ("dob", "postal_code"),
    ("last_name", "postal_code"),
    ("first_name", "postal_code"),
    ("street", "postal_code"),
    ("substr(first_name, 1, 2)", "substr(last_name, 1, 2)", "substr(dob, 1, 4)"),
    ("substr(last_name, 1, 3)", "substr(dob, 6, 5)"),
    ("substr(first_name, 1, 3)", "substr(postal_code, 1, 3)", "substr(street, 1, 3)"),
)
#: EM sessions, in order, until every field is estimated in one: blocked on the most specific
#: fields first (pairs sharing a name are often different people, which skews m estimated
#: there: on the demo brand, pairwise precision 0.69 with names first, 0.85 like this)
DEDUPE_TRAINING: tuple[tuple[str, ...], ...] = (
    ("dob",), ("postal_code",), ("first_name", "last_name"), ("email",), ("phone",),
)
DEDUPE_DETERMINISTIC: tuple[tuple[str, ...], ...] = (
    ("first_name", "last_name", "dob"), ("email",), ("phone",),
)


@dataclass(frozen=True)
class DedupeOptions:
    """Threshold and training settings of `dedupe` (defaults measured on FEBRL3, bench/)."""

    threshold: float = 0.9
    prior_recall: float = 0.7
    u_max_pairs: float = 5e6
    seed: int = 7
    keep_pairs_above: float = 0.5
    train_max_records: int = 500_000  # above this many records, train on a sample of them

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError("threshold must be between 0 and 1 (exclusive)", key="--threshold")
        if not 0.0 < self.keep_pairs_above <= self.threshold:
            raise ConfigError("keep_pairs_above must be in (0, threshold]",
                              key="keep_pairs_above")


@dataclass(frozen=True)
class DedupeSummary:
    """How much the file shrank: rows, people, and clusters by size ({size: count})."""

    rows: int
    people: int
    clusters_by_size: dict[int, int]

    @property
    def duplicate_rows(self) -> int:
        """Rows that are another row's person (rows - people)."""
        return self.rows - self.people

    @property
    def share_merged(self) -> float:
        """Share of rows merged away: the cut in profiles (duplicate_rows / rows)."""
        return self.duplicate_rows / self.rows if self.rows else 0.0

    @classmethod
    def of(cls, person_id: np.ndarray) -> DedupeSummary:
        _, sizes = np.unique(person_id, return_counts=True)
        size, count = np.unique(sizes, return_counts=True)
        return cls(int(len(person_id)), int(len(sizes)),
                   {int(s): int(c) for s, c in zip(size, count, strict=True)})

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "people": self.people, "duplicate_rows": self.duplicate_rows,
                "share_merged": self.share_merged,
                "clusters_by_size": {str(k): v for k, v in sorted(self.clusters_by_size.items())}}


@dataclass(frozen=True)
class DedupeResult:
    """A person_id per input row (int64), the summary, the model's weights and the scored
    pairs (left_id, right_id: row numbers) kept for re-clustering at another threshold."""

    person_id: pa.Array
    summary: DedupeSummary
    weights: tuple[LevelWeight, ...]
    pairs: pa.Table
    threshold: float
    timings: dict[str, float] = field(default_factory=dict)

    def person_ids_at(self, threshold: float) -> pa.Array:
        """person_id per row when clustering at another threshold."""
        return pa.array(clusters_at(len(self.person_id), self.pairs, threshold), pa.int64())


def dedupe(columns: Mapping[str, pa.Array | pa.ChunkedArray | Sequence[str | None]], *,
           options: DedupeOptions | None = None) -> DedupeResult:
    """Deduplicate rows given as {kind or column name: normalized values} (equal lengths;
    null where missing or invalid). Names that are not kinds are compared as free text."""
    opts = options or DedupeOptions()
    arrays = {name: _as_strings(values) for name, values in columns.items()}
    if not arrays:
        raise ConfigError("give at least one identifier column to deduplicate", key="--id")
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
        raise ConfigError("identifier columns have different lengths", key="--id")
    n = lengths.pop()
    for name in arrays:
        if not name.isidentifier() or name.lower() != name:
            raise ConfigError(f"column name {name!r} must be a lower-case identifier", key="--id")
    if "dob" in arrays:
        arrays["dob"] = _iso_dates(arrays["dob"])
    t0 = time.perf_counter()
    if n < 2:
        person = np.arange(n, dtype=np.int64)
        return DedupeResult(pa.array(person), DedupeSummary.of(person), (),
                            _no_pairs(), opts.threshold, {"total": 0.0})
    pairs, weights, timings = _train_and_score(arrays, n, opts)
    person = clusters_at(n, pairs, opts.threshold)
    timings["total"] = time.perf_counter() - t0
    return DedupeResult(pa.array(person, pa.int64()), DedupeSummary.of(person), weights, pairs,
                        opts.threshold, timings)


def _as_strings(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    arr = values if isinstance(values, pa.Array) else pa.array(list(values), pa.string())
    arr = arr.cast(pa.string())
    return pc.if_else(pc.equal(pc.utf8_trim_whitespace(arr), ""), pa.scalar(None, pa.string()),
                      arr)


def _iso_dates(values: pa.Array) -> pa.Array:
    """`YYYYMMDD` (meta profile) as `YYYY-MM-DD`; ISO stays as it is."""
    return pc.replace_substring_regex(values, r"^([0-9]{4})([0-9]{2})([0-9]{2})$",
                                      r"\1-\2-\3")


def _no_pairs() -> pa.Table:
    return pa.table({"left_id": pa.array([], pa.int64()), "right_id": pa.array([], pa.int64()),
                     "match_probability": pa.array([], pa.float64())})


def _comparison(name: str) -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    if name in NAME_KINDS:
        return cl.NameComparison(name).configure(term_frequency_adjustments=True)
    if name == "dob":
        return cl.DateOfBirthComparison(name, input_is_string=True, datetime_format="%Y-%m-%d")
    if name in EXACT_KINDS:
        return cl.ExactMatch(name)
    if name == "postal_code":
        return cl.CustomComparison([
            cll.NullLevel(name),
            cll.ExactMatchLevel(name, term_frequency_adjustments=True),
            cll.CustomLevel(f"substr({name}_l, 1, 3) = substr({name}_r, 1, 3)",
                            label_for_charts="same first 3 characters"),
            cll.ElseLevel()], output_column_name=name)
    return cl.JaroWinklerAtThresholds(name, [0.9, 0.8]).configure(
        term_frequency_adjustments=True)


def _rules(rules: Sequence[tuple[str, ...]], present: set[str]) -> list[tuple[str, ...]]:
    def columns(expr: str) -> str:
        return expr.split("(", 1)[1].split(",", 1)[0].strip() if "(" in expr else expr
    return [rule for rule in rules if all(columns(e) in present for e in rule)]


def _train_and_score(arrays: dict[str, pa.Array], n: int, opts: DedupeOptions
                     ) -> tuple[pa.Table, tuple[LevelWeight, ...], dict[str, float]]:
    present = set(arrays)
    blocking = _rules(DEDUPE_BLOCKING, present)
    if not blocking:
        raise ConfigError("dedupe needs names, date of birth, postal code, email or phone "
                          "to compare", key="--id")
    names = list(arrays)
    training, todo = [], set(names)
    for rule in _rules(DEDUPE_TRAINING, present):
        if todo - set(rule):
            training.append(rule)
            todo &= set(rule)
        if not todo:
            break
    deterministic = _rules(DEDUPE_DETERMINISTIC, present) or blocking
    table = pa.table({"unique_id": pa.array(np.arange(n, dtype=np.int64)), **arrays})
    comparisons = [_comparison(name) for name in names]
    pairs, model, timings = fit_and_score(
        table, {"link_type": "dedupe_only"}, comparisons=comparisons, blocking=blocking,
        deterministic=deterministic, training=training, opts=opts)
    return pairs, level_weights(model), timings
