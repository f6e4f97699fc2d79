"""tokenize_file end to end on a realistic synthetic CRM extract: tokens, manifest, privacy."""

from __future__ import annotations

import collections
import re

import pyarrow as pa
import pyarrow.csv  # for pa.csv
import pyarrow.parquet as pq
import pytest

import normalize
import protocols
from examples.generate import generate

CID = "2b0f5e3c-7d1a-4e8b-9c6f-0a1b2c3d4e5f"
OTHER_CID = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
NAME_DOB = ("first_name", "last_name", "dob")


@pytest.fixture(scope="module")
def airline_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "airline.csv"
    generate(300, seed=11).airline.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def rows(airline_csv):
    return pa.csv.read_csv(airline_csv, convert_options=pa.csv.ConvertOptions(
        column_types={c: pa.string() for c in ("email", "phone", "first_name", "last_name",
                                               "dob", "member_id")},
        strings_can_be_null=False)).to_pylist()


def secret(cid=CID, byte=b"\x07"):
    return protocols.new_secret(cid, secret=byte * 32)


def tokenize(src, out, sec=None, **kw):
    kw.setdefault("identifiers", [("email", "email"), ("phone", "phone")])
    kw.setdefault("match_keys", [("name_dob", [(k, k) for k in NAME_DOB])])
    return protocols.tokenize_file(src, out, party="airline", secret=sec or secret(), **kw)


def column(path, name):
    return pq.read_table(path).column(name).to_pylist()


def _ref(kind, value):
    try:
        return normalize.normalize(kind, value, profile="strict", region="US")
    except normalize.InvalidIdentifier:
        return None


def test_tokens_equal_the_per_value_reference(airline_csv, rows, tmp_path):
    out = tmp_path / "t.parquet"
    tokenize(airline_csv, out, attributes=["tier", "miles_flown"])
    sec = secret()
    for kind in ("email", "phone"):
        key = protocols.derive_token_key(sec, kind)
        expected = [None if (v := _ref(kind, r[kind])) is None else protocols.hmac_token(key, v)
                    for r in rows]
        assert collections.Counter(column(out, kind)) == collections.Counter(expected)
        # shuffled: the file order is not the input order
        assert column(out, kind) != expected
    key = protocols.derive_match_key(sec, "name_dob", NAME_DOB)
    expected = []
    for r in rows:
        parts = [_ref(k, r[k]) for k in NAME_DOB]
        expected.append(None if None in parts else
                        protocols.hmac_token(key, protocols.MATCH_SEPARATOR.join(parts)))
    assert collections.Counter(column(out, "name_dob")) == collections.Counter(expected)
    table = pq.read_table(out)
    assert table.column_names == ["row_id", "email", "phone", "name_dob", "tier", "miles_flown"]
    assert table.num_rows == len(rows)
    assert len(set(column(out, "row_id"))) == len(rows)
    assert sorted(column(out, "tier")) == sorted(r["tier"] for r in rows)


