"""Stable person ids: the sort-based key and registry steps give what the rule says (checked
against a plain reference), ids never change as the registry grows, and a registry written
unsorted by an earlier engine is read with its ids intact."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cleanroom.engine._people import (
    Registry,
    assign_ids,
    person_keys,
    read_registry,
    write_registry,
)

EMPTY = Registry(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64))


def reference_keys(keys: np.ndarray, row_keys: np.ndarray) -> np.ndarray:
    """The rule, entity by entity: a key held by more than one entity gives way to the row
    key."""
    counts: dict[int, int] = {}
    for k in keys.tolist():
        counts[k] = counts.get(k, 0) + 1
    return np.array([r if counts[k] > 1 else k for k, r in zip(keys.tolist(),
                                                               row_keys.tolist(), strict=True)],
                    dtype=np.uint64)


def random_keys(rng: np.random.Generator, n: int, shared: int, *,
                edges: bool = True) -> tuple[np.ndarray, np.ndarray]:
    keys = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    if shared:
        keys[rng.choice(n, shared, replace=False)] = keys[rng.choice(n, shared)]
    if edges:
        keys[: min(n, 2)] = [0, 2**64 - 1][: min(n, 2)]  # the edges of the key space
    return keys, rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)


@pytest.mark.parametrize("seed, n, shared", [(0, 1, 0), (1, 2, 0), (2, 1000, 0), (3, 1000, 40),
                                             (4, 50_000, 3), (5, 7, 7)])
def test_person_keys_follow_the_rule(seed, n, shared):
    keys, rows = random_keys(np.random.default_rng(seed), n, shared)
    distinct, inverse = person_keys(keys, rows)
    assert np.array_equal(distinct[inverse], reference_keys(keys, rows))
    assert np.all(distinct[1:] > distinct[:-1])


@pytest.mark.parametrize("seed", range(4))
def test_ids_are_dense_stable_and_only_grow(seed):
    rng = np.random.default_rng(seed)
    keys, rows = random_keys(rng, 5000, 20)
    ids, registry = assign_ids(*person_keys(keys, rows), EMPTY)
    assert registry is not None
    assert sorted(set(ids.tolist())) == list(range(len(set(reference_keys(keys, rows).tolist()))))
    by_key = dict(zip(reference_keys(keys, rows).tolist(), ids.tolist(), strict=True))
    # a re-upload: some people gone, some new, the rest shuffled
    keep = rng.permutation(5000)[:4000]
    more, more_rows = random_keys(rng, 800, 0, edges=False)
    again_keys = np.concatenate([reference_keys(keys, rows)[keep], more])
    again_rows = np.concatenate([rows[keep], more_rows])
    ids2, grown = assign_ids(*person_keys(again_keys, again_rows), registry)
    assert grown is not None
    for k, i in zip(again_keys[:4000].tolist(), ids2[:4000].tolist(), strict=True):
        assert by_key[k] == i  # the same people keep their ids
    assert set(ids2[4000:].tolist()) == set(range(registry.next_id, registry.next_id + 800))
    assert np.array_equal(grown.ids[np.searchsorted(grown.keys, registry.keys)], registry.ids)
    same, none = assign_ids(*person_keys(again_keys, again_rows), grown)
    assert none is None and np.array_equal(same, ids2)


def test_registry_written_unsorted_is_read_with_its_ids(tmp_path):
    rng = np.random.default_rng(9)
    keys = rng.permutation(np.arange(100, 200, dtype=np.uint64) * 7919)
    ids = rng.permutation(100).astype(np.uint64)
    path = tmp_path / "airline.parquet"
    pq.write_table(pa.table({"k": pa.array(keys, pa.uint64()), "id": pa.array(ids, pa.uint64())}),
                   path)
    got = read_registry(path)
    assert dict(zip(got.keys.tolist(), got.ids.tolist(), strict=True)) \
        == dict(zip(keys.tolist(), ids.tolist(), strict=True))
    assigned, grown = assign_ids(*person_keys(keys[:10], keys[:10] + 1), got)
    assert grown is None and np.array_equal(assigned, ids[:10])
    write_registry(path, got)
    assert path.stat().st_mode & 0o077 == 0
    again = read_registry(path)
    assert np.array_equal(again.keys, got.keys) and np.array_equal(again.ids, got.ids)
    assert read_registry(tmp_path / "none.parquet").next_id == 0


def test_engine_ids_match_the_sql_rule_on_the_demo(demo_run, tmp_path):
    """On the demo (people with several records, tokens shared by no one): every table's
    entity → id map groups entities exactly as the person keys computed in SQL do."""
    import shutil

    import cleanroom
    from cleanroom.engine._people import engine_secret, state_folder
    from cleanroom.engine._sql import quote_ident

    target = tmp_path / "cleanroom"
    shutil.copytree(demo_run / "cleanroom", target,
                    ignore=shutil.ignore_patterns(".cleanroom-privacy", "audit.jsonl"))
    with cleanroom.open_collaboration(target / "collaboration.toml") as room:
        index = room.people_index()
        salt = engine_secret(state_folder(room.collaboration))
        for name, table in room.collaboration.tables.items():
            joins = list(table.policy.join_columns)
            rows = room.entity_rows_sql(name, [], overlap_only=False, record_id="_cr_rid",
                                        token_columns=[*joins, "row_id"])
            toks = ", ".join(f"r.{quote_ident(c)}" for c in joins)
            want = dict(room.connection.execute(
                f"WITH p AS (SELECT r.entity_id AS eid, min(hash(CAST(? AS BLOB), ?, {toks})) "
                "AS k, min(hash(CAST(? AS BLOB), ?, 'row', r.row_id)) AS k2 FROM "
                f"({rows.text}) r GROUP BY r.entity_id), d AS (SELECT k FROM p GROUP BY k "
                "HAVING count(*) > 1) SELECT p.eid, CASE WHEN d.k IS NULL THEN p.k ELSE p.k2 "
                "END FROM p LEFT JOIN d ON d.k = p.k",
                [salt, name, salt, name, *rows.params]).fetchall())
            ents = np.array(sorted(want), dtype=np.int64)
            ids = index.ids(name, ents)
            pairs = {(want[e], p) for e, p in zip(ents.tolist(), ids.tolist(), strict=True)}
            assert len(pairs) == len({k for k, _ in pairs}) == len({p for _, p in pairs})
            assert sorted({p for _, p in pairs}) == list(range(len(pairs)))


@pytest.mark.parametrize("seed", range(5))
def test_unscramble_inverts_the_sql_scramble(seed):
    """The engine reads person ids by entity label: `unscramble` must give back exactly the
    record positions DuckDB's `scramble_sql` turned into entity ids, edges included."""
    import duckdb

    from cleanroom.engine._resolve import new_scramble_key, scramble_sql, unscramble

    rng = np.random.default_rng(seed)
    key = new_scramble_key()
    nodes = np.concatenate([rng.integers(0, 8 << 40, 5000), [0, (1 << 48) - 1, 1 << 40]])
    con = duckdb.connect()
    con.register("n", pa.table({"node": nodes}))
    ids = con.execute(f"SELECT {scramble_sql('node', key)} AS e FROM n").fetchnumpy()["e"]
    assert len(set(ids.tolist())) == len(set(nodes.tolist()))  # a bijection
    assert unscramble(np.asarray(ids), key).tolist() == nodes.tolist()


