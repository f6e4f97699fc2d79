"""Differential tests of entity resolution's fast paths: the single-rule shortcut (components
are the keys, no label propagation) equals the propagation path and a Python union-find, with
duplicate profiles, over-shared tokens, keys of more than two records and missing values."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from _engine_fixtures import KINDS, write_party
from test_engine_resolve import reference

from cleanroom.engine import connect
from cleanroom.engine._resolve import Resolution, ResolveInput, resolve


def partition(con, res: Resolution, sizes: list[int]) -> set[frozenset]:
    """Entities as sets of (table, row), singletons included (ids themselves are random)."""
    got = defaultdict(set)
    for t, rn, eid in con.execute("SELECT t, rn, entity_id FROM read_parquet(?)",
                                  [str(res.path)]).fetchall():
        got[eid].add((t, rn))
    linked = set().union(*got.values()) if got else set()
    single = {frozenset({(t, rn)}) for t, n in enumerate(sizes) for rn in range(n)
              if (t, rn) not in linked}
    return {frozenset(g) for g in got.values()} | single


def entity_facts(con, res: Resolution) -> set[tuple]:
    """Per linked entity: its records, number of tables and linking rule."""
    rows = con.execute("SELECT entity_id, list((t, rn) ORDER BY t, rn), any_value(n_tables), "
                       "any_value(rule) FROM read_parquet(?) GROUP BY entity_id",
                       [str(res.path)]).fetchall()
    return {(tuple(tuple(x.values()) if isinstance(x, dict) else tuple(x) for x in recs), n, r)
            for _, recs, n, r in rows}


@pytest.mark.parametrize(("seed", "cap", "ntables"), [(1, 3, 2), (2, 1, 3), (3, 5, 3)])
def test_single_rule_shortcut_equals_propagation(tmp_path, seed, cap, ntables):
    rnd = random.Random(seed)
    sizes = [rnd.randrange(120, 200) for _ in range(ntables)]
    paths = []
    for i, n in enumerate(sizes):
        # Few distinct emails: duplicates within a table, keys of 2..many records, over-shared.
        recs = [{"email": (f"e{rnd.randrange(70)}" if rnd.random() < 0.8 else None),
                 "phone": f"p{rnd.randrange(40)}"} for _ in range(n)]
        paths.append(write_party(tmp_path / f"t{i}.parquet", f"t{i}", recs, attributes={},
                                 seed=seed + i))
    inputs = [ResolveInput(f"t{i}", p, KINDS, n)
              for i, (p, n) in enumerate(zip(paths, sizes, strict=True))]
    con = connect()
    fast = resolve(con, inputs, ("email",), cap, tmp_path / "fast")
    slow = resolve(con, inputs, ("email",), cap, tmp_path / "slow", propagate=True)
    assert fast.to_dict() == slow.to_dict()
    assert fast.overlap_entities > 0 and fast.ignored_tokens["email"]["tokens"] > 0
    assert partition(con, fast, sizes) == partition(con, slow, sizes)
    assert entity_facts(con, fast) == entity_facts(con, slow)
    want, n_ignored = reference(paths, ("email",), cap)
    assert partition(con, fast, sizes) == want
    assert fast.ignored_tokens["email"]["tokens"] == n_ignored
    assert max(len(g) for g in want) > 2  # keys of more than two records were exercised


def test_two_rules_still_propagate(tmp_path):
    # Email links a to b, phone links b to c: one entity only propagation can find.
    a = write_party(tmp_path / "a.parquet", "a", [{"email": "x", "phone": "p1"}],
                    attributes={})
    b = write_party(tmp_path / "b.parquet", "b", [{"email": "x", "phone": "p2"},
                                                   {"email": "y", "phone": "p1"}], attributes={})
    con = connect()
    inputs = [ResolveInput("a", a, KINDS, 1), ResolveInput("b", b, KINDS, 2)]
    res = resolve(con, inputs, ("email", "phone"), 5, tmp_path / "c")
    assert partition(con, res, [1, 2]) == {frozenset({(0, 0), (1, 0), (1, 1)})}
    assert res.tables == {"a": {"rows": 1, "entities": 1}, "b": {"rows": 2, "entities": 1}}
    assert res.links_by_rule == {"email": 1, "phone": 0}


def test_content_hashes_parallel_and_remembered(tmp_path):
    import hashlib
    import os

    from cleanroom.engine._resolve import content_hashes

    files = []
    for i in range(3):
        f = tmp_path / f"f{i}.bin"
        f.write_bytes(os.urandom(3 << 20) + bytes([i]))
        files.append(f)
    want = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    cache = tmp_path / "cache"
    assert content_hashes(files, cache) == want
    assert content_hashes([files[2], files[0], files[2]], cache) == [want[2], want[0], want[2]]
    # A rewritten file (new contents, same size) is hashed again, the others remembered.
    tmp = tmp_path / "new.bin"
    tmp.write_bytes(os.urandom(3 << 20) + b"\x01")
    os.replace(tmp, files[1])
    again = content_hashes(files, cache)
    assert again[0] == want[0] and again[2] == want[2]
    assert again[1] == hashlib.sha256(files[1].read_bytes()).hexdigest() != want[1]
