"""Identities in collaboration.toml: members, auditors and the operator, by file or inline."""

from __future__ import annotations

import pytest
from conftest import collaboration_doc, write_collaboration

from cleanroom.config import Roster
from protocols import ConfigError, format_identity_public, identity_fingerprint, write_identity

CID = "6f1c2a9e-0d5b-4f7e-9a51-2c4d8e7b1f03"


def _doc(**extra):
    doc = collaboration_doc(CID, members={"airline": (True, True), "brand": (False, True)},
                            tables={"airline": "airline", "brand": "brand"}, rules=["email"])
    doc.update(extra)
    return doc


def test_identities_by_file_and_inline(tmp_path):
    _, airline_pub = write_identity(tmp_path / "airline")
    brand_key, _ = write_identity(tmp_path / "brand")
    write_identity(tmp_path / "operator")
    write_identity(tmp_path / "compliance")
    from protocols import load_identity_private

    brand_line = format_identity_public(load_identity_private(brand_key).public_key())
    doc = _doc(auditors={"compliance": {"identity": "compliance.pub"}},
               operator={"identity": "operator.pub"})
    doc["members"]["airline"]["identity"] = "airline.pub"
    doc["members"]["brand"]["identity"] = brand_line
    path = write_collaboration(tmp_path, doc, {})
    roster = Roster.from_path(path)  # no token file, no policy needed
    assert identity_fingerprint(roster.members["brand"].identity) == identity_fingerprint(
        load_identity_private(brand_key).public_key())
    assert roster.members["airline"].identity is not None
    assert set(roster.auditors) == {"compliance"} and roster.operator is not None
    assert roster.tables["brand"].owner == "brand"
    assert roster.tables["brand"].tokens == tmp_path / "brand.tokens.parquet"
    assert "identity" not in repr(roster.members["airline"])
    assert airline_pub.exists()


def test_a_file_without_identities_is_read_as_before(tmp_path):
    roster = Roster.from_path(write_collaboration(tmp_path, _doc(), {}))
    assert roster.operator is None and not roster.auditors
    assert all(m.identity is None for m in roster.members.values())


@pytest.mark.parametrize("value, reason", [
    ("../outside.pub", "inside the collaboration's folder"),
    ("/etc/hostname", "inside the collaboration's folder"),
    ("missing.pub", "not a usable public identity (public identity not found)"),
    ("cleanroom-identity-v1 SECRETSECRET", "not a usable public identity"),
    ("", "must be a .pub file name"),
])
def test_bad_identities_are_refused_without_echo(tmp_path, value, reason):
    doc = _doc()
    doc["members"]["airline"]["identity"] = value
    with pytest.raises(ConfigError) as info:
        Roster.from_path(write_collaboration(tmp_path, doc, {}))
    assert reason in str(info.value) and "members.airline.identity" in str(info.value)
    assert "SECRET" not in str(info.value)


def test_one_key_one_role(tmp_path):
    write_identity(tmp_path / "shared")
    doc = _doc(operator={"identity": "shared.pub"})
    doc["members"]["airline"]["identity"] = "shared.pub"
    with pytest.raises(ConfigError, match="operator.identity: the same identity as "
                                          "members.airline"):
        Roster.from_path(write_collaboration(tmp_path, doc, {}))


def test_auditors_need_an_identity_and_their_own_name(tmp_path):
    write_identity(tmp_path / "c")
    with pytest.raises(ConfigError, match="auditors.compliance.identity: an auditor needs"):
        Roster.from_path(write_collaboration(tmp_path, _doc(auditors={"compliance": {}}), {}))
    with pytest.raises(ConfigError, match="auditors.brand: is also a member"):
        Roster.from_path(write_collaboration(
            tmp_path, _doc(auditors={"brand": {"identity": "c.pub"}}), {}))
    with pytest.raises(ConfigError, match="unknown key"):
        Roster.from_path(write_collaboration(
            tmp_path, _doc(operator={"identity": "c.pub", "url": "x"}), {}))
