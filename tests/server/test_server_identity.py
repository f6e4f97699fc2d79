"""Identity key files: modes, refusal to overwrite, the public line, a stable fingerprint."""

from __future__ import annotations

import base64
import os
import stat
import tomllib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocols import (
    IDENTITY_PUBLIC_PREFIX,
    KeyMaterialError,
    format_identity_public,
    identity_fingerprint,
    load_identity_private,
    load_identity_public,
    write_identity,
)

PINNED = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
# RFC 8032 derives the public key from the seed deterministically; this pins our formats.
PINNED_PUB_LINE = "cleanroom-identity-v1 A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
PINNED_FINGERPRINT = "aeb1c5015f7fdd43d6cabc66b2e43940"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_identity_modes_and_round_trip(tmp_path):
    key_path, pub_path = write_identity(tmp_path / "alice")
    assert (key_path.name, pub_path.name) == ("alice.key", "alice.pub")
    assert _mode(key_path) == 0o600
    assert _mode(pub_path) == 0o644
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    text = pub_path.read_text()
    assert text.endswith("\n") and text.count("\n") == 1
    assert text.startswith(IDENTITY_PUBLIC_PREFIX + " ")
    private = load_identity_private(key_path)
    public = load_identity_public(pub_path)
    assert identity_fingerprint(public) == identity_fingerprint(private.public_key())
    assert format_identity_public(public) == text.strip()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left over


def test_write_identity_refuses_to_overwrite(tmp_path):
    key_path, pub_path = write_identity(tmp_path / "op")
    before = key_path.read_bytes(), pub_path.read_bytes()
    with pytest.raises(KeyMaterialError, match="already exists; refusing to overwrite"):
        write_identity(tmp_path / "op")
    assert (key_path.read_bytes(), pub_path.read_bytes()) == before
    pub_path.unlink()  # one half present is refused too
    with pytest.raises(KeyMaterialError, match="already exists"):
        write_identity(tmp_path / "op")
    write_identity(tmp_path / "op", force=True)
    assert key_path.read_bytes() != before[0]
    assert _mode(key_path) == 0o600


def test_fingerprint_and_public_line_are_stable(tmp_path):
    assert format_identity_public(PINNED.public_key()) == PINNED_PUB_LINE
    assert identity_fingerprint(PINNED.public_key()) == PINNED_FINGERPRINT
    write_identity(tmp_path / "p", private_key=PINNED)
    assert identity_fingerprint(load_identity_public(tmp_path / "p.pub")) == PINNED_FINGERPRINT
    assert identity_fingerprint(load_identity_private(tmp_path / "p.key").public_key()) \
        == PINNED_FINGERPRINT
    other = Ed25519PrivateKey.generate().public_key()
    assert identity_fingerprint(other) != PINNED_FINGERPRINT


def test_public_line_pastes_inline_into_toml(tmp_path):
    doc = tomllib.loads(f'[members.brand]\nidentity = "{PINNED_PUB_LINE}"\n')
    key = load_identity_public(doc["members"]["brand"]["identity"])
    assert identity_fingerprint(key) == PINNED_FINGERPRINT
    (tmp_path / "brand.pub").write_text(PINNED_PUB_LINE + "\n")
    assert identity_fingerprint(load_identity_public(str(tmp_path / "brand.pub"))) \
        == PINNED_FINGERPRINT


def test_private_key_readable_by_others_is_refused(tmp_path):
    key_path, _ = write_identity(tmp_path / "m")
    os.chmod(key_path, 0o644)
    with pytest.raises(KeyMaterialError, match="readable by group or others.*chmod 600"):
        load_identity_private(key_path)


@pytest.mark.parametrize("content", [
    b"not a key at all SECRETSECRET",
    b"-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n",
])
def test_bad_private_key_file_says_nothing_of_its_bytes(tmp_path, content):
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyMaterialError) as info:
        load_identity_private(path)
    assert "SECRET" not in str(info.value) and "U0VD" not in str(info.value)


def test_foreign_private_key_is_refused(tmp_path):
    path = tmp_path / "x.key"
    path.write_bytes(X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    os.chmod(path, 0o600)
    with pytest.raises(KeyMaterialError, match="not an Ed25519 key"):
        load_identity_private(path)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(KeyMaterialError, match="identity key not found"):
        load_identity_private(tmp_path / "nope.key")
    with pytest.raises(KeyMaterialError, match="public identity not found"):
        load_identity_public(tmp_path / "nope.pub")


@pytest.mark.parametrize("line", [
    "cleanroom-identity-v1",
    "cleanroom-identity-v1 !!!notbase64!!!",
    "cleanroom-identity-v1 " + base64.b64encode(b"\x01" * 31).decode(),
    "cleanroom-identity-v1 " + base64.b64encode(b"\x01" * 32).decode() + " extra",
    "cleanroom-identity-v2 " + base64.b64encode(b"\x01" * 32).decode(),
])
def test_bad_public_lines_are_refused_without_echo(tmp_path, line):
    path = tmp_path / "bad.pub"
    path.write_text(line + "\n")
    with pytest.raises(KeyMaterialError) as info:
        load_identity_public(path)
    payload = line.split(" ", 1)[1] if " " in line else "\x00"
    assert payload not in str(info.value)
