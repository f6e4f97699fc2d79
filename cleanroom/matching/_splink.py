"""What the probabilistic matcher and the local dedupe share: Splink kept quiet, the trained
model's weights read back, scored pairs out, and connected components at a threshold.

Splink (DuckDB backend) is imported only here and in the two modules that build models, and
only when a model is built, so `import cleanroom` stays light.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._scoring import TokenField, TokenScorer, token_scorer

SPLINK_LOGGER = "splink"


@dataclass(frozen=True)
class LevelWeight:
    """One comparison level of a trained model: m, u and the match weight log2(m/u)."""

    field: str
    level: str
    m: float | None
    u: float | None
    match_weight: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "level": self.level, "m": self.m, "u": self.u,
                "match_weight": self.match_weight}


@contextlib.contextmanager
def quiet_splink() -> Iterator[None]:
    """Silence Splink's log lines and warnings for the duration (restored afterwards)."""
    logger = logging.getLogger(SPLINK_LOGGER)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"splink(\..*)?")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate


def train(make_linker: Callable[[float], Any], *, deterministic: Sequence[Any],
          prior_recall: float, fallback_prior: float, u_max_pairs: float, seed: int,
          em_rules: Sequence[Any]) -> Any:
    """Build a linker with `make_linker(prior)` and train it, unsupervised.

    The prior (probability that two random records match) comes from the pairs the
    deterministic rules find, divided by `prior_recall`; when they find none, the linker is
    rebuilt with `fallback_prior`. Then u by random sampling (seeded) and m by EM, one
    session per rule in `em_rules`, on all of its blocked pairs.
    """
    linker = make_linker(fallback_prior)
    linker.training.estimate_probability_two_random_records_match(
        list(deterministic), recall=prior_recall)
    if not trained_model(linker)["probability_two_random_records_match"] > 0.0:
        linker = make_linker(fallback_prior)
    linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
    with clamped_estimates():
        for rule in em_rules:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
    return linker


@contextlib.contextmanager
def clamped_estimates() -> Iterator[None]:
    """EM's m and u estimates floored at the smallest value Splink accepts, for the duration.

    When no matching pair ever falls in a level (a birth date that never disagrees between
    one customer's rows), EM drives its m towards zero, below Splink's own minimum (1e-300),
    and Splink then refuses its own estimate. Splink floors m and u at that minimum when it
    computes match weights; this floors the estimates the same way when they are stored.
    """
    import splink.internals.expectation_maximisation as em
    from splink.internals.comparison_level import M_U_CLAMP_MIN

    original = em.populate_m_u_from_lookup

    def populate(training_fixed_probabilities: set[str], comparison_level: Any,
                 output_column_name: str, m_u_records_lookup: dict[str, dict[int, Any]]
                 ) -> None:
        for record in m_u_records_lookup.get(output_column_name, {}).values():
            for p in ("m_probability", "u_probability"):
                value = record.get(p)
                if isinstance(value, float) and value < M_U_CLAMP_MIN:
                    record[p] = M_U_CLAMP_MIN
        original(training_fixed_probabilities, comparison_level, output_column_name,
                 m_u_records_lookup)

    em.populate_m_u_from_lookup = populate
    try:
        yield
    finally:
        em.populate_m_u_from_lookup = original


