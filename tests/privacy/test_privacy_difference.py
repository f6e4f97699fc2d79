"""Difference checks: the differencing attacks of issue 13, as people sets, are suppressed in
either order; identical sets and ordinary dashboards are still answered; the memory persists,
merges its segments and stays exact under concurrent processes."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyroaring import BitMap64, FrozenBitMap64

from cleanroom.privacy import DifferenceMemory, DifferenceVerdict, people_set
from cleanroom.privacy import _people_store as store
from cleanroom.privacy._people import sketch
from protocols import PolicyRefusal

MIN = 50  # the airline's minimum in the demo

# The demo's Apparel buyers by airline tier: 508 Basic, 33 Platinum (withheld), 2 of them PER.
BASIC = people_set(range(508))
PLATINUM = people_set(range(1000, 1033))
PLATINUM_PER = people_set([1000, 1001])


def answered(memory: DifferenceMemory, *rows: BitMap64, minimum: int = MIN) -> list[bool]:
    """Ask one result with these rows; say which rows were answered."""
    verdict = memory.check_and_remember(list(rows), minimum)
    return [i in verdict.accepted for i in range(len(rows))]


@pytest.mark.parametrize("first_is_union", [True, False])
def test_subset_attack_is_suppressed_in_both_orders(tmp_path, first_is_union):
    memory = DifferenceMemory(tmp_path)
    union, basic = BASIC | PLATINUM, BASIC
    first, second = (union, basic) if first_is_union else (basic, union)
    assert answered(memory, first) == [True]
    assert answered(memory, second) == [False]  # |Δ| = 33 people, the withheld cell


@pytest.mark.parametrize("victims_first", [True, False])
def test_or_victim_attack_is_suppressed_in_both_orders(tmp_path, victims_first):
    memory = DifferenceMemory(tmp_path)
    with_victims = BASIC | PLATINUM_PER  # tier = 'Basic' OR (tier = 'Platinum' AND airport = 'PER')
    queries = [with_victims, BASIC] if victims_first else [BASIC, with_victims]
    assert answered(memory, queries[0]) == [True]
    assert answered(memory, queries[1]) == [False]  # |Δ| = 2


def test_not_victim_attack_reveals_no_one_of_forty(tmp_path):
    memory = DifferenceMemory(tmp_path)
    everyone = people_set(range(5000))
    assert answered(memory, everyone) == [True]
    for victim in range(100, 140):  # one NOT (...) query per victim: everyone but the victim
        assert answered(memory, everyone - BitMap64([victim])) == [False]
    assert len(memory) == 1


def test_reupload_dropping_one_customer_is_suppressed(tmp_path):
    memory = DifferenceMemory(tmp_path)
    assert answered(memory, BASIC) == [True]
    # the owner drops one customer and re-uploads: entity ids of the others are unchanged
    assert answered(DifferenceMemory(tmp_path), BASIC - BitMap64([7])) == [False]


def test_identical_sets_are_answered_again(tmp_path):
    memory = DifferenceMemory(tmp_path)
    union = BASIC | PLATINUM
    assert answered(memory, union) == [True]
    assert answered(memory, BitMap64(union)) == [True]
    assert answered(memory, FrozenBitMap64(union)) == [True]
    assert len(memory) == 1  # re-asking does not grow the memory


def test_rows_within_one_result_are_checked_against_each_other(tmp_path):
    memory = DifferenceMemory(tmp_path)
    verdict = memory.check_and_remember([BASIC | PLATINUM, BASIC, BASIC | PLATINUM], MIN)
    assert verdict == DifferenceVerdict(accepted=(0, 2), suppressed=(1,))
    assert verdict.suppressed_count == 1
    # only the answered set was remembered: the withheld one can still not be asked alone
    assert answered(memory, BASIC) == [False]
    assert len(memory) == 1


def test_a_row_asked_before_is_answered_and_still_guards_its_neighbours(tmp_path):
    memory = DifferenceMemory(tmp_path)
    union = FrozenBitMap64(BASIC | PLATINUM)
    assert answered(memory, union) == [True]
    assert answered(memory, union, BASIC) == [True, False]
    assert answered(memory, BASIC, union) == [False, True]
    dry = memory.check([union, BASIC], MIN)  # a dry run's work is reused by the real one
    assert memory.check_and_remember([union, BASIC], MIN) == dry
    assert len(memory) == 1


@pytest.mark.parametrize(("size", "top"), [(4096, 4096), (5000, 300_000), (70_000, 70_001),
                                           (400_000, 10_000_000), (66_000, 2**28 - 1)])
def test_people_set_of_many_small_ids_equals_the_plain_build(size, top):
    ids = np.random.default_rng(size).choice(top, size, replace=False)
    plain = BitMap64(ids.tolist())
    assert people_set(ids) == plain
    assert people_set(np.concatenate([ids, ids[:9]]).astype(np.int64)) == plain


def test_difference_of_minimum_or_more_is_answered(tmp_path):
    memory = DifferenceMemory(tmp_path)
    assert answered(memory, people_set(range(100))) == [True]
    assert answered(memory, people_set(range(150))) == [True]  # |Δ| = 50 = minimum
    assert answered(memory, people_set(range(199))) == [False]  # |Δ| with range(150) = 49


def test_partially_overlapping_sets_use_the_symmetric_difference(tmp_path):
    memory = DifferenceMemory(tmp_path)
    assert answered(memory, people_set(range(200))) == [True]
    assert answered(memory, people_set(range(20, 220))) == [False]  # 20 out + 20 in = 40
    assert answered(memory, people_set(range(30, 230))) == [True]  # 30 + 30 = 60 vs the first


def test_minimum_of_one_checks_nothing(tmp_path):
    memory = DifferenceMemory(tmp_path)
    assert answered(memory, BASIC, BASIC - BitMap64([1]), minimum=1) == [True, True]


def test_check_is_a_dry_run(tmp_path):
    memory = DifferenceMemory(tmp_path)
    assert memory.check([BASIC], MIN).accepted == (0,)
    assert memory.check([BASIC], MIN).accepted == (0,)
    assert answered(memory, BASIC | PLATINUM) == [True]  # nothing was remembered by check
    assert memory.check([BASIC], MIN).suppressed == (0,)


def _dashboards() -> list[list[BitMap64]]:
    """Overlap, by tier, by category, tier × category over 3,000 generated people."""
    rng = np.random.default_rng(7)
    people = np.arange(3000, dtype=np.uint64)
    tier = rng.choice(4, size=3000, p=[0.5, 0.25, 0.15, 0.10])
    categories = rng.random((3000, 5)) < 0.35
    by_tier = [people_set(people[tier == t]) for t in range(4)]
    by_category = [people_set(people[categories[:, c]]) for c in range(5)]
    cells = [t & c for t in by_tier for c in by_category]
    return [[people_set(people)], by_tier, by_category, [x for x in cells if len(x) >= MIN]]


def test_ordinary_dashboards_are_still_answered(tmp_path):
    memory = DifferenceMemory(tmp_path)
    for result in _dashboards() * 2:  # and asked twice
        verdict = memory.check_and_remember(result, MIN)
        assert verdict.suppressed == ()


def test_memory_persists_across_instances(tmp_path):
    answered(DifferenceMemory(tmp_path), BASIC | PLATINUM)
    again = DifferenceMemory(tmp_path)
    assert again.check([BASIC], MIN).suppressed == (0,)
    assert len(again) == 1


def test_an_instance_sees_what_another_remembered_since(tmp_path):
    one, two = DifferenceMemory(tmp_path), DifferenceMemory(tmp_path)
    assert answered(one, people_set(range(1000))) == [True]
    assert answered(two, people_set(range(10))) == [True]
    assert answered(one, people_set(range(11))) == [False]  # learnt from two's answer
    assert len(one) == 2


def test_segments_are_merged_and_reloaded(tmp_path):
    writer, stale = DifferenceMemory(tmp_path), DifferenceMemory(tmp_path)
    assert answered(stale, people_set(range(1_000_000, 1_000_100))) == [True]
    for i in range(store.COMPACT_AFTER + 5):
        assert answered(writer, people_set(range(i * 1000, i * 1000 + 60))) == [True]
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".bin"))
    assert len([n for n in names if n.startswith("base-")]) == 1
    assert len(names) < 10
    fresh = DifferenceMemory(tmp_path)
    assert fresh.check([people_set(range(5000, 5059))], MIN).suppressed == (0,)
    assert len(fresh) == store.COMPACT_AFTER + 6
    # the instance that read the old segments reloads past the merge and misses nothing
    assert stale.check([people_set(range(68_000, 68_059))], MIN).suppressed == (0,)
    assert len(stale) == store.COMPACT_AFTER + 6


def test_unreadable_memory_fails_closed(tmp_path):
    answered(DifferenceMemory(tmp_path), BASIC)
    (segment,) = tmp_path.glob("rows-*.bin")
    segment.write_bytes(segment.read_bytes()[:-3])
    with pytest.raises(PolicyRefusal) as refused:
        DifferenceMemory(tmp_path).check([PLATINUM], MIN)
    assert refused.value.rule == "difference_check"
    assert "truncated" in str(refused.value)


def test_rows_must_be_people_sets(tmp_path):
    with pytest.raises(TypeError):
        DifferenceMemory(tmp_path).check([{1, 2, 3}], MIN)  # type: ignore[list-item]
    with pytest.raises(ValueError):
        DifferenceMemory(tmp_path).check([BASIC], 0)


def test_people_set_from_numpy_and_iterables():
    ids = np.array([5, 3, 2**63 + 1, 3], dtype=np.uint64)
    assert people_set(ids) == BitMap64([3, 5, 2**63 + 1])
    assert people_set(np.array([1, 2], dtype=np.int32)) == BitMap64([1, 2])
    assert people_set(iter([4, 4, 9])) == BitMap64([4, 9])
    with pytest.raises(ValueError):
        people_set(np.array([-1, 2]))


@given(
    st.sets(st.integers(0, 2**64 - 1), max_size=200),
    st.sets(st.integers(0, 2**64 - 1), max_size=200),
)
def test_sketch_distance_never_exceeds_the_symmetric_difference(a, b):
    left, right = BitMap64(a), BitMap64(b)
    bound = int(np.abs(sketch(left) - sketch(right)).sum())
    assert bound <= left.symmetric_difference_cardinality(right)


def test_sketch_prefilter_agrees_with_exact_comparison(tmp_path):
    """Many remembered rows of near-equal size: the sketch path and the exact path agree."""
    rng = np.random.default_rng(3)
    memory = DifferenceMemory(tmp_path)
    rows = [people_set(rng.choice(10**6, 300 + i % 40, replace=False)) for i in range(300)]
    assert memory.check_and_remember(rows, MIN).suppressed == ()
    near = [rows[i] ^ people_set(range(10**7, 10**7 + 1 + i % 49)) for i in range(0, 300, 7)]
    assert memory.check(near, MIN).accepted == ()
    assert memory.check([rows[5], rows[9]], MIN).suppressed == ()


def _race_one_row(folder: str, person: int, results: mp.Queue) -> None:  # type: ignore[type-arg]
    """Child: offer the shared base plus one person of its own."""
    rows = [people_set(range(100)) | BitMap64([10_000 + person])]
    results.put(DifferenceMemory(folder).check_and_remember(rows, MIN).accepted == (0,))


def _add_rows(folder: str, worker: int, results: mp.Queue) -> None:  # type: ignore[type-arg]
    """Child: remember ten sets of its own, far apart from everyone else's."""
    memory = DifferenceMemory(folder)
    for i in range(10):
        start = (worker * 10 + i) * 1000
        memory.check_and_remember([people_set(range(start, start + 60 + i))], MIN)
    results.put(True)


