"""`cleanroom tokenize --fuzzy`: derived-form token columns, each under its own key, listed in
the manifest (format version 2); files without forms stay version 1 and old files read."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import normalize
import protocols
from examples.generate import generate

CID = "0b6f3c1e-2a4d-4e8f-9c7b-5d1a2e3f4a5b"
IDS = ("email", "first_name", "last_name", "dob")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzzy")
    parties = generate(400, seed=23)
    parties.airline.to_csv(d / "airline.csv", index=False)
    secret = protocols.new_secret(CID, secret=bytes(range(32)))
    protocols.write_secret(secret, d / "secret.json")
    return d, parties.airline, secret


def _tokenize(runner, d, out, *extra):
    args = ["tokenize", d / "airline.csv", "--party", "airline", "--secret-file",
            d / "secret.json", *[a for k in IDS for a in ("--id", f"{k}={k}")],
            "--attr", "tier", "--region", "US", "--out", d / out, "--json", *extra]
    res = runner(*args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_fuzzy_adds_one_column_per_form_with_its_own_key(runner, work):
    d, frame, secret = work
    doc = _tokenize(runner, d, "fuzzy.parquet", "--fuzzy")
    manifest = protocols.read_manifest(d / "fuzzy.parquet")
    assert manifest.format_version == protocols.FUZZY_FORMAT_VERSION == doc["format_version"]
    assert manifest.fuzzy == {"version": protocols.FUZZY_VERSION,
                              "forms": {k: list(protocols.FUZZY_FORMS[k]) for k in IDS}}
    table = pq.read_table(d / "fuzzy.parquet")
    expected = [f"{k}__{f}" for k in IDS for f in protocols.FUZZY_FORMS[k]]
    assert [c for c in table.column_names if "__" in c] == expected
    assert manifest.identifiers["last_name__soundex"] == {
        "kinds": ["last_name"], "match_key": False, "form": "soundex", "of": "last_name"}
    assert {"jellyfish", "nicknames"} <= set(manifest.library_versions)
    # the token file is shuffled: compare the multisets of tokens with the reference path
    for kind in IDS:
        raw = pacsv.read_csv(d / "airline.csv", convert_options=pacsv.ConvertOptions(
            include_columns=[kind], column_types={kind: pa.string()},
            strings_can_be_null=False)).column(kind)
        values = normalize.normalize_column(kind, raw, profile="strict", region="US").values
        for name, ref in protocols.fuzzy_tokens(secret, kind, values).items():
            got = table.column(name).to_pylist()
            assert sorted(v for v in got if v) == sorted(v for v in ref.to_pylist() if v)
            assert all(v is None or len(v) == 32 for v in got)
    # a form's tokens never equal the exact tokens of the same value, nor another form's
    exact = set(table.column("first_name").to_pylist())
    assert not exact & set(table.column("first_name__nickname").to_pylist())
    q = doc["identifiers"]["dob__year"]
    assert q["valid"] + q["missing"] == len(frame) and "duplicate_rows" not in q


def test_without_fuzzy_the_file_stays_version_1(runner, work):
    d, _, _ = work
    doc = _tokenize(runner, d, "plain.parquet")
    meta = pq.read_schema(d / "plain.parquet").metadata[protocols.MANIFEST_METADATA_KEY]
    raw = json.loads(meta)
    assert raw["format_version"] == 1 and "fuzzy" not in raw and "fuzzy" not in doc
    assert not [c for c in pq.read_schema(d / "plain.parquet").names if "__" in c]


def test_a_version_1_file_written_before_fuzzy_still_reads(tmp_path):
    old = {"party": "brand", "collaboration_id": CID, "protocol": protocols.PROTOCOL_HMAC,
           "key_fingerprint": "00" * 8, "profile": "strict", "region": "US", "row_count": 1,
           "identifiers": {"email": {"kinds": ["email"], "match_key": False}},
           "attributes": {}, "quality": {}, "library_versions": {}, "created": "",
           "canary": None, "format_version": 1, "extra": {}}
    table = pa.table({"row_id": [1], "email": pa.array([b"x" * 32], pa.binary())})
    path = tmp_path / "old.parquet"
    pq.write_table(table.replace_schema_metadata(
        {protocols.MANIFEST_METADATA_KEY: json.dumps(old).encode()}), path)
    m = protocols.read_manifest(path)
    assert m.format_version == 1 and m.fuzzy == {}
    assert json.loads(m.to_json()) == old
    bad = dict(old, format_version=2)
    pq.write_table(table.replace_schema_metadata(
        {protocols.MANIFEST_METADATA_KEY: json.dumps(bad).encode()}), path)
    with pytest.raises(protocols.InputError, match="old.parquet: token file format version 2"):
        protocols.read_manifest(path)


def test_fuzzy_refusals(runner, work):
    d, _, _ = work
    base = ["tokenize", d / "airline.csv", "--party", "airline", "--secret-file",
            d / "secret.json", "--out", d / "x.parquet"]
    res = runner(*base, "--id", "phone=phone", "--fuzzy")
    assert res.exit_code == 1
    assert res.stderr.startswith("error: ") and "--fuzzy" in res.stderr
    res = runner(*base, "--id", "email=email", "--match-key", "a__b=first_name+dob")
    assert res.exit_code != 0 and "derived-form" in res.output + res.stderr
    assert not (d / "x.parquet").exists()
