"""The command line against a server URL: the same output and exit statuses as locally, the
owner's commands (upload, policy put), console-link and keys identity."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import httpx
import pytest
from _engine_fixtures import BRAND_ATTRS, brand_policy, write_party
from _room_fixture import local_copy, make_room, records, served
from click.testing import CliRunner

from cleanroom.cli import main
from cleanroom.config import write_toml
from cleanroom.server import SignatureAuth
from protocols import identity_fingerprint, load_identity_private

SQL = ("SELECT a.tier, COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend) AS spend "
       "FROM airline a JOIN brand b ON a.entity_id = b.entity_id GROUP BY a.tier "
       "ORDER BY a.tier")


def cli(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    return make_room(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def url(room):
    with served(room) as (url, _):
        yield url


def test_engine_commands_print_the_same_as_locally(room, url, tmp_path):
    as_airline = ["--identity", room.key("airline")]
    collab = local_copy(room, tmp_path / "local")
    for args in (["overlap", "--json"], ["overlap"],
                 ["overlap", "--by", "airline.tier", "--metric", "SUM(brand.spend)", "--json"],
                 ["query", "--sql", SQL, "--json"], ["query", "--sql", SQL],
                 ["query", "--sql", SQL, "--csv"]):
        local = cli(args[0], collab, "--as", "airline", *args[1:])
        remote = cli(args[0], url, *as_airline, *args[1:])
        assert local.exit_code == 0, local.output
        assert remote.exit_code == 0, remote.output
        assert remote.stdout == local.stdout, args
    local = cli("policy", "check", collab, "--json")
    remote = cli("policy", "check", url, "--identity", room.key("compliance"), "--json")
    assert remote.exit_code == 0 and json.loads(remote.stdout) == json.loads(local.stdout)
    remote = cli("policy", "check", url, "--identity", room.key("brand"))
    assert remote.stdout == cli("policy", "check", collab).stdout


def test_refusals_keep_their_exit_status_and_line(room, url, tmp_path):
    bad = "SELECT a.tier, b.spend FROM airline a JOIN brand b ON a.entity_id = b.entity_id"
    local = cli("query", local_copy(room, tmp_path / "local"), "--as", "airline", "--sql", bad)
    remote = cli("query", url, "--identity", room.key("airline"), "--sql", bad)
    assert local.exit_code == remote.exit_code == 3
    assert remote.stderr == local.stderr and remote.stderr.startswith("error: refused by rule")
    r = cli("overlap", url, "--identity", room.key("agency"))
    assert r.exit_code == 3 and "can_receive_results" in r.stderr
    r = cli("overlap", url, "--identity", room.key("airline"), "--as", "brand")
    assert r.exit_code == 4 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: not allowed (identity): --as names another member")
    r = cli("overlap", url, "--identity", room.key("compliance"))
    assert r.exit_code == 4 and r.stderr.startswith("error: not allowed (auditor)")


def test_a_url_needs_an_identity_and_takes_it_from_the_environment(room, url):
    r = cli("overlap", url)
    assert r.exit_code == 2 and "needs --identity KEYFILE" in r.stderr
    r = cli("overlap", url, "--json", env={"CLEANROOM_IDENTITY": str(room.key("airline"))})
    assert r.exit_code == 0 and json.loads(r.stdout)["overlap"] == {"entities": 40}
    r = cli("overlap", room.collab)
    assert r.exit_code == 2 and "Missing option '--as'" in r.stderr
    r = cli("overlap", url, "--identity", room.key("operator"))  # the operator is no member
    assert r.exit_code == 4 and r.stderr == "error: not authenticated: unknown_key\n"


def test_report_from_a_server_is_written_here(room, url, tmp_path):
    out = tmp_path / "r.html"
    r = cli("report", url, "--identity", room.key("airline"), "--out", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"wrote {out} for airline")
    page = out.read_text("utf-8")
    assert "40" in page and "Audit trail" in page and "airline" in page


def test_audit_show_and_verify_against_the_server(room, url):
    cli("overlap", url, "--identity", room.key("airline"))
    r = cli("audit", "verify", url, "--identity", room.key("airline"), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["entries"] >= 1 and doc["kept_head"] >= 1
    local = cli("audit", "verify", room.collab, "--json")
    assert local.exit_code == 0 and json.loads(local.stdout)["signed_by"] == doc["signed_by"]
    r = cli("audit", "show", url, "--identity", room.key("compliance"), "--json")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) >= doc["entries"]
    assert (room.root / "airline" / "airline.heads.json").exists()
    assert stat.S_IMODE(os.stat(room.root / "airline" / "airline.heads.json").st_mode) == 0o600


def test_keys_identity(tmp_path):
    r = cli("keys", "identity", "--out", tmp_path / "me", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert len(doc["fingerprint"]) == 32
    assert stat.S_IMODE(os.stat(tmp_path / "me.key").st_mode) == 0o600
    assert (tmp_path / "me.pub").read_text().startswith("cleanroom-identity-v1 ")
    again = cli("keys", "identity", "--out", tmp_path / "me")
    assert again.exit_code == 1 and "refusing to overwrite" in again.stderr
    assert "PRIVATE" not in r.output


# -- the owners' commands: upload and policy put -------------------------------------------
@pytest.fixture
def fresh(tmp_path):
    room = make_room(tmp_path, uploaded=False)
    with served(room) as (url, state):
        yield room, url, state


def test_upload_then_query_then_replace(fresh):
    room, url, state = fresh
    r = cli("overlap", url, "--identity", room.key("airline"))
    assert r.exit_code == 1 and "not ready" in r.stderr and "upload" in r.stderr
    for party in ("airline", "brand"):
        r = cli("upload", url, party, room.tokens(party), "--identity", room.key(party),
                "--json")
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert doc["sha256"] == hashlib.sha256(room.tokens(party).read_bytes()).hexdigest()
    r = cli("overlap", url, "--identity", room.key("airline"), "--json")
    assert json.loads(r.stdout)["overlap"] == {"entities": 40}
    # the brand replaces its table: 5 more people in both
    airline, brand = records()
    brand += [{"email": f"person{i}@example.com", "segment": "travel", "spend": 3.0}
              for i in range(100, 105)]
    write_party(room.tokens("brand", 2), "brand", brand, attributes=BRAND_ATTRS, seed=3)
    r = cli("upload", url, "brand", room.tokens("brand", 2), "--identity", room.key("brand"))
    assert r.exit_code == 0 and r.stdout.startswith("uploaded ")
    r = cli("overlap", url, "--identity", room.key("airline"), "--json")
    assert json.loads(r.stdout)["overlap"] == {"entities": 45}
    uploads = [e for e in state.audit.entries() if e["request"].get("analysis") == "upload"]
    assert [(e["member"], e["request"]["table"], e["decision"]) for e in uploads] == \
        [("airline", "airline", "accepted"), ("brand", "brand", "accepted"),
         ("brand", "brand", "accepted")]
    assert uploads[-1]["request"]["sha256"] == hashlib.sha256(
        room.tokens("brand", 2).read_bytes()).hexdigest()
    assert not list(room.operator.glob(".cleanroom-upload-*"))


def test_only_the_owner_uploads_and_the_manifest_must_fit(fresh, tmp_path):
    room, url, state = fresh
    r = cli("upload", url, "brand", room.tokens("brand"), "--identity", room.key("airline"))
    assert r.exit_code == 4 and r.stderr.startswith("error: not allowed (owner): only brand")
    # a file the airline made, sent by the brand for its own table
    r = cli("upload", url, "brand", room.tokens("airline"), "--identity", room.key("brand"))
    assert r.exit_code == 1
    assert "made by party 'airline', not by the table's owner 'brand'" in r.stderr
    other = write_party(tmp_path / "other.parquet", "brand", records()[1],
                        attributes=BRAND_ATTRS, collaboration_id="0" * 8 + "-0000-4000-8000-"
                        + "0" * 12)
    r = cli("upload", url, "brand", other, "--identity", room.key("brand"))
    assert r.exit_code == 1 and "another collaboration" in r.stderr
    assert cli("upload", url, "airline", room.tokens("airline"), "--identity",
               room.key("airline")).exit_code == 0
    salted = write_party(tmp_path / "salted.parquet", "brand", records()[1],
                         attributes=BRAND_ATTRS, secret=b"t" * 32)
    r = cli("upload", url, "brand", salted, "--identity", room.key("brand"))
    assert r.exit_code == 1 and "different secret than table 'airline'" in r.stderr
    assert not (room.operator / "brand.tokens.parquet").exists()
    refused = [e for e in state.audit.entries() if e["decision"] == "refused"]
    assert [e["rule"] for e in refused] == ["manifest", "manifest", "manifest"]


def test_upload_over_the_size_cap_is_refused(tmp_path):
    room = make_room(tmp_path, uploaded=False)
    with served(room, max_upload=1000) as (url, _):
        r = cli("upload", url, "airline", room.tokens("airline"), "--identity",
                room.key("airline"))
    assert r.exit_code == 1 and "too large" in r.stderr
    assert not (room.operator / "airline.tokens.parquet").exists()
    assert not list(room.operator.glob(".cleanroom-upload-*"))


def test_policy_put_is_validated_versioned_audited_and_in_force(room, tmp_path):
    with served(room) as (url, state):
        stricter = tmp_path / "brand.toml"
        write_toml(stricter, brand_policy(30))
        r = cli("policy", "put", url, "brand", stricter, "--identity", room.key("airline"))
        assert r.exit_code == 4 and "only brand" in r.stderr  # said before anything is sent
        key = load_identity_private(room.key("airline"))  # the server refuses it too
        with httpx.Client(base_url=url, timeout=30, auth=SignatureAuth(
                key, identity_fingerprint(key.public_key()))) as h:
            r2 = h.put("/v1/tables/brand/policy", content=stricter.read_bytes())
        assert r2.status_code == 403 and r2.json()["rule"] == "owner"
        bad = tmp_path / "bad.toml"
        bad.write_text('analysis_rule = "aggregation"\njoin_columns = ["email"]\n'
                       'dimension_columns = ["nope"]\n')
        r = cli("policy", "put", url, "brand", bad, "--identity", room.key("brand"))
        assert r.exit_code == 1 and r.stderr.startswith("error: brand.policy.toml")
        r = cli("policy", "put", url, "brand", stricter, "--identity", room.key("brand"),
                "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["version"] == 2  # version 1: the policy it started with
        r = cli("overlap", url, "--identity", room.key("airline"), "--json")
        assert json.loads(r.stdout)["threshold"] == 30
        puts = [e for e in state.audit.entries() if e["request"].get("analysis") == "policy_put"]
        assert [(e["member"], e["decision"], e["request"].get("version")) for e in puts] == \
            [("airline", "refused", None), ("brand", "refused", None), ("brand", "accepted", 2)]
    versions = sorted((room.operator / ".cleanroom-server/policies/brand").glob("v*.toml"))
    assert [v.name for v in versions] == ["v0001.toml", "v0002.toml"]
    assert versions[1].read_bytes() == stricter.read_bytes()
    write_toml(room.operator / "brand.policy.toml", brand_policy(5))  # back, for the others


def test_console_link_prints_one_line(room, url):
    r = cli("console-link", url, "--identity", room.key("compliance"))
    assert r.exit_code == 0
    assert r.stdout.count("\n") == 1 and r.stdout.startswith(f"{url}/console/login?t=")
