"""Ground truth through the real tokenizer: messy CSVs on both sides, tokenized separately,
matched exactly by the engine; a file tokenized with another secret is refused."""

from __future__ import annotations

import pytest
from _engine_fixtures import airline_policy, brand_policy, collab_doc
from conftest import write_collaboration

import cleanroom
import protocols
from cleanroom import ManifestMismatch

CID = "6f1c2a9e-0d5b-4f7e-9a51-2c4d8e7b1f03"


def _csvs(d):
    airline = ["member_id,email,phone,tier,home_airport,miles"]
    for i in range(30):  # messy formatting on the airline side
        airline.append(f"M{i:03d}, Person{i}.Name@Example.COM ,(650) 555-01{i:02d},"
                       f"{'gold' if i % 2 else 'silver'},SFO,{100 + i}")
    brand = ["customer,email,phone,segment,spend"]
    for i in range(10, 40):
        email = f"person{i}.name@example.com" if i < 25 else ""
        phone = f"+1 650-555-01{i:02d}" if i >= 25 else ""
        brand.append(f"C{i:03d},{email},{phone},{'sports' if i < 20 else 'travel'},{i}.5")
    (d / "airline.csv").write_text("\n".join(airline) + "\n")
    (d / "brand.csv").write_text("\n".join(brand) + "\n")


def _tokenize(d, party, attributes, secret):
    protocols.tokenize_file(d / f"{party}.csv", d / f"{party}.tokens.parquet", party=party,
                            secret=secret, identifiers=[("email", "email"), ("phone", "phone")],
                            attributes=attributes)


@pytest.fixture
def collab(tmp_path):
    _csvs(tmp_path)
    secret = protocols.new_secret(CID, secret=b"\x05" * 32)
    _tokenize(tmp_path, "airline", ["tier", "home_airport", "miles"], secret)
    _tokenize(tmp_path, "brand", ["segment", "spend"], secret)
    joins = ["email", "phone"]
    return write_collaboration(tmp_path, collab_doc(CID, 5, joins),
                               {"airline": airline_policy(5, joins),
                                "brand": brand_policy(5, joins)})


def test_real_tokens_match_exactly(collab):
    with cleanroom.open_collaboration(collab) as room:
        r = room.overlap("airline", by=["brand.segment"], metrics=["SUM(brand.spend)"])
    assert r.tables == {"airline": {"rows": 30, "entities": 30},
                        "brand": {"rows": 30, "entities": 30}}
    assert r.overlap == {"entities": 20}
    assert r.links_by_rule == {"email": 15, "phone": 5}
    assert r.segments == [
        {"brand.segment": "sports", "entities": 10, "SUM(brand.spend)": sum(i + .5 for i in
                                                                           range(10, 20))},
        {"brand.segment": "travel", "entities": 10, "SUM(brand.spend)": sum(i + .5 for i in
                                                                           range(20, 30))},
    ]


def test_other_secret_is_refused_not_zero_overlap(collab):
    other = protocols.new_secret(CID, secret=b"\x06" * 32)
    _tokenize(collab.parent, "brand", ["segment", "spend"], other)
    with pytest.raises(ManifestMismatch, match="made with a different secret"):
        cleanroom.open_collaboration(collab)
