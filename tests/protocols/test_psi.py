"""ECDH PSI end to end through the CLI: blind, reblind, finish on realistic synthetic parties."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import collaboration_doc, policy_doc, write_collaboration

import normalize
import protocols
from cleanroom.cli import main
from examples.generate import generate
from protocols import hazmat
from protocols.hazmat import _blinding, _h2c

COLLAB = "6f1c2b1e-8f7d-4c56-9a3e-2b1d0c9e7a54"
KINDS = ("email", "phone")


def _run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _blind(d: Path, party: str, csv: Path, key: Path, id_cols: dict, attr: str,
           collab: str = COLLAB, tag: str = "") -> tuple[Path, Path]:
    r1, attrs = d / f"{party}{tag}.r1.parquet", d / f"{party}{tag}.attrs.parquet"
    ids = [a for k, c in id_cols.items() for a in ("--id", f"{k}={c}")]
    _run("psi", "blind", csv, "--party", party, "--key", key, "--collaboration-id", collab,
         *ids, "--attr", attr, "--out-round1", r1, "--out-attrs", attrs)
    return r1, attrs


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    d = tmp_path_factory.mktemp("psi")
    parties = generate(300, seed=11)
    a_csv, b_csv = d / "airline.csv", d / "brand.csv"
    parties.write(a_csv, b_csv, d / "truth.csv")
    for who in ("a", "b", "b2"):
        _run("keys", "pair", "--out", d / who)
    ids = {"email": "email", "phone": "phone"}
    a_r1, a_attrs = _blind(d, "airline", a_csv, d / "a.key", ids, "member_id")
    b_r1, b_attrs = _blind(d, "brand", b_csv, d / "b.key", ids, "customer_id")
    a_r2, b_r2 = d / "airline.r2.parquet", d / "brand.r2.parquet"
    _run("psi", "reblind", a_r1, "--key", d / "b.key", "--out", a_r2)
    _run("psi", "reblind", b_r1, "--key", d / "a.key", "--out", b_r2)
    a_tok, b_tok = d / "airline.tokens.parquet", d / "brand.tokens.parquet"
    _run("psi", "finish", "--round2", a_r2, "--attrs", a_attrs, "--party", "airline",
         "--peer-round2", b_r2, "--out", a_tok)
    res = _run("psi", "finish", "--round2", b_r2, "--attrs", b_attrs, "--party", "brand",
               "--peer-round2", a_r2, "--out", b_tok, "--json")
    return {"dir": d, "parties": parties, "a_csv": a_csv, "b_csv": b_csv,
            "a_r1": a_r1, "b_r1": b_r1, "a_attrs": a_attrs, "b_attrs": b_attrs,
            "a_r2": a_r2, "b_r2": b_r2, "a_tok": a_tok, "b_tok": b_tok,
            "finish_json": json.loads(res.output)}


def _plain_pairs(a_csv: Path, b_csv: Path, kind: str) -> set[tuple[str, str]]:
    """(airline member, brand customer) pairs whose normalized identifiers are equal."""
    a = pacsv.read_csv(a_csv, convert_options=pacsv.ConvertOptions(
        column_types={kind: pa.string()}))
    b = pacsv.read_csv(b_csv, convert_options=pacsv.ConvertOptions(
        column_types={kind: pa.string()}))
    na = normalize.normalize_column(kind, a.column(kind)).values.to_pylist()
    nb = normalize.normalize_column(kind, b.column(kind)).values.to_pylist()
    by_value: dict[str, list[str]] = {}
    for cid, v in zip(b.column("customer_id").to_pylist(), nb, strict=True):
        if v is not None:
            by_value.setdefault(v, []).append(cid)
    return {(mid, cid) for mid, v in zip(a.column("member_id").to_pylist(), na, strict=True)
            if v is not None for cid in by_value.get(v, [])}


def _token_pairs(a_tok: Path, b_tok: Path, kind: str, a_attr="member_id",
                 b_attr="customer_id") -> set[tuple[str, str]]:
    a, b = pq.read_table(a_tok), pq.read_table(b_tok)
    by_token: dict[bytes, list[str]] = {}
    for cid, t in zip(b.column(b_attr).to_pylist(), b.column(kind).to_pylist(), strict=True):
        if t is not None:
            by_token.setdefault(t, []).append(cid)
    return {(mid, cid) for mid, t in zip(a.column(a_attr).to_pylist(),
                                          a.column(kind).to_pylist(), strict=True)
            if t is not None for cid in by_token.get(t, [])}


@pytest.mark.parametrize("kind", KINDS)
def test_intersection_equals_plain_set_intersection(flow, kind):
    expected = _plain_pairs(flow["a_csv"], flow["b_csv"], kind)
    assert len(expected) > 20  # the synthetic parties do overlap
    assert _token_pairs(flow["a_tok"], flow["b_tok"], kind) == expected


def test_intersection_equals_the_hmac_path(flow):
    d = flow["dir"]
    secret = protocols.new_secret(COLLAB)
    ids = [("email", "email"), ("phone", "phone")]
    protocols.tokenize_file(flow["a_csv"], d / "a.hmac.parquet", party="airline",
                            secret=secret, identifiers=ids, attributes=["member_id"])
    protocols.tokenize_file(flow["b_csv"], d / "b.hmac.parquet", party="brand",
                            secret=secret, identifiers=ids, attributes=["customer_id"])
    for kind in KINDS:
        assert _token_pairs(d / "a.hmac.parquet", d / "b.hmac.parquet", kind) == \
            _token_pairs(flow["a_tok"], flow["b_tok"], kind)


def test_finished_files_are_token_files_with_one_fingerprint(flow):
    ma, mb = protocols.read_manifest(flow["a_tok"]), protocols.read_manifest(flow["b_tok"])
    assert ma.protocol == mb.protocol == protocols.PROTOCOL_PSI
    assert ma.key_fingerprint == mb.key_fingerprint and len(ma.key_fingerprint) == 16
    assert ma.canary == mb.canary and ma.collaboration_id == COLLAB
    assert flow["finish_json"]["key_fingerprint"] == mb.key_fingerprint
    a = pq.read_table(flow["a_tok"])
    assert a.num_rows == ma.row_count == len(flow["parties"].airline)
    assert set(a.column_names) == {"row_id", "email", "phone", "member_id"}
    for kind in KINDS:
        q = ma.quality[kind]
        assert a.column(kind).null_count == ma.row_count - q["valid"]
        assert q["missing"] > 0  # the generator leaves some emails and phones blank
    assert a.column("row_id").type == pa.int64()
    assert len(set(a.column("row_id").to_pylist())) == a.num_rows


def test_every_blinded_value_is_on_the_curve(flow):
    for name in ("a_r1", "b_r1", "a_r2", "b_r2"):
        table = pq.read_table(flow[name])
        for kind in KINDS:
            values = table.column(kind).to_pylist()
            assert None not in values  # missing ids are padded with random points
            assert all(_h2c.u_on_curve(values)), (name, kind)


def test_round1_hides_which_rows_lack_an_identifier(flow):
    r1 = pq.read_table(flow["a_r1"])
    attrs = pq.read_table(flow["a_attrs"])
    assert r1.column_names == ["row_id", "email", "phone"]  # no attributes
    assert r1.column("row_id").equals(attrs.column("row_id"))
    assert pc.sum(pc.invert(attrs.column("_psi_present:email"))).as_py() > 0


def test_round1_files_contain_no_raw_identifier(flow):
    parties = flow["parties"]
    for frame, name, csv in ((parties.airline, "a_r1", flow["a_csv"]),
                             (parties.brand, "b_r1", flow["b_csv"])):
        raw = [str(v) for k in ("email", "phone", "first_name", "last_name")
               for v in frame[k].dropna()]
        table = pacsv.read_csv(csv, convert_options=pacsv.ConvertOptions(
            column_types={k: pa.string() for k in KINDS}))
        norm = [v for k in KINDS
                for v in normalize.normalize_column(k, table.column(k)).values.to_pylist() if v]
        needles = {s for s in raw + norm if len(s) >= 6}
        blob = flow[name].read_bytes()
        r1 = pq.read_table(flow[name])
        text = json.dumps(r1.schema.metadata[b"cleanroom-psi"].decode())
        cells = b"\n".join(v for k in KINDS for v in r1.column(k).to_pylist())
        for needle in needles:
            enc = needle.encode()
            assert enc not in blob and enc not in cells and needle not in text


def test_same_identifier_in_two_collaborations_is_unrelated(tmp_path):
    a = protocols.load_private_key(_keypair(tmp_path, "a"))
    b = protocols.load_private_key(_keypair(tmp_path, "b"))
    values = ["jane.doe@example.com", "john@example.org", "16505551212"]
    other = str(uuid.uuid4())
    one = protocols.psi_blind_values(a, COLLAB, "email", values)
    two = protocols.psi_blind_values(a, other, "email", values)
    assert not set(one) & set(two)
    assert not set(protocols.psi_reblind_values(b, one)) & set(protocols.psi_reblind_values(b, two))
    # and the same value as a different kind is unrelated too
    assert not set(one) & set(protocols.psi_blind_values(a, COLLAB, "phone", values))
    # commutativity: a then b equals b then a, value by value
    ab = protocols.psi_reblind_values(b, one)
    ba = protocols.psi_reblind_values(a, protocols.psi_blind_values(b, COLLAB, "email", values))
    assert ab == ba


def _keypair(d: Path, name: str) -> Path:
    _run("keys", "pair", "--out", d / name)
    return d / f"{name}.key"


def test_a_changed_key_breaks_matching_and_is_refused(flow):
    d = flow["dir"]
    # the brand re-blinds the airline's round 1 with another key than its own round 1's
    bad_r2 = d / "airline.bad.r2.parquet"
    _run("psi", "reblind", flow["a_r1"], "--key", d / "b2.key", "--out", bad_r2)
    out = d / "airline.bad.tokens.parquet"
    res = _run("psi", "finish", "--round2", bad_r2, "--attrs", flow["a_attrs"], "--party",
               "airline", "--peer-round2", flow["b_r2"], "--out", out, ok=False)
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == (
        "error: canary check failed: the two parties' doubly blinded canaries differ "
        "(different keys or collaboration)")
    assert not out.exists()
    # without the peer check the file is written, but its fingerprint differs, so the engine
    # refuses to match it; and indeed nothing would match
    _run("psi", "finish", "--round2", bad_r2, "--attrs", flow["a_attrs"], "--party",
         "airline", "--out", out)
    assert protocols.read_manifest(out).key_fingerprint != \
        protocols.read_manifest(flow["b_tok"]).key_fingerprint
    for kind in KINDS:
        assert _token_pairs(out, flow["b_tok"], kind) == set()


def test_a_changed_collaboration_is_refused(flow):
    d = flow["dir"]
    other = str(uuid.uuid4())
    r1, attrs = _blind(d, "brand", flow["b_csv"], d / "b.key", {"email": "email"},
                       "customer_id", collab=other, tag="-other")
    r2 = d / "brand-other.r2.parquet"
    _run("psi", "reblind", r1, "--key", d / "a.key", "--out", r2)
    res = _run("psi", "finish", "--round2", r2, "--attrs", attrs, "--party", "brand",
               "--peer-round2", flow["a_r2"], "--out", d / "x.parquet", ok=False)
    assert res.exit_code == 1
    assert "collaboration id differs" in res.output
    # its canary differs too, so its fingerprint cannot equal the airline's: the engine refuses
    _run("psi", "finish", "--round2", r2, "--attrs", attrs, "--party", "brand",
         "--out", d / "brand-other.tokens.parquet")
    other_m = protocols.read_manifest(d / "brand-other.tokens.parquet")
    assert other_m.key_fingerprint != protocols.read_manifest(flow["a_tok"]).key_fingerprint
    assert _token_pairs(flow["a_tok"], d / "brand-other.tokens.parquet", "email") == set()
    # a round-2 file joined with another party's attribute file is refused too
    res = _run("psi", "finish", "--round2", flow["a_r2"], "--attrs", flow["b_attrs"],
               "--party", "airline", "--out", d / "x.parquet", ok=False)
    assert res.exit_code == 1 and "party differs" in res.output
    assert not (d / "x.parquet").exists()


def test_cardinality_only(flow):
    d = flow["dir"]
    ids = {"email": "email"}
    a_r1, a_attrs = _blind(d, "airline", flow["a_csv"], d / "a.key", ids, "member_id",
                           tag="-card")
    b_r1, b_attrs = _blind(d, "brand", flow["b_csv"], d / "b.key", ids, "customer_id",
                           tag="-card")
    _run("psi", "reblind", a_r1, "--key", d / "b.key", "--out", d / "ac.r2", "--cardinality-only")
    _run("psi", "reblind", b_r1, "--key", d / "a.key", "--out", d / "bc.r2", "--cardinality-only")
    assert pq.read_table(d / "ac.r2").column_names == ["email"]
    _run("psi", "finish", "--round2", d / "ac.r2", "--attrs", a_attrs, "--party", "airline",
         "--out", d / "ac.tokens", "--peer-round2", d / "bc.r2")
    _run("psi", "finish", "--round2", d / "bc.r2", "--attrs", b_attrs, "--party", "brand",
         "--out", d / "bc.tokens")
    a, b = pq.read_table(d / "ac.tokens"), pq.read_table(d / "bc.tokens")
    assert a.column_names == ["row_id", "email"]
    assert protocols.read_manifest(d / "ac.tokens").extra["cardinality_only"] is True
    common = set(a.column("email").to_pylist()) & set(b.column("email").to_pylist())
    expected = {v for v, _ in _plain_values(flow)}
    assert len(common) == len(expected)
    res = _run("psi", "reblind", flow["a_r1"], "--key", d / "b.key", "--out", d / "no.r2",
               "--cardinality-only", ok=False)
    assert res.exit_code == 1 and "one identifier column" in res.output


def _plain_values(flow):
    def values(csv):
        t = pacsv.read_csv(csv, convert_options=pacsv.ConvertOptions(
            column_types={"email": pa.string()}))
        return {v for v in normalize.normalize_column("email", t.column("email")).values
                .to_pylist() if v}
    return {(v, v) for v in values(flow["a_csv"]) & values(flow["b_csv"])}


def test_missing_column_is_one_line_error_and_no_output(tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text("email,segment\njane@example.com,a\n")
    key = _keypair(tmp_path, "k")
    res = _run("psi", "blind", csv, "--party", "p", "--key", key, "--collaboration-id",
               COLLAB, "--id", "phone=phone", "--out-round1", tmp_path / "r1",
               "--out-attrs", tmp_path / "at", ok=False)
    assert res.exit_code == 1
    assert res.output.startswith(f"error: {csv}, column 'phone': no such column")
    assert "Traceback" not in res.output
    assert not (tmp_path / "r1").exists() and not (tmp_path / "at").exists()
    res = _run("psi", "blind", csv, "--party", "p", "--key", key, "--collaboration-id",
               COLLAB, "--id", "emale=email", "--out-round1", tmp_path / "r1",
               "--out-attrs", tmp_path / "at", ok=False)
    assert res.exit_code == 1 and "unknown kind 'emale'" in res.output
    res = _run("psi", "blind", csv, "--party", "p", "--key", key, "--collaboration-id",
               COLLAB, "--id", "email=email", "--attr", "email", "--out-round1",
               tmp_path / "r1", "--out-attrs", tmp_path / "at", ok=False)
    assert res.exit_code == 3 and "id_column_as_attribute" in res.output
    csv.write_text("email,contact\n" + "".join(f"u{i}@example.com,c{i}@example.org\n"
                                               for i in range(20)))
    res = _run("psi", "blind", csv, "--party", "p", "--key", key, "--collaboration-id",
               COLLAB, "--id", "email=email", "--attr", "contact", "--out-round1",
               tmp_path / "r1", "--out-attrs", tmp_path / "at", ok=False)
    assert res.exit_code == 3 and "identifying_attribute" in res.output
    assert "c1@example.org" not in res.output
    assert not (tmp_path / "r1").exists() and not (tmp_path / "at").exists()


def test_reblind_refuses_twist_points_and_writes_nothing(flow, tmp_path):
    table = pq.read_table(flow["a_r1"])
    col = table.column("email").to_pylist()
    twist = next(u for u in (bytes([i]) * 32 for i in range(1, 100))
                 if not _h2c.u_on_curve([u])[0])
    col[5] = twist
    bad = table.set_column(1, "email", pa.array(col, pa.binary()))
    bad = bad.replace_schema_metadata(table.schema.metadata)
    pq.write_table(bad, tmp_path / "bad.r1")
    res = _run("psi", "reblind", tmp_path / "bad.r1", "--key", flow["dir"] / "b.key",
               "--out", tmp_path / "out.r2", ok=False)
    assert res.exit_code == 1
    assert res.output.strip() == (
        f"error: {tmp_path / 'bad.r1'}, row 6, column 'email': not a point of the curve "
        "(refusing to blind it)")
    assert not (tmp_path / "out.r2").exists()
    res = _run("psi", "reblind", flow["a_attrs"], "--key", flow["dir"] / "b.key",
               "--out", tmp_path / "out.r2", ok=False)
    assert "expected a round1 file" in res.output


def test_worker_processes_give_the_same_values(tmp_path, monkeypatch):
    monkeypatch.setattr(_blinding, "_CHUNK", 64)  # several chunks over two processes
    key = protocols.load_private_key(_keypair(tmp_path, "w"))
    values = [f"user{i}@example.com" for i in range(300)]
    serial = protocols.psi_blind_values(key, COLLAB, "email", values, workers=1)
    assert protocols.psi_blind_values(key, COLLAB, "email", values, workers=2) == serial
    assert protocols.psi_reblind_values(key, serial, workers=2) == \
        protocols.psi_reblind_values(key, serial, workers=1)


def test_wrong_or_malformed_files_get_one_line_errors(flow, tmp_path):
    d = flow["dir"]
    res = _run("psi", "finish", "--round2", flow["a_csv"], "--attrs", flow["a_attrs"],
               "--party", "airline", "--out", tmp_path / "t.parquet", ok=False)
    assert res.exit_code == 1
    assert res.output == f"error: {flow['a_csv']}: not a readable Parquet file\n"
    res = _run("psi", "finish", "--round2", flow["a_tok"], "--attrs", flow["a_attrs"],
               "--party", "airline", "--out", tmp_path / "t.parquet", ok=False)
    assert res.output == (f"error: {flow['a_tok']}: not a cleanroom PSI round2 file "
                          "(no PSI metadata)\n")
    table = pq.read_table(flow["a_r2"])
    meta = json.loads(table.schema.metadata[b"cleanroom-psi"])
    del meta["canary_round1"]
    pq.write_table(table.replace_schema_metadata(
        {b"cleanroom-psi": json.dumps(meta).encode()}), tmp_path / "broken.r2")
    res = _run("psi", "finish", "--round2", tmp_path / "broken.r2", "--attrs",
               flow["a_attrs"], "--party", "airline", "--out", tmp_path / "t.parquet", ok=False)
    assert res.output == f"error: {tmp_path / 'broken.r2'}: PSI metadata lacks canary_round1\n"
    assert not (tmp_path / "t.parquet").exists()
    assert d.exists()


def test_low_order_points_are_refused(tmp_path):
    key = protocols.load_private_key(_keypair(tmp_path, "lo"))
    good = protocols.psi_blind_values(key, COLLAB, "email", ["a@example.com", "b@example.com"])
    for low in (bytes(32), (1).to_bytes(32, "little")):  # order 2 / order 4 (or twist)
        with pytest.raises(ValueError, match="value 1 is not a point of the curve"):
            protocols.psi_reblind_values(key, [good[0], low, good[1]])


def _engine_overlap(d: Path, a: Path, b: Path) -> int:
    import cleanroom

    def policy(attr: str) -> dict:
        return policy_doc(["email", "phone"], dimensions=[], aggregates={attr: ["COUNT"]},
                          minimum=2, allowed_result_receivers=["airline", "brand"])

    collab = collaboration_doc(COLLAB, members={"airline": (True, True), "brand": (False, True)},
                               tables={"airline": "airline", "brand": "brand"},
                               rules=["email", "phone"])
    collab["tables"]["airline"]["tokens"] = a.name
    collab["tables"]["brand"]["tokens"] = b.name
    write_collaboration(d, collab, {"airline": policy("member_id"),
                                    "brand": policy("customer_id")})
    with cleanroom.open_collaboration(d / "collab.toml") as room:
        return room.resolution().overlap_entities


def test_the_engine_matches_psi_files_like_hmac_files(flow, tmp_path):
    for name in ("a_tok", "b_tok"):
        (tmp_path / flow[name].name).write_bytes(flow[name].read_bytes())
    psi = _engine_overlap(tmp_path, tmp_path / flow["a_tok"].name,
                          tmp_path / flow["b_tok"].name)
    secret = protocols.new_secret(COLLAB)
    ids = [("email", "email"), ("phone", "phone")]
    protocols.tokenize_file(flow["a_csv"], tmp_path / "a.hmac.parquet", party="airline",
                            secret=secret, identifiers=ids, attributes=["member_id"])
    protocols.tokenize_file(flow["b_csv"], tmp_path / "b.hmac.parquet", party="brand",
                            secret=secret, identifiers=ids, attributes=["customer_id"])
    hmac_overlap = _engine_overlap(tmp_path, tmp_path / "a.hmac.parquet",
                                   tmp_path / "b.hmac.parquet")
    assert psi == hmac_overlap > 20


def _reference_blind(key, collab: str, kind: str, value: bytes) -> bytes:
    """X25519(key, u of hash_to_curve) on the reference path: plain integers, full points."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    x, _ = _h2c.hash_to_curve(value, hazmat.psi_dst(collab, kind))
    return key.exchange(X25519PublicKey.from_public_bytes(x.to_bytes(32, "little")))


