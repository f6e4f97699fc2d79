"""The audit log: hash chain over JSON Lines; edits, deletions and reorderings are caught."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat

import pytest

from cleanroom import AuditError, AuditLog, CleanroomBug

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def _log(tmp_path, n=4):
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(n):
        log.record(member="airline", request={"analysis": "overlap", "by": [f"t.c{i}"]},
                   decision="accepted" if i % 2 == 0 else "refused",
                   rule="output_constraints" if i % 2 == 0 else "can_query",
                   rows_returned=i, rows_suppressed=1, now=NOW)
    return log


def test_chain_links_entries(tmp_path):
    log = _log(tmp_path)
    entries = log.entries()
    assert [e["seq"] for e in entries] == [0, 1, 2, 3]
    assert entries[0]["prev_sha256"] == "0" * 64
    assert all(b["prev_sha256"] == a["sha256"] for a, b in zip(entries, entries[1:], strict=False))
    assert entries[2]["time"] == "2026-11-29T12:00:00+00:00"
    assert log.verify().entries == 4 and log.verify().head_sha256 == entries[-1]["sha256"]
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600


def _lines(log):
    return log.path.read_text().splitlines()


@pytest.mark.parametrize("tamper, message", [
    (lambda ls: ls[:1] + [ls[1].replace('"rows_returned":1', '"rows_returned":9')] + ls[2:],
     "line 2: entry was edited"),
    (lambda ls: ls[:-1] + [ls[-1].replace('"rows_suppressed":1', '"rows_suppressed":0')],
     "line 4: entry was edited"),
    (lambda ls: ls[:1] + ls[2:], "line 2: entry out of sequence"),
    (lambda ls: [ls[1], ls[0]] + ls[2:], "line 1: entry out of sequence"),
    (lambda ls: ls[:2] + ["{not json"] + ls[2:], "line 3 is not a JSON entry"),
])
def test_tampering_is_detected(tmp_path, tamper, message):
    log = _log(tmp_path)
    log.path.write_text("\n".join(tamper(_lines(log))) + "\n")
    with pytest.raises(AuditError, match=message):
        log.verify()


def test_renumbered_deletion_breaks_the_chain(tmp_path):
    log = _log(tmp_path)
    entries = [json.loads(x) for x in _lines(log)]
    del entries[1]
    for i, e in enumerate(entries):
        e["seq"] = i
    log.path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    with pytest.raises(AuditError, match="line 2: chain broken"):
        log.verify()


def test_entries_refuse_bytes_and_reserved_keys(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    with pytest.raises(CleanroomBug):
        log.append({"member": "x", "request": {"token": b"\x00" * 32}})
    with pytest.raises(CleanroomBug):
        log.append({"member": "x", "sha256": "0"})
    assert not log.path.exists()


def test_an_append_adds_one_line_in_place(tmp_path):
    log = _log(tmp_path, n=3)
    before = os.stat(log.path)
    text = log.path.read_bytes()
    log.record(member="brand", request={"analysis": "overlap"}, decision="accepted",
               rule="output_constraints", now=NOW)
    after = log.path.read_bytes()
    assert os.stat(log.path).st_ino == before.st_ino  # appended, not rewritten
    assert after.startswith(text) and after.count(b"\n") == 4
    assert log.verify().entries == 4


def test_an_interrupted_append_is_left_out_then_removed(tmp_path):
    log = _log(tmp_path, n=3)
    with open(log.path, "ab") as fh:
        fh.write(b'{"member": "brand", "seq": 3, "requ')  # a crash in the middle of a write
    assert log.verify().entries == 3 and len(log.entries()) == 3
    entry = log.record(member="brand", request={"analysis": "overlap"}, decision="accepted",
                       rule="output_constraints", now=NOW)
    assert entry["seq"] == 3
    assert log.verify().entries == 4
    assert b'"seq": 3, "requ' not in log.path.read_bytes()


def test_a_whole_last_entry_without_its_newline_is_kept(tmp_path):
    log = _log(tmp_path, n=3)
    log.path.write_bytes(log.path.read_bytes().rstrip(b"\n"))
    assert log.verify().entries == 3
    log.record(member="brand", request={"analysis": "overlap"}, decision="accepted",
               rule="output_constraints", now=NOW)
    assert [e["seq"] for e in log.entries()] == [0, 1, 2, 3]


def _append_many(path, who, n):
    log = AuditLog(path)
    for i in range(n):
        log.record(member=who, request={"analysis": "overlap", "i": i}, decision="accepted",
                   rule="output_constraints")


def test_parallel_appends_from_processes_form_one_chain(tmp_path):
    import multiprocessing

    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(path, f"m{k}", 15)) for k in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    log = AuditLog(path)
    assert log.verify().entries == 90
    assert sorted(e["seq"] for e in log.entries()) == list(range(90))
