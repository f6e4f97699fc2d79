"""`audit verify` against the operator's key: a rewritten log (plain chain recomputed) and a
truncated log (even one the server restarted on) are detected by a member's kept heads."""

from __future__ import annotations

import json

import pytest
from _room_fixture import make_room, served, state_for
from click.testing import CliRunner

from cleanroom.cli import main
from cleanroom.engine._audit import _digest
from protocols import AuditError


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _rewrite(path, edit):
    entries = [json.loads(x) for x in path.read_text().splitlines()]
    edit(entries)
    prev = "0" * 64
    for e in entries:  # what anyone with write access can do: recompute the plain chain
        e["prev_sha256"] = prev
        e["sha256"] = _digest(e)
        prev = e["sha256"]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


@pytest.fixture
def busy(tmp_path):
    room = make_room(tmp_path)
    with served(room) as (url, _):
        for _ in range(3):
            assert cli("overlap", url, "--identity", room.key("airline")).exit_code == 0
        r = cli("audit", "verify", url, "--identity", room.key("airline"))
        assert r.exit_code == 0 and "every entry signed by the operator" in r.stdout
    return room


def test_a_rewritten_log_is_detected_locally_remotely_and_at_start(busy):
    room, log = busy, busy.operator / "audit.jsonl"
    original = log.read_bytes()

    def edit(entries):
        entries[1]["member"] = "brand"
    _rewrite(log, edit)
    r = cli("audit", "verify", room.collab)
    assert r.exit_code == 1
    assert r.stderr == ("error: audit.jsonl: line 2: the operator's signature does not verify "
                        "(entry rewritten, or signed by another key)\n")
    with pytest.raises(AuditError, match="line 2"):
        state_for(room)  # the server refuses to serve from it
    log.write_bytes(original)
    with served(room) as (url, _):
        log.write_bytes(b"")  # the running server's file is emptied under it
        _rewrite(log, lambda e: None)
        r = cli("audit", "verify", url, "--identity", room.key("airline"))
    assert r.exit_code == 1 and "entries were removed or rewritten" in r.stderr


def test_a_truncated_log_is_detected_by_a_kept_head(busy):
    room, log = busy, busy.operator / "audit.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:1]))  # still a valid, signed log: only a kept head tells
    assert cli("audit", "verify", room.collab).exit_code == 0
    with served(room) as (url, _):
        r = cli("audit", "verify", url, "--identity", room.key("airline"))
        assert r.exit_code == 1
        assert r.stderr.startswith("error: the server's audit log (1 entries) does not extend "
                                   "the head the operator signed at entry 3")
        r = cli("overlap", url, "--identity", room.key("airline"))  # any answer shows it
        assert r.exit_code == 1 and "does not extend the head" in r.stderr
        # a member who kept nothing yet cannot tell; the brand has no heads kept
        assert cli("audit", "verify", url, "--identity", room.key("brand")).exit_code == 0


def test_unsigned_entries_in_a_served_folder_are_flagged(busy):
    room = busy
    r = cli("overlap", room.collab, "--as", "airline")  # run outside the server
    assert r.exit_code == 0
    r = cli("audit", "verify", room.collab)
    assert r.exit_code == 1 and "line 4: not signed by the operator" in r.stderr
