"""`cleanroom demo --server`: three folders, a server on loopback, no file across a wall."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cleanroom.cli import main


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_demo_through_a_server_keeps_every_file_in_its_folder(tmp_path):
    out = tmp_path / "demo"
    r = cli("demo", "--server", "--rows", 600, "--seed", 3, "--out", out, "--json")
    assert r.exit_code == 0, r.output[-2000:]
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["stopped_at"] is None and doc["score"] is None
    assert doc["summary"]["overlap"]["entities"] > 0
    assert doc["report"] == str(out.resolve() / "airline" / "report.html")
    assert "measured through the server" in r.stdout
    held = {f: {p.name for p in (out / f).iterdir()} for f in ("airline", "brand", "operator")}
    assert {p.name for p in out.iterdir()} == {"airline", "brand", "operator",
                                               ".cleanroom-demo-server"}
    assert not {n for n in held["airline"] if n.startswith("brand")} - {"brand.x25519.pub"}
    assert not {n for n in held["brand"] if n.startswith("airline")} - {"airline.x25519.pub"}
    assert not {n for n in held["operator"] if n.endswith((".csv", ".json"))
                or n in ("x25519.key", "airline.key", "brand.key")}
    assert {"airline.tokens.parquet", "brand.tokens.parquet", "audit.jsonl"} <= held["operator"]
    # the operator's log is signed throughout: a local check with the operator's key agrees
    v = cli("audit", "verify", out / "operator" / "collaboration.toml", "--json")
    assert v.exit_code == 0 and json.loads(v.stdout)["signed_by"]
    again = cli("demo", "--server", "--rows", 600, "--seed", 3, "--out", out)
    assert again.exit_code == 0, again.output[-2000:]


def test_demo_server_refuses_psi_and_foreign_folders(tmp_path):
    assert cli("demo", "--server", "--psi", "--out", tmp_path / "x").exit_code == 2
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    r = cli("demo", "--server", "--rows", 200, "--out", tmp_path / "busy")
    assert r.exit_code == 1 and "not empty" in r.stderr
