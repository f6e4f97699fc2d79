"""`cleanroom dedupe` on a party's own extract (the demo brand's CRM: typos, missing fields,
duplicate profiles with other contacts), then `tokenize --id external_id=person_id` carries
its resolution into the clean room, where those duplicates always merge."""

from __future__ import annotations

import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import write_collaboration

from cleanroom import open_collaboration
from examples.generate import generate

CID = "644965d5-c2db-4764-9935-bf1a5ad3e240"
IDS = ("email", "phone", "first_name", "last_name", "dob", "postal_code")


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    d = tmp_path_factory.mktemp("dedupe")
    parties = generate(3000, seed=5)
    brand = parties.brand
    brand.to_csv(d / "brand.csv", index=False)
    parties.airline.to_csv(d / "airline.csv", index=False)
    truth = parties.truth[parties.truth["party"] == "brand"].set_index("customer_id")
    return d, brand, truth["person_id"]


@pytest.fixture(scope="module")
def deduped(crm):
    from conftest import invoke_cli

    d, _, _ = crm
    res = invoke_cli("dedupe", d / "brand.csv", *[a for k in IDS for a in ("--id", f"{k}={k}")],
                     "--out", d / "brand.people.csv", "--report", d / "report.json")
    assert res.exit_code == 0, res.output
    return res.stdout, json.loads((d / "report.json").read_text())


def test_writes_the_input_back_with_a_person_id(crm, deduped):
    d, brand, truth = crm
    raw = pd.read_csv(d / "brand.csv", dtype=str, keep_default_na=False)
    out = pd.read_csv(d / "brand.people.csv", dtype=str, keep_default_na=False)
    assert list(out.columns) == [*raw.columns, "person_id"]
    pd.testing.assert_frame_equal(out[raw.columns], raw)  # every cell as written, in order
    assert out["person_id"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert (d / "brand.people.csv").stat().st_mode & 0o077 == 0  # personal data: owner only
    # against the generator's truth: duplicates merged, few false merges
    people = truth.loc[out["customer_id"]].to_numpy()
    frame = pd.DataFrame({"p": out["person_id"], "t": people})
    several = frame.groupby("t").filter(lambda g: len(g) > 1).groupby("t")["p"].nunique()
    assert (several == 1).mean() >= 0.9  # foreign postal codes compared too (below)
    mixed = frame.groupby("p")["t"].nunique()
    assert (mixed > 1).sum() <= 0.005 * len(mixed)


def test_foreign_postal_codes_are_compared_not_dropped(crm, deduped):
    """`--region US` rejects the brand's GB, Indian, Singaporean and Australian postal codes
    (40% of them); dedupe reads those without region rules, so they still count."""
    _, brand, _ = crm
    _, doc = deduped
    counts = doc["identifiers"]["postal_code"]
    assert counts["invalid"] == {} and counts["valid"] == brand["postal_code"].notna().sum()


def test_report_counts_and_masked_examples(crm, deduped):
    d, brand, _ = crm
    stdout, doc = deduped
    assert doc["rows"] == len(brand)
    assert sum(int(size) * n for size, n in doc["clusters_by_size"].items()) == doc["rows"]
    assert doc["duplicate_rows"] == doc["rows"] - doc["people"] > 0
    assert doc["share_merged"] == pytest.approx(doc["duplicate_rows"] / doc["rows"])
    assert doc["identifiers"]["postal_code"]["kind"] == "postal_code"
    assert doc["examples"]
    for ex in doc["examples"]:
        assert ex["size"] == len(ex["rows"]) >= 2
        assert all(2 <= r <= len(brand) + 1 for r in ex["rows"])  # the CSV header is row 1
        for cells in ex["columns"].values():
            assert all(re.fullmatch(r"[A-Z]|-", c) for c in cells)
    # no value of the input anywhere in what the command printed or wrote: not as a word,
    # not as a string in the report, and no email or phone number even inside a longer text
    values = {str(v).strip().lower() for k in IDS for v in brand[k].dropna()}
    assert not values & set(_strings(doc))
    text = stdout.replace(str(d), "")
    assert set(re.findall(r"[a-z_]+", text.lower())) <= VOCABULARY  # letters: words we wrote
    contacts = [str(v).lower() for k in ("email", "phone") for v in brand[k].dropna()]
    shown = stdout.lower() + json.dumps(doc).lower()
    assert not [v for v in contacts if len(v) >= 7 and v in shown]
    assert "people by number of rows" in stdout and "next: cleanroom tokenize" in stdout


VOCABULARY = {*IDS, "wrote", "brand", "people", "csv", "rows", "merged", "into", "another",
              "personal", "data", "keep", "it", "in", "house", "by", "number", "of", "column",
              "kind", "valid", "missing", "invalid", "examples", "values", "masked", "the",
              "same", "letter", "is", "value", "next", "cleanroom", "tokenize", "id",
              "external_id", "person_id", "its", "duplicates", "then", "always", "merge",
              "clean", "room", *"abcdefghijklmnopqrstuvwxyz"}


def _strings(doc: object) -> list[str]:
    """The string values of a JSON document (not its keys)."""
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in _strings(v)]
    if isinstance(doc, list):
        return [x for v in doc for x in _strings(v)]
    return [str(doc).lower()] if isinstance(doc, str) else []


