"""The blocking-key cap: keys held by more than `max_block_size` records block none of them,
exactly the keys a plain GROUP BY ... HAVING finds, nulls untouched, rows in their order."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from cleanroom.matching._probabilistic import _cap_block_keys


def reference(keys: np.ndarray, cap: int) -> list[int]:
    con = duckdb.connect()
    con.register("k", pa.table({"k": pa.array(keys, pa.uint64())}))
    return sorted(r[0] for r in con.execute(
        f"SELECT k FROM k GROUP BY k HAVING count(*) > {cap}").fetchall())


def test_cap_nulls_only_the_common_keys_and_keeps_row_order():
    rng = np.random.default_rng(9)
    values = rng.integers(0, 500, 20_000).astype(np.uint64)
    nulls = rng.random(20_000) < 0.2
    column = pa.array(values, pa.uint64(), mask=nulls)
    table = pa.table({"pos": np.arange(20_000), "_block_0": column})
    capped = _cap_block_keys(table, ["_block_0"], 40)
    big = set(reference(values[~nulls], 40))
    want = [None if m or int(v) in big else int(v) for v, m in zip(values, nulls, strict=True)]
    assert capped.column("pos").to_pylist() == list(range(20_000))
    assert capped.column("_block_0").to_pylist() == want
    assert 0 < len(big) < 500