@pytest.mark.parametrize(("worker", "expected"), [(_race_one_row, 1), (_add_rows, 80)])
def test_concurrent_processes(tmp_path, worker, expected):
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(str(tmp_path), i, results)) for i in range(8)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    if worker is _race_one_row:
        assert sum(outcomes) == expected  # pairwise |Δ| = 2: exactly one may be answered
    else:
        memory = DifferenceMemory(tmp_path)
        memory.check([], MIN)
        assert len(memory) == expected  # no update was lost


def test_one_instance_shared_by_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    memory = DifferenceMemory(tmp_path)

    def work(worker: int) -> int:
        accepted = 0
        for i in range(5):
            start = (worker * 5 + i) * 1000
            rows = [people_set(range(start, start + 60)), people_set(range(50_000, 50_100))]
            accepted += len(memory.check_and_remember(rows, MIN).accepted)
        return accepted

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(work, range(8))) == 80  # the shared row is identical: always fine
    fresh = DifferenceMemory(tmp_path)
    fresh.check([], MIN)
    assert len(fresh) == 41


def brute_force(remembered: list[BitMap64], rows: list[BitMap64], minimum: int) -> list[int]:
    """The rule itself, row by row against every set: which rows are withheld."""
    seen, withheld = list(remembered), []
    for i, row in enumerate(rows):
        if any(0 < row.symmetric_difference_cardinality(s) < minimum for s in seen):
            withheld.append(i)
        else:
            seen.append(row)
    return withheld