def test_bad_input_leaves_no_output(runner, crm, tmp_path):
    d, _, _ = crm
    out = tmp_path / "x.parquet"
    res = runner("dedupe", d / "brand.csv", "--id", "email=Email", "--out", out)
    assert res.exit_code == 1 and not out.exists()
    assert res.stderr.startswith(f"error: {d / 'brand.csv'}, column 'Email': no such column")
    res = runner("dedupe", d / "brand.people.csv", "--id", "email=email", "--out", out)
    assert res.exit_code == 1 and not out.exists()
    assert "already has a 'person_id' column" in res.stderr
    res = runner("dedupe", d / "brand.csv", "--id", "email=email", "--threshold", "1",
                 "--out", out)
    assert res.exit_code == 2 and not out.exists()


def test_parquet_and_json(runner, crm, tmp_path):
    d, brand, _ = crm
    res = runner("dedupe", d / "brand.csv", "--id", "first_name=first_name",
                 "--id", "last_name=last_name", "--id", "dob=dob", "--threshold", "0.99",
                 "--out", tmp_path / "p.parquet", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    table = pq.read_table(tmp_path / "p.parquet")
    assert table.num_rows == len(brand) and table.column_names[-1] == "person_id"
    assert len(table.column("person_id").unique()) == doc["people"]
    assert doc["threshold"] == 0.99


@pytest.mark.parametrize("matching", [
    {"rules": ["external_id"], "max_records_per_token": 10},
    {"method": "probabilistic"},
])
def test_person_id_merges_in_the_clean_room(runner, crm, deduped, tmp_path, matching):
    d, _, _ = crm
    secret = tmp_path / "secret.json"
    assert runner("keys", "new", "--collaboration-id", CID, "--out", secret).exit_code == 0
    for party, src, ids in (("brand", d / "brand.people.csv", [*IDS, "external_id=person_id"]),
                            ("airline", d / "airline.csv", IDS[:5])):
        args = [a for k in ids for a in ("--id", k if "=" in k else f"{k}={k}")]
        res = runner("tokenize", src, "--party", party, "--secret-file", secret, *args,
                     "--attr", "spend" if party == "brand" else "miles_flown",
                     "--out", tmp_path / f"{party}.tokens.parquet")
        assert res.exit_code == 0, res.output
    joins = {"brand": [*IDS, "external_id"], "airline": list(IDS[:5])}
    aggs = {"brand": "spend", "airline": "miles_flown"}
    doc = {"collaboration": {"id": CID, "name": "x"},
           "members": {"airline": {"can_query": True, "can_receive_results": True},
                       "brand": {}},
           "tables": {p: {"owner": p, "tokens": f"{p}.tokens.parquet",
                          "policy": f"{p}.policy.toml"} for p in joins},
           "matching": matching}
    policies = {p: {"analysis_rule": "aggregation", "join_columns": joins[p],
                    "aggregate_columns": [{"columns": [aggs[p]], "functions": ["SUM"]}],
                    "output_constraints": [{"column": "entity_id", "type": "COUNT_DISTINCT",
                                            "minimum": 5}]} for p in joins}
    collab = write_collaboration(tmp_path, doc, policies)
    tokens = pq.read_table(tmp_path / "brand.tokens.parquet", columns=["external_id"])
    with open_collaboration(collab) as room:
        entity = dict(zip(*room.entity_map("brand").to_pydict().values(), strict=True))
        brand = room.resolution().tables["brand"]
    frame = pd.DataFrame({"person": tokens.column("external_id").to_pylist()})
    frame["entity"] = [entity.get(i, ("alone", i)) for i in range(len(frame))]
    assert (frame.groupby("person")["entity"].nunique() == 1).all()
    people = deduped[1]["people"]
    if "rules" in matching:  # only person_id links: the room sees the dedupe's people
        assert brand["entities"] == people
    else:
        assert brand["entities"] <= people