def training_sample(ids: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Row positions of the training records, in the order of their `ids`: every record
    when there are at most `size`, else a seeded uniform sample of `size` of them.

    The sample is the records whose seeded hash of their id is smallest and the order is
    the ids', so the same records train the same model whatever order they come in.
    A uniform sample of records keeps what the model learns: the share of random pairs that
    match (matching pairs and all pairs both shrink by the square of the rate), u (random
    pairs) and m (the blocked matching pairs among the sampled records), while training time
    stays flat however large the input; prediction still scores every blocked pair."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) > size:
        mixed = _mix(ids.view(np.uint64) ^ _mix(np.array([seed], dtype=np.uint64))[0])
        picked = np.argpartition(mixed, size - 1)[:size]
        return picked[np.argsort(ids[picked], kind="stable")]
    return np.argsort(ids, kind="stable")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijection of 64-bit integers that scatters every bit."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class FitOptions(Protocol):
    """The training knobs the matcher's and dedupe's options share."""

    @property
    def prior_recall(self) -> float: ...
    @property
    def u_max_pairs(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def keep_pairs_above(self) -> float: ...
    @property
    def train_max_records(self) -> int: ...


def fit_and_score(
    table: pa.Table,
    settings: Mapping[str, Any],
    *,
    comparisons: Sequence[Any],
    blocking: Sequence[Sequence[str]],
    deterministic: Sequence[Sequence[str]],
    training: Sequence[Sequence[str]],
    opts: FitOptions,
    config: Mapping[str, Any] | None = None,
    identity: np.ndarray | None = None,
    fields: Sequence[TokenField] = (),
    caps: Mapping[str, int] | None = None,
) -> tuple[pa.Table, dict[str, Any], dict[str, float]]:
    """Train a model on `table` (unsupervised, see `train`) and score the blocked pairs.

    `settings` holds what differs between callers (link type, id and source columns). The
    training records are picked and ordered by `identity` (an integer per row; default the
    `unique_id` column), so a table in another row order trains the same model. Returns
    the pairs above `opts.keep_pairs_above`, the trained model and the train/predict seconds.
    `fields`: the comparisons are token equality on these fields (`TokenField`, in the
    order of `comparisons`) and `unique_id` is the row position, so `scored_pairs` may
    take its fast path (`TokenScorer`). `caps`: {blocking-key column: most records a key may
    hold}; a key held by more blocks none of them (nulled before Splink's predict, left out
    by the fast path's blocking query).
    """
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    n = table.num_rows
    timings: dict[str, float] = {}
    with quiet_splink():
        db = DuckDBAPI(duckdb.connect(config=dict(config or {})))
        try:
            t = time.perf_counter()
            ids = table.column("unique_id") if identity is None else identity
            sample = training_sample(np.asarray(ids), opts.train_max_records, opts.seed)
            # numbered afresh in that order: Splink's sampling of pairs for u reads the ids
            chosen = table.take(sample).combine_chunks()
            chosen = chosen.set_column(chosen.column_names.index("unique_id"), "unique_id",
                                       pa.array(np.arange(len(sample), dtype=np.int64)))
            data = db.register(chosen, table_name="training_records")

            def make_linker(prior: float) -> Any:
                model = SettingsCreator(
                    **settings,
                    comparisons=list(comparisons),
                    blocking_rules_to_generate_predictions=[block_on(*r) for r in blocking],
                    probability_two_random_records_match=prior,
                    retain_matching_columns=False,
                    retain_intermediate_calculation_columns=False,
                )
                return Linker(data, model, log_level=None)

            linker = train(make_linker, deterministic=[block_on(*r) for r in deterministic],
                           prior_recall=opts.prior_recall,
                           fallback_prior=1.0 / max(len(sample), 2),
                           u_max_pairs=opts.u_max_pairs, seed=opts.seed,
                           em_rules=[block_on(*r) for r in training])
            model = trained_model(linker)
            scorer = token_scorer(model, fields) if fields and n >= FAST_PREDICT_FROM else None
            if scorer is None:  # Splink's predict blocks on the capped key columns
                for column, cap in (caps or {}).items():
                    table, _, _ = null_frequent_values(table, column, cap)
            # the trained model, on every record under its own id
            linker = Linker(db.register(table, table_name="records"), model, log_level=None)
            # Splink keeps its working tables per database, so the new linker would reuse the
            # training records' term frequencies (a sample's, above train_max_records)
            linker.table_management.invalidate_cache()  # type: ignore[no-untyped-call]
            timings["train"] = time.perf_counter() - t
            t = time.perf_counter()
            pairs = scored_pairs(linker, db, opts.keep_pairs_above, n, table="records",
                                 blocking=blocking, data=table, scorer=scorer, caps=caps,
                                 timings=timings)
            timings["predict"] = time.perf_counter() - t
            return pairs, trained_model(linker), timings
        finally:
            db.duckdb_con.close()


def trained_model(linker: Any) -> dict[str, Any]:
    """The linker's settings and trained parameters as a dict (Splink's model JSON)."""
    return linker.misc.save_model_to_json()


def level_weights(model: dict[str, Any]) -> tuple[LevelWeight, ...]:
    """m, u and match weight of every non-null level of a trained model (`trained_model`)."""
    out = []
    for comparison in model["comparisons"]:
        name = comparison["output_column_name"]
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            weight = math.log2(m / u) if m and u else None
            out.append(LevelWeight(name, level.get("label_for_charts", ""), m, u, weight))
    return tuple(out)


#: from this many records on, the fast path finds and scores the pairs where it applies
#: (`blocked_pairs_sql`, then `TokenScorer`; tested equal to Splink's predict). Demo records,
#: predict seconds: 2.1M records 4.9-8.5 s against Splink's 3.7-4.1 s; 20.8M records 66 s
#: against 134-160 s (Splink in 2 x 2 chunks)
FAST_PREDICT_FROM = 4_000_000


def blocked_pairs_sql(table: str, rules: Sequence[Sequence[str]], *,
                      unique_id: str = "unique_id", packed: bool = False,
                      caps: Mapping[str, int] | None = None) -> str:
    """SQL for the distinct pairs (left_id < right_id) of `table`'s records that agree on
    every column of at least one rule: the pairs Splink's blocking gives (dedupe_only).

    Splink joins each rule on its records with every column of the earlier rules carried
    along, to leave out pairs an earlier rule found; here each rule joins only (id, its own
    columns) of the records where they are known, and one grouping keeps each pair once.
    `caps`: {column: cap}; a rule of one such column joins only the records whose value
    2 to cap records hold (a value held by more blocks none of them; by one, nothing), which
    is cheaper than nulling the common values first and joining all records.
    `packed`: the ids are below 2^32, so a pair is grouped as one 64-bit integer."""
    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    ctes, joins = [], []
    for i, rule in enumerate(rules):
        cols = ", ".join(f"{q(c)} AS k{j}" for j, c in enumerate(rule))
        known = " AND ".join(f"{q(c)} IS NOT NULL" for c in rule)
        rows = f"SELECT {q(unique_id)} AS id, {cols} FROM {table} WHERE {known}"
        cap = (caps or {}).get(rule[0]) if len(rule) == 1 else None
        if cap is not None:  # only the records of a key that 2 to cap records hold
            rows = (f"{rows} AND {q(rule[0])} IN (SELECT {q(rule[0])} FROM {table} GROUP BY "
                    f"{q(rule[0])} HAVING count(*) BETWEEN 2 AND {int(cap)})")
        ctes.append(f"b{i} AS MATERIALIZED ({rows})")
        on = " AND ".join(f"l.k{j} = r.k{j}" for j in range(len(rule)))
        joins.append(f"SELECT l.id AS l, r.id AS r FROM b{i} AS l JOIN b{i} AS r "
                     f"ON {on} AND l.id < r.id")
    found = " UNION ALL ".join(joins)
    if not packed:
        return (f"WITH {', '.join(ctes)} SELECT DISTINCT l AS left_id, r AS right_id "
                f"FROM ({found})")
    return (f"WITH {', '.join(ctes)} SELECT CAST(p >> 32 AS BIGINT) AS left_id, "
            "CAST(p & 4294967295 AS BIGINT) AS right_id FROM (SELECT DISTINCT "
            f"(l::UBIGINT << 32) | r::UBIGINT AS p FROM ({found}))")


#: above this many records, Splink's predict scores the pairs in 2 x 2 chunks of the
#: records (10.4M x 10.4M demo records: 134-154 s instead of 176-188 s; 4 x 4: 295 s)
PREDICT_CHUNKED_ABOVE = 8_000_000


def scored_pairs(linker: Any, db: Any, floor: float, records: int = 0, *,
                 table: str = "", blocking: Sequence[Sequence[str]] = (),
                 data: pa.Table | None = None, scorer: TokenScorer | None = None,
                 caps: Mapping[str, int] | None = None,
                 timings: dict[str, float] | None = None) -> pa.Table:
    """(left, right, match_probability) of every blocked pair scoring at least `floor`;
    left and right are the integer `unique_id`s of the input; `db` is the linker's DuckDBAPI.

    The fast path, given the model's `scorer` (`token_scorer`), `data` holding the records
    (`unique_id` = position) as `table` in `db`, and `blocking` as column tuples: the pairs
    from `blocked_pairs_sql` (with `caps`), scored by the scorer (`timings` gets `block` and
    `score` seconds). Else Splink's predict (on key columns capped already), above
    `PREDICT_CHUNKED_ABOVE` `records` in chunks (the same pairs: each pair is in exactly one
    chunk of its left and of its right record)."""
    con = db.duckdb_con
    with quiet_splink():
        if scorer is not None and data is not None and table and blocking:
            spent = timings if timings is not None else {}
            t = time.perf_counter()
            ids = con.sql(blocked_pairs_sql(table, blocking, packed=0 < records < 2**32,
                                            caps=caps)).to_arrow_table()
            left, right = (np.asarray(ids.column(c).combine_chunks()) for c in range(2))
            del ids
            spent["block"] = time.perf_counter() - t
            t = time.perf_counter()
            out = scorer.score(data, left, right, floor)
            spent["score"] = time.perf_counter() - t
            return out
        chunks = 2 if records > PREDICT_CHUNKED_ABOVE else 1
        predictions = linker.inference.predict(threshold_match_probability=floor,
                                               num_chunks_left=chunks,
                                               num_chunks_right=chunks)
        out = con.sql(
            f"SELECT CAST(unique_id_l AS BIGINT) AS left_id, "
            f"CAST(unique_id_r AS BIGINT) AS right_id, match_probability "
            f"FROM {predictions.physical_name}").to_arrow_table()
        predictions.drop_table_from_database_and_remove_from_cache()
    return out


def null_frequent_values(records: pa.Table, name: str, cap: int, *,
                         per: str | None = None) -> tuple[pa.Table, int, int]:
    """`records` with the values of column `name` that more than `cap` rows hold (of one
    value of column `per`, if given) nulled in every row, row order kept; and how many
    distinct values and how many rows were nulled."""
    column = records.column(name)
    con = duckdb.connect()
    try:
        data = {"k": column} if per is None else {"k": column, "g": records.column(per)}
        con.register("_keys", pa.table(data))
        group = "k" if per is None else "g, k"
        big = con.sql(f"SELECT DISTINCT k FROM _keys WHERE k IS NOT NULL GROUP BY {group} "
                      f"HAVING count(*) > {cap:d}").to_arrow_table().column("k")
    finally:
        con.close()
    if not len(big):
        return records, 0, 0
    hit = pc.is_in(column, value_set=big.combine_chunks())
    rows = int(pc.sum(hit).as_py() or 0)
    kept = pc.if_else(hit, pa.scalar(None, column.type), column)
    return records.set_column(records.column_names.index(name), name, kept), len(big), rows


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component label of each of `n` nodes: the smallest node id in its component.

    Min-label propagation over the edges with pointer jumping, all in numpy; labels only
    decrease, so it stops, after a number of rounds that grows with the log of the diameter.
    """
    labels = np.arange(n, dtype=np.int64)
    if len(left) == 0:
        return labels
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    while True:
        low = np.minimum(labels[left], labels[right])
        before = labels.copy()
        np.minimum.at(labels, left, low)
        np.minimum.at(labels, right, low)
        while True:  # pointer jumping: a label's own label is at most the label
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(before, labels):
            return labels


def clusters_at(n: int, pairs: pa.Table, threshold: float) -> np.ndarray:
    """Cluster label per node (0..n-1) linking the pairs whose probability ≥ threshold."""
    prob = pairs.column("match_probability").to_numpy(zero_copy_only=False)
    keep = prob >= threshold
    left = pairs.column("left_id").to_numpy(zero_copy_only=False)[keep]
    right = pairs.column("right_id").to_numpy(zero_copy_only=False)[keep]
    return connected_components(n, left, right)