def near_copies(rng: np.random.Generator, base: BitMap64, minimum: int) -> list[BitMap64]:
    """Sets differing from `base` by 0, 1, minimum−1, minimum and minimum+1 people, by adding,
    removing or swapping."""
    ids = np.frombuffer(base.to_array(), dtype=np.uint64)
    out = []
    for k in (0, 1, minimum - 1, minimum, minimum + 1):
        extra = people_set(rng.choice(2**40, k, replace=False).astype(np.uint64) + 2**41)
        out.append(base | extra)
        if k <= len(ids):
            gone = people_set(rng.choice(ids, k, replace=False))
            out.append(base - gone)
            half = people_set(rng.choice(ids, k // 2, replace=False))
            out.append((base - half) | people_set(np.frombuffer(
                extra.to_array(), dtype=np.uint64)[: k - k // 2]))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_indexed_check_agrees_with_brute_force(tmp_path, seed):
    """Random sets of every size the bounds treat differently (tiny, around the signature
    limit, large), each with near copies at the edges of the rule: the memory withholds
    exactly what comparing with every set withholds, read back from disk or not."""
    rng = np.random.default_rng(seed)
    minimum = int(rng.choice([2, 25, 50, 100]))
    sizes = [1, 5, 60, 300, 4000, 8150, 8192, 8193, 8260, 20_000]
    bases = [people_set(rng.choice(10**6, s, replace=False)) for s in sizes]
    rows = [r for b in bases for r in near_copies(rng, b, minimum)]
    rng.shuffle(rows)
    first, second = rows[: len(rows) // 2], rows[len(rows) // 2:]
    memory = DifferenceMemory(tmp_path)
    got1 = list(memory.check_and_remember(first, minimum).suppressed)
    assert got1 == brute_force([], first, minimum)
    kept = [r for i, r in enumerate(first) if i not in set(got1)]
    want = brute_force(kept, second, minimum)
    assert list(memory.check(second, minimum).suppressed) == want
    assert list(DifferenceMemory(tmp_path).check(second, minimum).suppressed) == want
    assert want  # the edges were exercised: some rows were withheld


def _v1_file(rows: list[BitMap64]) -> bytes:
    """A memory segment in the first on-disk format."""
    import struct

    from cleanroom.privacy._people import canonical, digest

    out = [b"CRPSET1\n"]
    for people in rows:
        data = canonical(people).serialize()
        out.append(struct.pack("<Q16s64II", len(people), digest(canonical(people)),
                               *sketch(people).tolist(), len(data)))
        out.append(data)
    return b"".join(out)


def test_memory_of_the_first_format_is_read_and_merged(tmp_path):
    (tmp_path / store.file_name("rows", 1)).write_bytes(_v1_file([BASIC, PLATINUM | BASIC]))
    memory = DifferenceMemory(tmp_path)
    assert memory.check([BASIC | PLATINUM_PER, BASIC], MIN).suppressed == (0,)
    for i in range(store.COMPACT_AFTER):
        assert answered(memory, people_set(range(10**5 + i * 1000, 10**5 + i * 1000 + 60))) \
            == [True]
    (base,) = tmp_path.glob("base-*.bin")
    assert base.read_bytes().startswith(store.MAGIC)
    again = DifferenceMemory(tmp_path)
    assert again.check([BASIC | PLATINUM_PER, BASIC], MIN).suppressed == (0,)
    assert len(again) == store.COMPACT_AFTER + 2


@given(
    st.sets(st.integers(0, 2**64 - 1), max_size=300),
    st.sets(st.integers(0, 2**64 - 1), max_size=300),
)
def test_signature_distance_never_exceeds_the_symmetric_difference(a, b):
    from cleanroom.privacy._people import signature

    left, right = BitMap64(a), BitMap64(b)
    bound = int(np.bitwise_count(signature(left) ^ signature(right)).sum())
    assert bound <= left.symmetric_difference_cardinality(right)
