"""Scoring blocked pairs of token records with a trained Splink model, in numpy: the fast
path of Splink's predict for comparisons of token equality (tested equal to it).

Splink scores pairs in SQL that joins each pair to both of its records (two hash joins on
the record id, then its comparison levels). At 10M x 10M demo records (60M blocked pairs)
those joins took 140 s of operator time in a 100 s query. Here a record's id is its position,
so a pair's token is two gathers from the column's Arrow buffer (read in place, no copy);
the levels, match weights and term-frequency adjustments follow Splink's formulas
(`TokenScorer.score`), in chunks of pairs on every core.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

_CLAMP = 1e-300  # Splink floors m and u at this when it turns them into a match weight
_CHUNK = 1 << 16  # pairs per chunk (their gathered tokens stay in cache)


@dataclass(frozen=True)
class TokenField:
    """A compared field: its columns, strongest first (the exact token, then derived forms);
    its levels are null, then one per column (that column's tokens equal), then else."""

    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class _Level:
    weight: float
    tf_column: str | None = None  # term-frequency adjusted on this column's token
    tf_weight: float = 1.0
    tf_min_u: float = 0.0
    log2_u: float = 0.0  # log2 of u of the level comparing tf_column exactly


@dataclass(frozen=True)
class _Field:
    columns: tuple[str, ...]
    levels: tuple[_Level, ...]  # null, one per column, else

    @property
    def adjusted(self) -> bool:
        return any(level.tf_column for level in self.levels)


def _effective_mu(model: Mapping[str, Any]) -> list[list[tuple[float | None, float | None]]]:
    """(m, u) of every level of every comparison as Splink's predict uses them: a level
    not observed in training, or never trained, gets Splink's stand-in values (its own
    Settings object applies them), the null level (None, None)."""
    from splink import SettingsCreator

    settings = SettingsCreator.from_path_or_dict(dict(model)).get_settings("duckdb")
    return [[(None, None) if level.is_null_level else (level.m_probability, level.u_probability)
             for level in comparison.comparison_levels]
            for comparison in settings.comparisons]


def _levels(comparison: Mapping[str, Any], mu: Sequence[tuple[float | None, float | None]],
            field: TokenField) -> _Field | None:
    """The field's levels from the model's comparison; None where the model is not the
    token comparison this path scores (another shape, or a level without m or u)."""
    levels = comparison.get("comparison_levels", [])
    if comparison.get("output_column_name") != field.name or len(mu) != len(levels) or \
            len(levels) != len(field.columns) + 2 or not levels[0].get("is_null_level"):
        return None
    us = {column: u for column, (_, u) in zip(field.columns, mu[1:], strict=False)}
    out = [_Level(0.0)]
    for level, (m, u) in zip(levels[1:], mu[1:], strict=True):
        if m is None or u is None:
            return None
        weight = math.log2(max(m, _CLAMP) / max(u, _CLAMP))
        tf = level.get("tf_adjustment_column")
        tf_weight = float(level.get("tf_adjustment_weight", 1.0)) if tf else 0.0
        if tf and tf_weight != 0.0:
            exact_u = us.get(tf)
            if not exact_u or exact_u <= 0:
                return None
            out.append(_Level(weight, tf, tf_weight, float(level.get("tf_minimum_u_value", 0.0)),
                              math.log2(exact_u)))
        else:
            out.append(_Level(weight))
    return _Field(field.columns, tuple(out))


def _column(records: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A token column as numpy (values, valid): a view of its Arrow buffer where the column
    is one chunk (no copy; else the chunks' buffers concatenated, which is much faster than
    Arrow's own concatenation of validity bitmaps), the validity flags unpacked (None: no
    nulls); a null's value is whatever the buffer holds, so it is only compared where both
    sides are valid."""
    parts = [_chunk(array) for array in records.column(name).chunks]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return np.zeros(0, dtype=np.uint64), None
    values = np.concatenate([v for v, _ in parts])
    if all(ok is None for _, ok in parts):
        return values, None
    valid = np.concatenate([np.ones(len(v), dtype=bool) if ok is None else ok
                            for v, ok in parts])
    return values, valid


def _chunk(array: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """One chunk of a 64-bit column as (values, valid), viewing its buffers in place."""
    bits, data = array.buffers()[:2]
    n, offset = len(array), array.offset
    values = np.frombuffer(data, dtype=np.uint64, count=offset + n)[offset:] \
        if data is not None else np.zeros(n, dtype=np.uint64)
    if bits is None or array.null_count == 0:
        return values, None
    valid = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=offset + n,
                          bitorder="little")[offset:].view(bool)
    return values, valid


def _frequencies(values: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Each record's term frequency of its token: the token's count over the count of known
    tokens, as Splink computes it (NaN where the token is null)."""
    known = values if valid is None else values[valid]
    codes, _ = pd.factorize(known)
    counts = np.bincount(codes).astype(np.float64)
    share = counts[codes] / float(max(len(known), 1))
    if valid is None:
        return share
    out = np.full(len(values), np.nan)
    out[valid] = share
    return out


@dataclass(frozen=True)
class TokenScorer:
    """A trained model's levels and weights, ready to score pairs of token records."""

    fields: tuple[_Field, ...]
    prior_weight: float

    def score(self, records: pa.Table, left: np.ndarray, right: np.ndarray,
              floor: float) -> pa.Table:
        """(left_id, right_id, match_probability) of the pairs (record positions) whose
        match probability is at least `floor`, as Splink's predict scores them.

        Per pair: the level of each field (null if either exact token is null, else the
        first column whose tokens are known and equal, else else), its match weight
        log2(m/u) (m, u floored at 1e-300), plus on a term-frequency adjusted level
        w * (log2(u of that column's exact level) − log2(max(tf_l, tf_r, minimum))); the
        weights are added to the prior's weight in Splink's order; the pair is kept when the
        sum reaches the floor's weight, and its probability is 2^w / (1 + 2^w) (computed
        stably)."""
        spec = self.fields
        least = math.log2(floor / (1 - floor)) if floor != 1 else math.inf
        names = list(dict.fromkeys(c for f in spec for c in f.columns))
        columns = {c: _column(records, c) for c in names}
        tfs = {x.tf_column: _frequencies(*columns[x.tf_column])
               for f in spec for x in f.levels if x.tf_column}
        left = np.asarray(left, dtype=np.int64)
        right = np.asarray(right, dtype=np.int64)
        tables = [np.array([x.weight for x in f.levels]) for f in spec]

        def chunk(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            lo, hi = left[start:start + _CHUNK], right[start:start + _CHUNK]
            weight = np.full(len(lo), self.prior_weight)
            for f, table in zip(spec, tables, strict=True):
                level = np.full(len(lo), len(f.levels) - 1, dtype=np.intp)  # else
                both: np.ndarray | None = None
                for k in range(len(f.columns) - 1, -1, -1):  # weakest first: stronger win
                    values, valid = columns[f.columns[k]]
                    same = values[lo] == values[hi]
                    both = None if valid is None else valid[lo] & valid[hi]
                    level[same if both is None else same & both] = k + 1
                if both is not None:  # (the exact column's, from the loop's last step)
                    level[~both] = 0  # null
                weight = weight + table[level]
                if f.adjusted:
                    adjust = np.zeros(len(lo))
                    for k, x in enumerate(f.levels):
                        if x.tf_column is None:
                            continue
                        where = np.flatnonzero(level == k)
                        tf = tfs[x.tf_column]
                        share = np.maximum(np.maximum(tf[lo[where]], tf[hi[where]]),
                                           x.tf_min_u)
                        adjust[where] = x.tf_weight * (x.log2_u - np.log2(share))
                    weight = weight + adjust
            keep = np.flatnonzero(weight >= least)
            w = weight[keep]
            with np.errstate(over="ignore", invalid="ignore"):
                p = np.where(w >= 0, 1.0 / (1.0 + np.power(2.0, -w)),
                             np.power(2.0, w) / (1.0 + np.power(2.0, w)))
            return lo[keep], hi[keep], p

        starts = range(0, len(left), _CHUNK)
        with ThreadPoolExecutor(max(1, min(len(starts), os.cpu_count() or 1))) as pool:
            parts = list(pool.map(chunk, starts))
        if not parts:
            parts = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))]
        return pa.table({"left_id": pa.array(np.concatenate([p[0] for p in parts])),
                         "right_id": pa.array(np.concatenate([p[1] for p in parts])),
                         "match_probability": pa.array(np.concatenate([p[2] for p in parts]))})


def token_scorer(model: Mapping[str, Any], fields: Sequence[TokenField]) -> TokenScorer | None:
    """The scorer of a trained model (Splink's JSON) whose comparisons are token equality on
    `fields`, in order; None when the model has another shape (Splink then scores)."""
    comparisons = list(model.get("comparisons", []))
    if not fields or len(comparisons) != len(fields):
        return None
    mus = _effective_mu(model)
    if len(mus) != len(fields):
        return None
    parsed = [_levels(c, mu, f) for c, mu, f in zip(comparisons, mus, fields, strict=True)]
    spec = tuple(p for p in parsed if p is not None)
    if len(spec) != len(fields):
        return None
    prior = float(model["probability_two_random_records_match"])
    return TokenScorer(spec, math.log2(prior / (1 - prior)) if prior != 1 else math.inf)
