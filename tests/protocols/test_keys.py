"""Keys: secret files, X25519 key pairs, agreement, derivation and fingerprints."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

import protocols

CID = "6f1c2a9e-0b7d-4c55-9a1e-3d2f8b7c6a10"


def test_keys_new_writes_0600_secret_and_hides_it(tmp_path, runner):
    out = tmp_path / "collab.secret"
    res = runner("keys", "new", "--collaboration-id", CID, "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    doc = json.loads(out.read_text())
    assert doc["version"] == 1 and doc["collaboration_id"] == CID
    raw = base64.b64decode(doc["secret"])
    assert len(raw) == 32
    assert doc["secret"] not in res.output
    secret = protocols.load_secret(out)
    assert secret.secret == raw
    assert doc["secret"] not in repr(secret) and doc["secret"] not in str(secret)
    assert raw.hex() not in repr(secret)
    assert json.loads(res.output)["key_fingerprint"] == secret.fingerprint


def test_keys_new_generates_id_and_refuses_overwrite(tmp_path, runner):
    out = tmp_path / "s.json"
    assert runner("keys", "new", "--out", str(out)).exit_code == 0
    before = out.read_bytes()
    res = runner("keys", "new", "--out", str(out))
    assert res.exit_code == 1
    assert res.output.strip() == (
        f"error: {out}: already exists; refusing to overwrite (use --force)")
    assert out.read_bytes() == before
    assert runner("keys", "new", "--out", str(out), "--force").exit_code == 0
    assert out.read_bytes() != before


def test_bad_collaboration_id_is_a_usage_error(tmp_path, runner):
    res = runner("keys", "new", "--collaboration-id", "not-a-uuid", "--out", str(tmp_path / "s"))
    assert res.exit_code == 2 and "is not a UUID" in res.output
    assert not (tmp_path / "s").exists()


def _write_secret_doc(path, doc, mode=0o600):
    path.write_text(json.dumps(doc))
    os.chmod(path, mode)


GOOD = {"version": 1, "collaboration_id": CID, "secret": base64.b64encode(b"k" * 32).decode()}


@pytest.mark.parametrize(
    "doc, mode, message",
    [
        (GOOD, 0o644, "secret file is readable by group or others (mode 0644); run: chmod 600"),
        (dict(GOOD, version=2), 0o600, "unsupported secret file version 2 (expected 1)"),
        (dict(GOOD, secret="c2hvcnQ="), 0o600, "field 'secret' is not base64 of 32 bytes"),
        (dict(GOOD, collaboration_id="x"), 0o600, "secret file collaboration_id is not a UUID"),
        ("{not json", 0o600, "secret file is not valid JSON"),
    ],
)
def test_load_secret_refuses_bad_files_without_leaking(tmp_path, doc, mode, message):
    path = tmp_path / "bad.secret"
    if isinstance(doc, str):
        path.write_text(doc)
        os.chmod(path, mode)
    else:
        _write_secret_doc(path, doc, mode)
    with pytest.raises(protocols.KeyMaterialError) as info:
        protocols.load_secret(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert GOOD["secret"] not in str(info.value)


def test_missing_secret_file(tmp_path):
    with pytest.raises(protocols.KeyMaterialError, match="secret file not found"):
        protocols.load_secret(tmp_path / "nope")


def test_keys_pair_files_and_api(tmp_path, runner):
    prefix = tmp_path / "alice"
    res = runner("keys", "pair", "--out", str(prefix))
    assert res.exit_code == 0, res.output
    key_doc = json.loads((tmp_path / "alice.key").read_text())
    pub_doc = json.loads((tmp_path / "alice.pub").read_text())
    assert key_doc["type"] == "x25519-private" and pub_doc["type"] == "x25519-public"
    assert key_doc["version"] == pub_doc["version"] == 1
    assert stat.S_IMODE(os.stat(tmp_path / "alice.key").st_mode) == 0o600
    assert key_doc["key"] not in res.output
    priv = protocols.load_private_key(tmp_path / "alice.key")
    pub = protocols.load_public_key(tmp_path / "alice.pub")
    from cryptography.hazmat.primitives import serialization

    raw = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    assert base64.b64encode(raw).decode() == pub_doc["key"]
    assert pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw
    # a public key file is not a private key file
    with pytest.raises(protocols.KeyMaterialError, match="expected 'x25519-private'"):
        os.chmod(tmp_path / "alice.pub", 0o600)
        protocols.load_private_key(tmp_path / "alice.pub")
    assert runner("keys", "pair", "--out", str(prefix)).exit_code == 1


def test_two_parties_agree_and_a_third_does_not(tmp_path, runner):
    for name in ("alice", "bob", "eve"):
        assert runner("keys", "pair", "--out", str(tmp_path / name)).exit_code == 0

    def agree(me, them, out, cid=CID):
        return runner("keys", "agree", "--private", str(tmp_path / f"{me}.key"),
                      "--public", str(tmp_path / f"{them}.pub"), "--collaboration-id", cid,
                      "--out", str(tmp_path / out), "--json")

    ra, rb = agree("alice", "bob", "a.secret"), agree("bob", "alice", "b.secret")
    assert ra.exit_code == 0 and rb.exit_code == 0, ra.output + rb.output
    assert (tmp_path / "a.secret").read_bytes() == (tmp_path / "b.secret").read_bytes()
    assert json.loads(ra.output)["key_fingerprint"] == json.loads(rb.output)["key_fingerprint"]
    assert stat.S_IMODE(os.stat(tmp_path / "a.secret").st_mode) == 0o600
    # eve, with her own key and alice's public key, gets something else
    assert agree("eve", "alice", "e.secret").exit_code == 0
    a = protocols.load_secret(tmp_path / "a.secret")
    e = protocols.load_secret(tmp_path / "e.secret")
    assert a.secret != e.secret and a.fingerprint != e.fingerprint
    # another collaboration id gives another secret for the same pair
    other = "0d6b2c1e-5a4f-4e3b-8c2d-1f0e9a8b7c6d"
    assert agree("alice", "bob", "o.secret", other).exit_code == 0
    assert protocols.load_secret(tmp_path / "o.secret").secret != a.secret


def test_agree_with_own_public_key_is_refused(tmp_path, runner):
    runner("keys", "pair", "--out", str(tmp_path / "a"))
    res = runner("keys", "agree", "--private", str(tmp_path / "a.key"), "--public",
                 str(tmp_path / "a.pub"), "--collaboration-id", CID, "--out", str(tmp_path / "s"))
    assert res.exit_code == 1 and "your own public key" in res.output
    assert not (tmp_path / "s").exists()


def test_derived_keys_are_distinct_per_kind_collaboration_and_purpose():
    s1 = protocols.new_secret(CID, secret=b"\x01" * 32)
    s2 = protocols.new_secret("0d6b2c1e-5a4f-4e3b-8c2d-1f0e9a8b7c6d", secret=b"\x01" * 32)
    keys = {
        protocols.derive_token_key(s1, "email"),
        protocols.derive_token_key(s1, "phone"),
        protocols.derive_token_key(s2, "email"),
        protocols.derive_match_key(s1, "name_dob", ("first_name", "last_name", "dob")),
        protocols.derive_match_key(s1, "name_dob", ("last_name", "first_name", "dob")),
        protocols.derive_match_key(s1, "other", ("first_name", "last_name", "dob")),
    }
    assert len(keys) == 6
    assert protocols.derive_token_key(s1, "email") == protocols.derive_token_key(
        protocols.new_secret(CID, secret=b"\x01" * 32), "email")
    fp = protocols.key_fingerprint(s1)
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fp != protocols.key_fingerprint(s2)
    assert all(fp not in k.hex() for k in keys)