def test_file_steps_equal_the_reference_path(flow):
    """The batched file steps give, value by value, what the reference hash-to-curve and one
    X25519 call per value give."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    d = flow["dir"]
    ka, kb = (protocols.load_private_key(d / f"{w}.key") for w in ("a", "b"))
    csv = pacsv.read_csv(flow["a_csv"], convert_options=pacsv.ConvertOptions(
        column_types={"email": pa.string(), "member_id": pa.string()}))
    emails = dict(zip(csv.column("member_id").to_pylist(),
                      normalize.normalize_column("email", csv.column("email")).values.to_pylist(),
                      strict=True))
    attrs, r1, r2 = (pq.read_table(flow[k]) for k in ("a_attrs", "a_r1", "a_r2"))
    member = dict(zip(attrs.column("row_id").to_pylist(), attrs.column("member_id").to_pylist(),
                      strict=True))
    checked = 0
    for row_id, once, twice in zip(r1.column("row_id").to_pylist(),
                                   r1.column("email").to_pylist(),
                                   r2.column("email").to_pylist(), strict=True):
        assert twice == kb.exchange(X25519PublicKey.from_public_bytes(once))
        value = emails[member[row_id]]
        if value is not None and checked < 60:
            assert once == _reference_blind(ka, COLLAB, "email", value.encode())
            checked += 1
    assert checked == 60
    assert r2.column("row_id").equals(r1.column("row_id"))


def test_reblinding_is_rfc7748_x25519():
    """The blinding primitive is RFC 7748's X25519: its section 6.1 Diffie-Hellman vector."""
    alice = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
    alice_public = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    bob = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
    bob_public = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    shared = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert _blinding.reblind_chunk(bytes.fromhex(alice), bytes.fromhex(bob_public)) == (shared, -1)
    assert _blinding.reblind_chunk(bytes.fromhex(bob), bytes.fromhex(alice_public)) == (shared, -1)


