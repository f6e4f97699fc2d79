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
