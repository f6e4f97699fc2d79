"""A signed audit log: every entry carries the operator's signature of the chain head, so a
rewrite by anyone without the key is found, and a kept signed head proves a truncation."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanroom.engine import AuditLog, verify_entries
from cleanroom.server import sign_head, verify_head
from protocols import AuditError

OPERATOR = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()


def check(key=OPERATOR):
    public = key.public_key()
    return lambda head, count, sig: verify_head(public, head, count, sig)


def signed_log(tmp_path, n=4) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl",
                   signer=lambda head, count: sign_head(OPERATOR, head, count))
    for i in range(n):
        log.record(member="airline", request={"analysis": "overlap", "i": i},
                   decision="accepted", rule="output_constraints")
    return log


def lines(log):
    return [json.loads(x) for x in log.path.read_text().splitlines()]


def write(log, entries):
    log.path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_every_entry_is_signed_and_verifies(tmp_path):
    log = signed_log(tmp_path)
    res = log.verify(check=check())
    assert res.entries == 4 and res.head_signature is not None
    assert verify_head(OPERATOR.public_key(), res.head_sha256, 4, res.head_signature)
    assert all("operator_signature" in e for e in lines(log))
    # an unsigned reader still sees a valid plain chain (the signature is outside the hash)
    assert AuditLog(log.path).verify().head_sha256 == res.head_sha256


def test_a_rewrite_with_a_recomputed_chain_is_found(tmp_path):
    log = signed_log(tmp_path)
    entries = lines(log)
    entries[1]["member"] = "brand"
    # the writer recomputes the plain chain as anyone could: the signatures no longer verify
    from cleanroom.engine._audit import _digest

    prev = "0" * 64
    for e in entries:
        e["prev_sha256"] = prev
        e["sha256"] = _digest(e)
        prev = e["sha256"]
    write(log, entries)
    assert AuditLog(log.path).verify().entries == 4  # the plain chain alone says OK
    with pytest.raises(AuditError, match="line 2: the operator's signature does not verify"):
        log.verify(check=check())


def test_removed_signature_and_foreign_key_are_found(tmp_path):
    log = signed_log(tmp_path)
    entries = lines(log)
    del entries[2]["operator_signature"]
    write(log, entries)
    with pytest.raises(AuditError, match="line 3: not signed by the operator"):
        log.verify(check=check())
    log2 = signed_log(tmp_path / "b")
    with pytest.raises(AuditError, match="line 1: the operator's signature does not verify"):
        log2.verify(check=check(OTHER))


def test_a_kept_signed_head_proves_truncation(tmp_path):
    log = signed_log(tmp_path, n=5)
    kept = log.verify(check=check())
    write(log, lines(log)[:3])  # the writer truncates: what is left still verifies
    now = log.verify(check=check())
    assert now.entries == 3
    assert verify_head(OPERATOR.public_key(), kept.head_sha256, kept.entries, kept.head_signature)
    assert now.entries < kept.entries  # the member's signed head shows entries went missing


def test_entries_sent_by_a_server_verify_the_same_way(tmp_path):
    log = signed_log(tmp_path)
    entries = json.loads(json.dumps(log.entries()))
    assert verify_entries(entries, check=check()).head_sha256 == log.verify().head_sha256
    with pytest.raises(AuditError, match="line 2: entry out of sequence"):
        verify_entries([entries[0], entries[2]], check=check())