def test_one_usable_core_means_no_worker_processes(monkeypatch):
    monkeypatch.setattr(_blinding.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert _blinding.worker_count(10**6, None) == 1
    monkeypatch.setattr(_blinding.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert _blinding.worker_count(10**6, None) == 3
    assert _blinding.worker_count(10, None) == 1 and _blinding.worker_count(10, 4) == 4


def test_point_columns_round_trip_and_refuse_other_shapes(monkeypatch):
    from protocols import _psi

    points = [bytes([i]) * 32 for i in range(5)]
    arr = _psi.points_array(b"".join(points))
    assert arr.type == pa.binary() and arr.to_pylist() == points
    monkeypatch.setattr(_psi, "_MAX_CHUNK_POINTS", 2)  # int32 offsets: long columns in chunks
    chunked = _psi.points_array(b"".join(points))
    assert chunked.num_chunks == 3 and chunked.to_pylist() == points
    assert _psi.points_blob(chunked, "f", "c") == b"".join(points)
    monkeypatch.undo()
    assert _psi.points_array(b"").to_pylist() == []
    sliced = pa.chunked_array([arr.slice(1, 2), arr.slice(4)])
    assert _psi.points_blob(sliced, "f", "c") == b"".join(points[1:3] + points[4:])
    for kind in (pa.large_binary(), pa.binary(32)):
        assert _psi.points_blob(pa.chunked_array([arr.cast(kind)]), "f", "c") == b"".join(points)
    for bad in (pa.array([b"x" * 31], pa.binary()), pa.array([None, points[0]], pa.binary()),
                pa.array([1, 2], pa.int64())):
        with pytest.raises(protocols.InputError, match="every value must be 32 bytes"):
            _psi.points_blob(pa.chunked_array([bad]), "f", "c")


def test_finish_refuses_round2_rows_that_are_not_the_attribute_rows(flow, tmp_path):
    table = pq.read_table(flow["a_r2"])
    ids = table.column("row_id").to_pylist()
    ids[3] = ids[3] + 1 if ids[3] + 1 not in ids else ids[3] - 1
    bad = table.set_column(0, "row_id", pa.array(ids, pa.int64()))
    pq.write_table(bad.replace_schema_metadata(table.schema.metadata), tmp_path / "bad.r2")
    res = _run("psi", "finish", "--round2", tmp_path / "bad.r2", "--attrs", flow["a_attrs"],
               "--party", "airline", "--out", tmp_path / "t.parquet", ok=False)
    assert res.exit_code == 1
    assert "row ids differ between the round-2 and the attribute file" in res.output
    assert not (tmp_path / "t.parquet").exists()
