"""Probabilistic matching on tokens finds typo'd pairs within and across sources."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from cleanroom.matching import (
    FieldSpec,
    ProbabilisticOptions,
    connected_components,
    fields_from_columns,
    resolve_probabilistic,
)
from protocols import ConfigError, derive_token_key, new_secret
from protocols._fuzzy import fuzzy_tokens
from protocols.hazmat import hmac_tokens

SECRET = new_secret("0b6f3c1e-2a4d-4e8f-9c7b-5d1a2e3f4a5b", secret=bytes(range(32)))
FIRST = ["james", "mary", "robert", "patricia", "michael", "jennifer", "william", "linda",
         "david", "elizabeth", "richard", "barbara", "joseph", "susan", "thomas", "jessica",
         "charles", "sarah", "christopher", "karen", "daniel", "nancy", "matthew", "lisa",
         "anthony", "betty", "mark", "margaret", "donald", "sandra", "steven", "ashley"]
LAST = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis",
        "rodriguez", "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson",
        "thomas", "taylor", "moore", "jackson", "martin", "lee", "perez", "thompson", "white",
        "harris", "sanchez", "clark", "ramirez", "lewis", "robinson", "walker", "young",
        "allen", "king", "wright", "scott", "torres", "nguyen", "hill", "flores", "green"]


def _typo(r: random.Random, name: str) -> str:
    i = r.randrange(1, len(name) - 1)
    return name[:i] + name[i + 1:] if r.random() < 0.5 else \
        name[:i - 1] + name[i] + name[i - 1] + name[i + 1:]


def _people(n: int, seed: int) -> list[dict]:
    r = random.Random(seed)
    out = []
    for i in range(n):
        out.append({"person": i, "first_name": r.choice(FIRST), "last_name": r.choice(LAST),
                    "dob": f"{r.randrange(1940, 2005)}-{r.randrange(1, 13):02d}-"
                           f"{r.randrange(1, 29):02d}",
                    "postal_code": f"{r.randrange(10000, 99999)}",
                    "email": f"user{i}@example.com"})
    return out


def _records(seed: int = 3, n: int = 400) -> tuple[pa.Table, list[int]]:
    """Two sources: A holds everyone, B a third of them (noisy) plus its own duplicates."""
    r = random.Random(seed)
    people = _people(n, seed)
    rows: list[tuple[str, str, dict]] = []
    for p in people:
        rows.append(("a", f"a{p['person']}", dict(p)))
    for p in people[: n // 3]:
        q = dict(p)
        if r.random() < 0.3:
            q["first_name"] = _typo(r, q["first_name"])
        if r.random() < 0.2:
            q["last_name"] = _typo(r, q["last_name"])
        if r.random() < 0.3:
            q["email"] = None
        if r.random() < 0.2:
            q["dob"] = None
        rows.append(("b", f"b{p['person']}", q))
    for p in people[n // 3: n // 3 + 30]:  # duplicates inside source a, other email, no dob
        q = dict(p, email=f"other{p['person']}@example.org", dob=None)
        rows.append(("a", f"a{p['person']}-dup", q))
    cols: dict[str, pa.Array] = {
        "record_key": pa.array([k for _, k, _ in rows]),
        "source": pa.array([s for s, _, _ in rows]),
    }
    for kind in ("email", "first_name", "last_name", "dob", "postal_code"):
        values = pa.array([q[kind] for _, _, q in rows], pa.string())
        cols[kind] = hmac_tokens(derive_token_key(SECRET, kind), values)
        if kind != "email":
            cols.update(fuzzy_tokens(SECRET, kind, values))
    return pa.table(cols), [q["person"] for _, _, q in rows]


@pytest.fixture(scope="module")
def matched() -> tuple:
    table, persons = _records()
    con = duckdb.connect()
    con.register("records", table)
    return resolve_probabilistic(con, "records"), table, persons


def _pairs(labels) -> set[tuple[int, int]]:
    groups: dict[object, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    return {(a, b) for g in groups.values() for i, a in enumerate(g) for b in g[i + 1:]}


def test_finds_the_true_pairs(matched: tuple) -> None:
    result, _, persons = matched
    predicted = _pairs(result.clusters.column("cluster_id").to_pylist())
    true = _pairs(persons)
    correct = predicted & true
    assert len(correct) / len(true) >= 0.95
    assert len(correct) / len(predicted) >= 0.99


def test_typo_pairs_link_through_forms(matched: tuple) -> None:
    result, table, persons = matched
    keys = table.column("record_key").to_pylist()
    cluster = dict(zip(keys, result.clusters.column("cluster_id").to_pylist(), strict=True))
    # every B record whose names both carry a typo but kept email or dob still links
    assert sum(cluster[f"b{p}"] == cluster[f"a{p}"] for p in range(133)) >= 128


def test_clusters_keep_keys_and_sources(matched: tuple) -> None:
    result, table, _ = matched
    assert result.clusters.column_names == ["key", "source", "cluster_id"]
    assert result.clusters.column("key").to_pylist() == table.column("record_key").to_pylist()
    assert set(result.clusters.column("source").to_pylist()) == {"a", "b"}


def test_weights_per_field_level(matched: tuple) -> None:
    result, _, _ = matched
    levels = {(w.field, w.level): w for w in result.weights}
    assert levels[("last_name", "exact")].match_weight > levels[("last_name", "else")].match_weight
    assert ("first_name", "phonetic") in levels and ("dob", "year_month") in levels
    doc = result.to_dict()
    assert doc["method"] == "probabilistic" and doc["threshold"] == 0.9
    assert doc["fields"]["first_name"][0] == "first_name"


def test_reclustering_is_monotone(matched: tuple) -> None:
    result, _, _ = matched
    n = {t: len(set(result.clusters_at(t).column("cluster_id").to_pylist()))
         for t in (0.5, 0.9, 0.999)}
    assert n[0.5] <= n[0.9] <= n[0.999]


def test_fields_from_columns_groups_forms() -> None:
    specs = fields_from_columns(["record_key", "email", "first_name", "first_name__phonetic",
                                 "first_name__initial", "city__phonetic"],
                                exclude=["record_key"])
    assert specs == (FieldSpec("email", "email", (), term_frequency=False),
                     FieldSpec("first_name", "first_name",
                               ("first_name__phonetic", "first_name__initial")))


def test_bad_inputs_refused() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 'k' AS record_key, 'a' AS source, 'x' AS city")
    with pytest.raises(ConfigError):
        resolve_probabilistic(con, "t", key="id")
    with pytest.raises(ConfigError):
        resolve_probabilistic(con, "t", fields=[FieldSpec("dob", "dob")])
    with pytest.raises(ConfigError):
        ProbabilisticOptions(threshold=1.0)


def test_connected_components() -> None:
    labels = connected_components(6, np.array([4, 1, 3]), np.array([5, 2, 1]))
    assert labels.tolist() == [0, 1, 1, 1, 4, 4]
    assert connected_components(3, np.array([], np.int64), np.array([], np.int64)).tolist() \
        == [0, 1, 2]


@pytest.mark.parametrize("train_max", [300_000, 250])
def test_row_order_does_not_change_the_model(matched: tuple, train_max: int) -> None:
    """The same records in another order train the same model and link the same keys, with
    every record trained on and with a sample of them (training picks and orders its
    records by their keys, not by position)."""
    _, table, _ = matched
    shuffled = table.take(np.random.default_rng(5).permutation(table.num_rows))
    got = []
    for t in (table, shuffled):
        con = duckdb.connect()
        con.register("records", t)
        res = resolve_probabilistic(con, "records",
                                    options=ProbabilisticOptions(train_max_records=train_max))
        keys = res.clusters.column("key").to_pylist()
        labels = res.clusters.column("cluster_id").to_pylist()
        linked = {frozenset((keys[a], keys[b])) for a, b in _pairs(labels)}
        got.append(([(w.field, w.level, w.m, w.u) for w in res.weights], linked))
    (weights_a, linked_a), (weights_b, linked_b) = got
    assert linked_a == linked_b and len(linked_a) > 100
    assert [w[:2] for w in weights_a] == [w[:2] for w in weights_b]
    for a, b in zip(weights_a, weights_b, strict=True):
        assert (a[2] is None) == (b[2] is None) and (a[3] is None) == (b[3] is None)
        assert (a[2] or 0) == pytest.approx(b[2] or 0, rel=1e-6)
        assert (a[3] or 0) == pytest.approx(b[3] or 0, rel=1e-6)



def test_chunked_scoring_gives_the_same_pairs(matched: tuple, monkeypatch) -> None:
    """Above `PREDICT_CHUNKED_ABOVE` records, Splink's predict scores in 2 x 2 chunks of the
    records (forced here on small data): exactly the same pairs and probabilities as in one
    go."""
    from cleanroom.matching import _splink

    whole, table, _ = matched
    monkeypatch.setattr(_splink, "PREDICT_CHUNKED_ABOVE", 10)
    con = duckdb.connect()
    con.register("records", table)
    _same_scores(resolve_probabilistic(con, "records"), whole)


@pytest.mark.parametrize(("cap", "train_max"), [(10, None), (None, None), (10, 500)])
def test_fast_path_gives_splinks_pairs(matched: tuple, monkeypatch, cap, train_max) -> None:
    """The blocked pairs found by `blocked_pairs_sql` and scored by `TokenScorer` (from
    `FAST_PREDICT_FROM` records; forced here) are exactly those Splink's blocking finds and
    its predict scores: the same
    pairs, probabilities and clusters (with the cap, every rule blocks on one key column;
    without it, rules of several columns; trained on a sample, Splink too scores with the
    term frequencies of all records, not the sample's). Every blocked pair is kept (no
    floor worth the name), so a pair missing from either side shows."""
    from cleanroom.matching import _splink

    _, table, _ = matched
    con = duckdb.connect()
    con.register("records", table)
    opts = ProbabilisticOptions(max_block_size=cap, keep_pairs_above=1e-9,  # (nearly) all
                                train_max_records=train_max or 1_000_000)
    assert train_max is None or table.num_rows > train_max
    timings_seen: list[dict] = []
    fast = _splink.scored_pairs

    def spy(*args, **kwargs):
        out = fast(*args, **kwargs)
        timings_seen.append(dict(kwargs.get("timings") or {}))
        return out

    monkeypatch.setattr(_splink, "scored_pairs", spy)
    monkeypatch.setattr(_splink, "FAST_PREDICT_FROM", 0)
    own = resolve_probabilistic(con, "records", options=opts)
    assert "block" in timings_seen[0] and "score" in timings_seen[0]  # the fast path ran
    monkeypatch.setattr(_splink, "FAST_PREDICT_FROM", 10**12)
    _same_scores(resolve_probabilistic(con, "records", options=opts), own)
    assert "block" not in timings_seen[1]  # Splink's predict ran


def _same_scores(got_res, want_res) -> None:
    def scored(res) -> dict:
        p = res.pairs.to_pydict()
        return {(min(a, b), max(a, b)): x for a, b, x in
                zip(p["left_id"], p["right_id"], p["match_probability"], strict=True)}

    want, got = scored(want_res), scored(got_res)
    assert got.keys() == want.keys() and len(want) > 100
    assert all(got[k] == pytest.approx(want[k], abs=1e-9) for k in want)
    assert got_res.clusters.column("cluster_id").to_pylist() == \
        want_res.clusters.column("cluster_id").to_pylist()


def test_blocked_pairs_packed_or_not() -> None:
    """`blocked_pairs_sql` gives each pair agreeing on all columns of a rule once, whether a
    pair is grouped as one packed integer (ids below 2^32) or as two columns; nulls block
    nothing."""
    from cleanroom.matching._splink import blocked_pairs_sql

    con = duckdb.connect()
    con.execute("CREATE TABLE recs AS SELECT * FROM (VALUES (0, 1, 5), (1, 1, NULL), "
                "(2, NULL, 5), (3, 2, 5), (4, 2, 6), (5, NULL, NULL), (6, 1, 6)) "
                "AS t(unique_id, a, b)")
    rules = [("a",), ("b",), ("a", "b")]
    got = [sorted(con.sql(blocked_pairs_sql("recs", rules, packed=p)).fetchall())
           for p in (True, False)]
    assert got[0] == got[1] == [(0, 1), (0, 2), (0, 3), (0, 6), (1, 6), (2, 3), (3, 4),
                                (4, 6)]


def test_arrow_records_in_chunks_score_as_the_table(matched: tuple, monkeypatch) -> None:
    """Records given as an Arrow table of 64-bit token hashes in several uneven chunks (as
    the engine passes them, read in place) give the model, pairs and clusters of the same
    records given as a table name: the fast path joins the chunks' buffers and validity."""
    from cleanroom.matching import _splink

    _, table, _ = matched
    con = duckdb.connect()
    con.register("records", table)
    tokens = [c for c in table.column_names if c not in ("record_key", "source")]
    hashed = con.sql("SELECT record_key, source, " + ", ".join(
        f'CASE WHEN "{c}" IS NULL THEN NULL ELSE hash("{c}") END AS "{c}"' for c in tokens)
        + " FROM records").to_arrow_table()
    n = hashed.num_rows
    cuts = [0, 7, n // 3, n // 3 + 1, n]  # a one-row chunk and offsets not a multiple of 8
    chunked = pa.Table.from_batches([b for i in range(len(cuts) - 1)
                                     for b in hashed.slice(cuts[i], cuts[i + 1] - cuts[i])
                                     .to_batches()])
    assert chunked.column(tokens[0]).num_chunks == 4 and chunked.column(tokens[0]).null_count
    monkeypatch.setattr(_splink, "FAST_PREDICT_FROM", 0)
    opts = ProbabilisticOptions(keep_pairs_above=1e-9)
    _same_scores(resolve_probabilistic(con, chunked, options=opts),
                 resolve_probabilistic(con, "records", options=opts))