def test_same_input_same_tokens_other_key_or_kind_unrelated(airline_csv, tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    tokenize(airline_csv, a)
    tokenize(airline_csv, b)
    for name in ("email", "phone", "name_dob"):
        assert collections.Counter(column(a, name)) == collections.Counter(column(b, name))
    assert column(a, "row_id") != column(b, "row_id")
    emails = set(column(a, "email")) - {None}
    for sec in (secret(OTHER_CID), secret(byte=b"\x08")):
        c = tmp_path / "c.parquet"
        tokenize(airline_csv, c, sec=sec)
        assert not emails & set(column(c, "email"))
        assert protocols.read_manifest(c).key_fingerprint != protocols.read_manifest(
            a).key_fingerprint
    # the same values tokenized as another kind share nothing with the email tokens
    d = tmp_path / "d.parquet"
    tokenize(airline_csv, d, identifiers=[("email", "email"), ("external_id", "email")],
             match_keys=[])
    assert not emails & set(column(d, "external_id"))
    assert collections.Counter(column(d, "email")) == collections.Counter(column(a, "email"))


def test_manifest_says_everything_but_secrets(airline_csv, rows, tmp_path):
    out = tmp_path / "t.parquet"
    report = tokenize(airline_csv, out, attributes=["tier", "miles_flown"])
    m = protocols.read_manifest(out)
    assert report.manifest == m
    assert (m.party, m.collaboration_id, m.protocol) == ("airline", CID, protocols.PROTOCOL_HMAC)
    assert m.key_fingerprint == protocols.key_fingerprint(secret())
    assert (m.profile, m.region, m.row_count) == ("strict", "US", len(rows))
    assert m.identifiers["name_dob"]["kinds"] == list(NAME_DOB)
    assert m.identifiers["email"]["kinds"] == ["email"]
    assert m.attributes == {"tier": "string", "miles_flown": "int64"}
    assert {"phonenumbers", "email-validator"} <= set(m.library_versions)
    assert m.created.endswith("Z")
    for name, q in m.quality.items():
        assert q["valid"] + q["missing"] + sum(q["invalid"].values()) == len(rows), name
    expected_valid = sum(_ref("email", r["email"]) is not None for r in rows)
    assert m.quality["email"]["valid"] == expected_valid
    assert m.quality["email"]["invalid"].get("placeholder", 0) > 0  # the generator plants some
    dob_keys = collections.Counter(
        tuple(_ref(k, r[k]) for k in NAME_DOB) for r in rows
        if None not in (_ref(k, r[k]) for k in NAME_DOB))
    assert m.quality["name_dob"]["duplicate_rows"] == sum(n for n in dob_keys.values() if n > 1)


def test_no_identifier_string_appears_in_the_token_file(airline_csv, rows, tmp_path, runner):
    out = tmp_path / "t.parquet"
    res = runner(
        "tokenize", str(airline_csv), "--party", "airline", "--secret-file",
        str(_secret_file(tmp_path)), "--id", "email=email", "--id", "phone=phone",
        "--match-key", "name_dob=first_name:first_name+last_name:last_name+dob:dob",
        "--attr", "tier", "--out", str(out), "--report", str(tmp_path / "r.json"))
    assert res.exit_code == 0, res.output
    # data pages as stored and decoded (pages may be compressed): no needle as a substring
    stored = out.read_bytes()
    manifest = pq.ParquetFile(out).metadata.metadata[b"cleanroom"]
    assert manifest in stored
    cells = [v for col in pq.read_table(out).columns for v in col.to_pylist() if v is not None]
    blob = stored.replace(manifest, b"") + b"\n".join(
        v if isinstance(v, bytes) else str(v).encode() for v in cells)
    # texts (manifest, report, printed table): no needle as a whole word; their own words
    # ("too_short", "sharing") may contain a name as a substring
    texts = "\n".join((manifest.decode(), (tmp_path / "r.json").read_text(), res.output))
    words = set(re.findall(r"[^\s\"',:{}\[\]()]+", texts))
    needles = set()
    for r in rows:
        for kind in ("email", "phone", "first_name", "last_name", "dob", "member_id"):
            raw = (r[kind] or "").strip()
            needles.add(raw)
            if kind != "member_id" and (v := _ref(kind, raw)) is not None:
                needles.add(v)
    needles = {n for n in needles if len(n) >= 4}
    assert len(needles) > 500
    leaked = [n for n in needles if n.encode() in blob or n in words
              or (re.search(r"[\d@\s]", n) and n in texts)]  # emails, phones, dates: anywhere
    assert leaked == []
    assert protocols.load_secret(tmp_path / "s.secret").secret not in blob


def _secret_file(tmp_path):
    path = tmp_path / "s.secret"
    protocols.write_secret(secret(), path, force=True)
    return path


def test_batches_and_worker_processes_give_the_same_file_content(airline_csv, tmp_path):
    one, many = tmp_path / "one.parquet", tmp_path / "many.parquet"
    tokenize(airline_csv, one, attributes=["tier"])
    seen = []
    tokenize(airline_csv, many, attributes=["tier"], batch_rows=64, workers=2,
             progress=seen.append)
    assert seen[-1] == pq.read_metadata(one).num_rows and len(seen) >= 5
    a, b = pq.read_table(one), pq.read_table(many)
    key = ["email", "phone", "name_dob", "tier"]
    assert sorted(a.select(key).to_pylist(), key=repr) == sorted(b.select(key).to_pylist(),
                                                                key=repr)
    assert protocols.read_manifest(one).quality == protocols.read_manifest(many).quality
    assert len(set(column(many, "row_id"))) == b.num_rows


def test_duplicate_rows_count_rows_sharing_a_token(tmp_path):
    src = tmp_path / "crm.csv"
    src.write_text("id,email,phone\n1,Jane.Doe@Example.com,+1 650 555 0101\n"
                   "2,jane.doe@example.com ,(650) 555-0102\n3,bob@example.org,\n"
                   "4, JANE.DOE@example.com,650.555.0102\n5,,\n")
    report = tokenize(src, tmp_path / "t.parquet", match_keys=[])
    q = report.manifest.quality
    assert q["email"] == {"valid": 4, "missing": 1, "invalid": {}, "duplicate_rows": 3}
    assert q["phone"]["duplicate_rows"] == 2 and q["phone"]["missing"] == 2


def test_identifying_attribute_is_refused_unless_allowed(airline_csv, tmp_path):
    src = tmp_path / "with_contact.csv"
    text = airline_csv.read_text().splitlines()
    header = text[0].split(",")
    i = header.index("email")
    lines = [text[0] + ",contact"] + [f"{ln},{ln.split(',')[i]}" for ln in text[1:]]
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "t.parquet"
    with pytest.raises(protocols.PolicyRefusal) as info:
        tokenize(src, out, attributes=["contact"])
    assert info.value.rule == "identifying_attribute" and "'contact'" in str(info.value)
    assert not out.exists()
    tokenize(src, out, attributes=["contact"], allow_identifying_attr=True)
    assert out.exists()
    with pytest.raises(protocols.PolicyRefusal) as info:
        tokenize(airline_csv, tmp_path / "u.parquet", attributes=["email"])
    assert info.value.rule == "id_column_as_attribute"


def test_parquet_input_gives_the_same_tokens(airline_csv, tmp_path):
    pq_src = tmp_path / "airline.parquet"
    table = pa.csv.read_csv(airline_csv)  # phone and dob types inferred as the file has them
    pq.write_table(table, pq_src)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    tokenize(airline_csv, a, attributes=["tier"])
    tokenize(pq_src, b, attributes=["tier"])
    for name in ("email", "phone", "name_dob"):
        assert collections.Counter(column(a, name)) == collections.Counter(column(b, name))


def test_a_second_id_of_one_kind_gets_comparable_tokens(tmp_path):
    src = tmp_path / "crm.csv"
    src.write_text("id,home_email,work_email\n1,jane@example.com,j.doe@acme.com\n"
                   "2,j.doe@acme.com,\n")
    report = tokenize(src, tmp_path / "t.parquet", match_keys=[],
                      identifiers=[("email", "home_email"), ("email", "work_email")])
    assert report.manifest.identifiers["email_2"]["kinds"] == ["email"]
    home, work = column(tmp_path / "t.parquet", "email"), column(tmp_path / "t.parquet", "email_2")
    assert len(set(home) & set(work) - {None}) == 1
    with pytest.raises(protocols.ConfigError, match="part 'email' needs exactly one"):
        tokenize(src, tmp_path / "u.parquet", identifiers=[("email", "home_email"),
                                                           ("email", "work_email")],
                 match_keys=[("em", [("email", None)])])


def test_a_bad_line_late_in_a_big_file_leaves_nothing(airline_csv, tmp_path, monkeypatch):
    import protocols._readers as readers

    monkeypatch.setattr(readers, "_CSV_BLOCK_BYTES", 4096)  # many blocks, as in a big file
    lines = airline_csv.read_text().splitlines()
    src = tmp_path / "late.csv"
    src.write_text("\n".join(lines[:250] + ["x,y"] + lines[250:]) + "\n")
    out = tmp_path / "t.parquet"
    seen = []
    with pytest.raises(protocols.InputError) as info:
        tokenize(src, out, batch_rows=32, workers=2, progress=seen.append)
    assert str(info.value) == (f"{src}, row 251: malformed CSV line: expected 10 fields, found 2 "
                               "(check the delimiter and quotes)")
    assert seen and seen[-1] < 250  # it failed part-way, after writing some batches
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.csv"]


def test_another_countrys_postal_code_is_tokenized_without_the_regions_rules(tmp_path):
    """A US shop's GB and Indian customers keep their postal codes (read without the US
    rules, as `dedupe` reads them): two rows of one GB customer share a token, as do a ZIP
    and its ZIP+4; text no region reads stays invalid. (Rows come out shuffled: counted.)"""
    src = tmp_path / "crm.csv"
    src.write_text("id,email,postal_code\n1,a@example.com,SW1A 1AA\n2,b@example.com,SW1A 1AA\n"
                   "3,c@example.com,560001\n4,d@example.com,94107-1234\n5,e@example.com,!!!\n"
                   "6,f@example.com,94107\n")
    report = tokenize(src, tmp_path / "t.parquet", match_keys=[],
                      identifiers=[("email", "email"), ("postal_code", "postal_code")])
    tokens = column(tmp_path / "t.parquet", "postal_code")
    shared = sorted(tokens.count(t) for t in set(tokens) if t is not None)
    assert shared == [1, 2, 2] and tokens.count(None) == 1
    q = report.manifest.quality["postal_code"]
    assert q["invalid"] == {"postal": 1} and q["valid"] == 5 and q["duplicate_rows"] == 4
