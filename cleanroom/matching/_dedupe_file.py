"""dedupe_file: Customer 360 on a party's own extract, locally and in the clear.

    dedupe_file("crm.csv", "crm.people.csv", identifiers=[("email", "Email"), ...])

reads the whole extract (CSV or Parquet), normalizes each identifier column with the column
API of `normalize` (invalid values become missing; a postal code the region rejects is read
without region rules: another country's code), deduplicates the rows with `dedupe`
(Splink on the normalized values) and writes the input back, every column as it was, plus a
`person_id` column: the same value for every row of one person. Written atomically (mode
0600: it is still personal data), so a failure leaves no partial output.

person_id is 32 random hex digits per person, drawn afresh on every run: it says nothing about
the person or the row order, and two parties' ids never collide, so
`tokenize --id external_id=person_id` carries this resolution into the clean room (records
sharing an external_id token always merge there) without linking anyone across parties.

The report counts rows, people, clusters by size and the share of rows merged, and shows a
few merged clusters as examples with every value masked: per column, rows holding the same
normalized value get the same letter (A, B, ...), a missing value is "-", and rows are given
by their number in the input (as an editor shows them: a CSV's header is row 1), so the owner
can look them up in its own file. No value of the input appears in the report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import normalize
from protocols import ConfigError, InputError, atomic_path, read_input_table

from ._dedupe import DedupeOptions, DedupeSummary, dedupe

PERSON_COLUMN = "person_id"
EXAMPLES = 5
_MASK_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class DedupeReport:
    """What a dedupe run found (counts, masked examples; never a value of the input)."""

    input: str
    output: str
    threshold: float
    profile: str
    region: str
    summary: DedupeSummary
    identifiers: dict[str, dict[str, Any]]
    examples: list[dict[str, Any]]
    weights: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "person_column": PERSON_COLUMN,
                "threshold": self.threshold, "profile": self.profile, "region": self.region,
                **self.summary.to_dict(), "identifiers": self.identifiers,
                "examples": self.examples, "weights": self.weights,
                "timings": {k: round(v, 3) for k, v in self.timings.items()}}


def dedupe_file(input_path: str | os.PathLike[str], output: str | os.PathLike[str], *,
                identifiers: Sequence[tuple[str, str]], threshold: float = 0.9,
                profile: str = "strict", region: str = "US", delimiter: str = ",",
                encoding: str = "utf-8", examples: int = EXAMPLES,
                progress: Callable[[str], None] | None = None) -> DedupeReport:
    """Deduplicate `input_path` into `output` (CSV when it ends in .csv, else Parquet): the
    input's columns plus `person_id`; return the report. See the module docstring."""
    options = DedupeOptions(threshold=threshold)
    profile, region = _checked_options(profile, region)
    columns = _checked_identifiers(identifiers)
    step = progress or (lambda _: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    step("reading")
    table = read_input_table(input_path, text_columns=[c for _, c in columns.values()],
                             delimiter=delimiter, encoding=encoding, output=output)
    source = os.fspath(input_path)
    if PERSON_COLUMN in table.column_names:
        raise InputError(f"the input already has a {PERSON_COLUMN!r} column; rename it or "
                         "drop it first", file=source, column=PERSON_COLUMN)
    timings["read"] = time.perf_counter() - t0
    step(f"normalizing {table.num_rows:,} rows")
    values: dict[str, pa.Array] = {}
    quality: dict[str, dict[str, Any]] = {}
    for name, (kind, column) in columns.items():
        values[name], reasons = _normalized(kind, table.column(column), profile, region)
        quality[column] = {"kind": kind, **_counts(reasons)}
    timings["normalize"] = time.perf_counter() - t0 - timings["read"]
    step("training the model and scoring pairs")
    result = dedupe(values, options=options)
    timings.update(result.timings)
    step("writing")
    labels = result.person_id.to_numpy()
    person = _person_ids(labels)
    _write(table.append_column(PERSON_COLUMN, person), Path(output))
    first_row = 2 if not _is_parquet(source) else 1
    shown = _examples(labels, values, columns, examples, first_row)
    timings["total"] = time.perf_counter() - t0
    return DedupeReport(source, os.fspath(output), options.threshold, profile, region,
                        result.summary, quality, shown, [w.to_dict() for w in result.weights],
                        timings)


def _checked_options(profile: str, region: str) -> tuple[str, str]:
    try:
        profile = normalize.check_profile(profile)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--profile") from None
    try:
        return profile, normalize.check_region(region)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--region") from None


def _checked_identifiers(identifiers: Sequence[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """{compared name: (kind, column)}: the kind's name, `kind_2` for a second of a kind."""
    if not identifiers:
        raise ConfigError("give at least one --id KIND=COLUMN", key="--id")
    out: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    for kind, column in identifiers:
        if kind not in normalize.KINDS:
            raise ConfigError(f"unknown kind {kind!r}; expected one of: "
                              f"{', '.join(normalize.KINDS)}", key="--id")
        if column in seen:
            raise ConfigError("a column can be compared as one kind only",
                              key=f"--id {kind}={column}")
        seen.add(column)
        n = sum(1 for k, _ in out.values() if k == kind)
        out[kind if n == 0 else f"{kind}_{n + 1}"] = (kind, column)
    return out


def _normalized(kind: str, column: pa.ChunkedArray, profile: str,
                region: str) -> tuple[pa.Array, pa.Array]:
    """Normalized values and reasons of one column (another country's postal code read
    without the region's rules, as `tokenize` does)."""
    res = normalize.normalize_column(kind, column, profile=profile, region=region,
                                     foreign_postal=True)
    return _array(res.values), _array(res.reasons)


def _array(values: Any) -> pa.Array:
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return arr if isinstance(arr, pa.Array) else pa.array(arr, pa.string())


def _counts(reasons: pa.Array) -> dict[str, Any]:
    """valid / missing / invalid by reason, from a normalize reason array."""
    counts = {r["values"]: r["counts"] for r in pc.value_counts(reasons.drop_null()).to_pylist()}
    missing = counts.pop("empty", 0)
    return {"valid": reasons.null_count, "missing": missing,
            "invalid": dict(sorted(counts.items()))}


def _person_ids(labels: np.ndarray) -> pa.Array:
    """32 random hex digits per cluster, the same for every row of one cluster."""
    clusters, index = np.unique(labels, return_inverse=True)
    while True:
        digits = os.urandom(16 * len(clusters)).hex()
        ids = [digits[i:i + 32] for i in range(0, len(digits), 32)]
        if len(set(ids)) == len(ids):  # a repeat is a 2^-100 event; draw again
            return pa.array(ids, pa.string()).take(pa.array(index.ravel()))


def _is_parquet(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _write(table: pa.Table, out: Path) -> None:
    with atomic_path(out, 0o600) as tmp:
        if out.suffix.lower() == ".csv":
            pacsv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp, compression="zstd")


def _examples(labels: np.ndarray, values: dict[str, pa.Array],
              columns: dict[str, tuple[str, str]], limit: int,
              first_row: int) -> list[dict[str, Any]]:
    """Up to `limit` merged clusters, values masked: the largest first, then clusters whose
    rows differ on some identifier (the merges worth a look), each as row numbers and, per
    column, one letter per distinct value."""
    if limit <= 0:
        return []
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    sizes = np.diff(np.r_[starts, len(labels)])
    merged = np.flatnonzero(sizes > 1)
    if not len(merged):
        return []
    groups = [order[starts[i]:starts[i] + sizes[i]] for i in merged]
    masked = [_mask(rows, values, columns) for rows in groups]
    differ = [i for i, m in enumerate(masked)
              if any(len({v for v in col if v != "-"}) > 1 for col in m.values())]
    by_size = sorted(range(len(groups)), key=lambda i: (-len(groups[i]), int(groups[i][0])))
    chosen = list(dict.fromkeys(by_size[:max(1, limit // 2)] + differ))[:limit]
    return [{"size": len(groups[i]), "rows": [int(r) + first_row for r in groups[i]],
             "columns": masked[i]} for i in chosen]


def _mask(rows: np.ndarray, values: dict[str, pa.Array],
          columns: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    out = {}
    take = pa.array(rows)
    for name, (_, column) in columns.items():
        letters: dict[str, str] = {}
        cells = []
        for v in values[name].take(take).to_pylist():
            if v is None:
                cells.append("-")
            else:
                letters.setdefault(v, _MASK_LETTERS[len(letters) % len(_MASK_LETTERS)])
                cells.append(letters[v])
        out[column] = cells
    return out
