"""The blocking-key cap: keys held by more than `max_block_size` records block none of them,
exactly the keys a plain GROUP BY ... HAVING finds, nulls untouched, rows in their order;
the fast path's blocking query applies the same cap itself."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from cleanroom.matching import null_frequent_values
from cleanroom.matching._splink import blocked_pairs_sql


def reference(keys: np.ndarray, cap: int) -> list[int]:
    con = duckdb.connect()
    con.register("k", pa.table({"k": pa.array(keys, pa.uint64())}))
    return sorted(r[0] for r in con.execute(
        f"SELECT k FROM k GROUP BY k HAVING count(*) > {cap}").fetchall())


def _keys(seed: int = 9, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 500, n).astype(np.uint64), rng.random(n) < 0.2


def test_cap_nulls_only_the_common_keys_and_keeps_row_order():
    values, nulls = _keys()
    column = pa.array(values, pa.uint64(), mask=nulls)
    table = pa.table({"pos": np.arange(20_000), "_block_0": column})
    capped, n_keys, n_rows = null_frequent_values(table, "_block_0", 40)
    big = set(reference(values[~nulls], 40))
    want = [None if m or int(v) in big else int(v) for v, m in zip(values, nulls, strict=True)]
    assert capped.column("pos").to_pylist() == list(range(20_000))
    assert capped.column("_block_0").to_pylist() == want
    assert 0 < len(big) < 500 and n_keys == len(big)
    assert n_rows == sum(1 for v, m in zip(values, nulls, strict=True) if not m and int(v) in big)


def test_cap_per_group_counts_each_group_alone():
    """With `per`, a value is over the cap when one group's rows hold more than cap of it;
    it is then nulled in every group."""
    table = pa.table({"g": [0] * 4 + [1] * 3 + [0, 1, 1],
                      "k": pa.array([7, 7, 7, 8, 8, 8, 7, 9, 9, None], pa.uint64())})
    capped, n_keys, n_rows = null_frequent_values(table, "k", 2, per="g")
    assert capped.column("k").to_pylist() == [None, None, None, 8, 8, 8, None, 9, 9, None]
    assert (n_keys, n_rows) == (1, 4)  # 7: three rows of group 0; 8: two of each group


def test_blocking_query_caps_as_nulling_first():
    """The fast path's blocking with `caps` gives the pairs of the same query on the column
    whose common keys were nulled first (Splink's path), beside an uncapped rule."""
    values, nulls = _keys(3, 3_000)
    other = np.random.default_rng(4).integers(0, 900, 3_000).astype(np.uint64)
    table = pa.table({"unique_id": np.arange(3_000, dtype=np.int64),
                      "_block_0": pa.array(values, pa.uint64(), mask=nulls),
                      "email": pa.array(other, pa.uint64())})
    capped, _, _ = null_frequent_values(table, "_block_0", 8)
    rules = [("_block_0",), ("email",)]
    con = duckdb.connect()
    con.register("raw", table)
    con.register("capped", capped)
    for packed in (True, False):
        got = con.sql(blocked_pairs_sql("raw", rules, packed=packed, caps={"_block_0": 8}))
        want = con.sql(blocked_pairs_sql("capped", rules, packed=packed))
        assert sorted(got.fetchall()) == sorted(want.fetchall())
    uncapped = con.sql(blocked_pairs_sql("raw", rules)).fetchall()
    assert len(uncapped) > len(want.fetchall()) > 1000
