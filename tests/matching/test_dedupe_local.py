"""Local dedupe in the clear: a person_id per row and a summary."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from cleanroom.matching import DedupeOptions, DedupeSummary, dedupe
from protocols import ConfigError

FIRST = ["olivia", "liam", "emma", "noah", "amelia", "oliver", "sophia", "elijah", "isabella",
         "lucas", "mia", "mateo", "evelyn", "levi", "harper", "ezra", "luna", "james"]
LAST = ["walker", "hall", "allen", "young", "hernandez", "king", "wright", "lopez", "hill",
        "scott", "green", "adams", "baker", "gonzalez", "nelson", "carter", "mitchell"]


def _file(n: int = 300, dups: int = 60, seed: int = 5) -> tuple[dict[str, list], list[int]]:
    r = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append({"first_name": r.choice(FIRST), "last_name": r.choice(LAST),
                     "dob": f"{r.randrange(1940, 2005)}-{r.randrange(1, 13):02d}-"
                            f"{r.randrange(1, 29):02d}",
                     "postal_code": f"{r.randrange(10000, 99999)}",
                     "email": f"p{i}@mail.example", "person": i})
    for i in range(dups):
        q = dict(rows[i], email=None)
        if i % 3 == 1:
            q["last_name"] = q["last_name"][:2] + q["last_name"][3:]  # one letter dropped
        if i % 3 == 0:
            q["dob"] = None
        rows.append(q)
    r.shuffle(rows)
    cols = {k: [row[k] for row in rows] for k in ("first_name", "last_name", "dob",
                                                  "postal_code", "email")}
    return cols, [row["person"] for row in rows]


@pytest.fixture(scope="module")
def deduped():
    cols, persons = _file()
    return dedupe(cols), persons


def test_dedupe_merges_duplicates(deduped) -> None:
    result, persons = deduped
    pid = result.person_id.to_pylist()
    assert len(pid) == len(persons)
    by_person: dict[int, set[int]] = {}
    for p, c in zip(persons, pid, strict=True):
        by_person.setdefault(p, set()).add(c)
    merged = sum(len(v) == 1 for p, v in by_person.items() if persons.count(p) > 1)
    assert merged >= 54  # of 60; a 360-row file gives EM few pairs to learn from
    by_cluster: dict[int, set[int]] = {}
    for p, c in zip(persons, pid, strict=True):
        by_cluster.setdefault(c, set()).add(p)
    assert sum(len(v) > 1 for v in by_cluster.values()) == 0
    s = result.summary
    assert s.rows == 360 and s.people == len(set(pid))
    assert s.duplicate_rows == s.rows - s.people
    assert sum(size * count for size, count in s.clusters_by_size.items()) == s.rows
    assert s.to_dict()["share_merged"] == pytest.approx(s.duplicate_rows / 360)


def test_person_id_is_the_smallest_row_of_its_cluster(deduped) -> None:
    result, _ = deduped
    for pid in (result.person_id.to_pylist(), result.person_ids_at(0.95).to_pylist()):
        for row, p in enumerate(pid):
            assert p <= row and pid[p] == p
    assert len(set(result.person_ids_at(0.95).to_pylist())) >= result.summary.people
    with pytest.raises(ConfigError):
        DedupeOptions(threshold=0.3, keep_pairs_above=0.5)


def test_meta_dates_and_arrow_input() -> None:
    cols, _ = _file(60, 10)
    cols["dob"] = [d.replace("-", "") if d else None for d in cols["dob"]]
    arrays = {k: pa.array(v, pa.string()) for k, v in cols.items()}
    assert len(dedupe(arrays).person_id) == 70


def test_summary_of_labels() -> None:
    s = DedupeSummary.of(pa.array([0, 0, 2, 3, 3, 3]).to_numpy())
    assert (s.rows, s.people, s.clusters_by_size) == (6, 3, {1: 1, 2: 1, 3: 1})
    assert s.share_merged == 0.5


def test_refusals() -> None:
    with pytest.raises(ConfigError):
        dedupe({})
    with pytest.raises(ConfigError):
        dedupe({"first_name": ["a", "b"], "last_name": ["c"]})
    with pytest.raises(ConfigError):
        dedupe({"gender": ["f", "m"]})
    assert dedupe({"first_name": ["a"]}).summary.rows == 1