def test_people_of_unknown_entities_are_refused(demo_run, tmp_path):
    """An entity id that is not of this resolution (a forged or stale one: its label falls
    outside every table, past a table's rows, or on a row that labels no entity of that
    table) refuses the check rather than guessing whom it stands for."""
    import shutil

    import cleanroom
    from cleanroom.engine._resolve import NODE_SHIFT, scramble_sql
    from protocols import PolicyRefusal

    target = tmp_path / "cleanroom"
    shutil.copytree(demo_run / "cleanroom", target,
                    ignore=shutil.ignore_patterns(".cleanroom-privacy", "audit.jsonl"))
    with cleanroom.open_collaboration(target / "collaboration.toml") as room:
        index = room.people_index()
        key = room.resolution().scramble
        brand_only = room.connection.execute(
            "SELECT entity_id FROM read_parquet(?) WHERE t = 1 AND n_tables = 1 LIMIT 1",
            [str(room.resolution().path)]).fetchone()
        assert brand_only is not None
        known = index.ids("brand", np.array([brand_only[0]]))
        assert known.size == 1
        shared = room.connection.execute(  # labelled by an airline row
            "SELECT entity_id FROM read_parquet(?) WHERE n_tables = 2 LIMIT 2",
            [str(room.resolution().path)]).fetchall()
        mixed = np.array([shared[0][0], brand_only[0], shared[1][0]])
        one_by_one = [int(index.ids("brand", np.array([e]))[0]) for e in mixed.tolist()]
        assert index.ids("brand", mixed).tolist() == one_by_one  # two label tables at once
        assert len(set(one_by_one)) == 3
        with pytest.raises(PolicyRefusal) as exc:  # an entity without airline records
            index.ids("airline", np.array([brand_only[0]]))
        assert exc.value.rule == "difference_check"
        for label in (7 << NODE_SHIFT, (1 << NODE_SHIFT) - 1):  # no such table; no such row
            forged = room.connection.execute(f"SELECT {scramble_sql(str(label), key)}").fetchone()
            assert forged is not None
            with pytest.raises(PolicyRefusal):
                index.row(np.array([forged[0]]), ("airline", "brand"))
