"""The synthetic airline x brand generator: deterministic, messy in the realistic ways, truthful."""

from __future__ import annotations

import hashlib
import re

import phonenumbers
import pytest

from examples.generate import PLACEHOLDER_EMAILS, generate, main


@pytest.fixture(scope="module")
def parties():
    return generate(3000, seed=11)


def _digest(frame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def test_same_seed_gives_identical_data_and_another_seed_does_not(parties):
    again = generate(3000, seed=11)
    for name in ("airline", "brand", "truth"):
        assert _digest(getattr(parties, name)) == _digest(getattr(again, name))
    other = generate(3000, seed=12)
    assert _digest(other.airline) != _digest(parties.airline)


def test_written_files_are_byte_identical_for_the_same_seed(tmp_path):
    for run in ("a", "b"):
        main(["--rows", "300", "--seed", "5", "--out", str(tmp_path / run)])
    for name in ("airline/airline.csv", "brand/brand.csv", "ground_truth/truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_schemas_match_the_two_parties(parties):
    assert list(parties.airline.columns) == [
        "member_id", "email", "phone", "first_name", "last_name", "dob", "country",
        "home_airport", "tier", "miles_flown"]
    assert list(parties.brand.columns) == [
        "customer_id", "email", "phone", "first_name", "last_name", "dob", "postal_code",
        "category", "spend"]
    assert set(parties.airline["country"]) == {"US", "GB", "FR", "DE", "IN", "SG", "AU"}
    assert parties.airline["member_id"].is_unique and parties.brand["customer_id"].is_unique


def test_truth_maps_every_row_once_and_stays_out_of_the_party_files(parties):
    truth = parties.truth
    assert len(truth) == len(parties.airline) + len(parties.brand)
    assert set(truth.loc[truth.party == "airline", "customer_id"]) == set(parties.airline.member_id)
    assert set(truth.loc[truth.party == "brand", "customer_id"]) == set(parties.brand.customer_id)
    for frame in (parties.airline, parties.brand):
        assert "person_id" not in frame.columns and "_person" not in frame.columns
    # the known overlap: 35 % of the brand's 1800 people are airline members
    assert parties.true_overlap() == round(round(3000 * 0.6) * 0.35)


def test_a_few_percent_within_party_duplicates_with_different_contact_points(parties):
    truth = parties.truth
    for party, frame, key in (("airline", parties.airline, "member_id"),
                              ("brand", parties.brand, "customer_id")):
        rows = truth[truth.party == party]
        counts = rows.person_id.value_counts()
        dup_people = counts[counts > 1].index
        assert 0.02 < len(dup_people) / len(counts) < 0.07
        merged = frame.merge(rows, left_on=key, right_on="customer_id")
        split = 0
        for _, group in merged[merged.person_id.isin(dup_people)].groupby("person_id"):
            if group.email.notna().sum() == 1 and group.phone.notna().sum() == 1:
                split += 1
        assert split > len(dup_people) * 0.3  # email on one row, phone on the other


def test_realistic_mess_is_present(parties):
    emails = parties.airline.email.dropna()
    assert emails.isin(PLACEHOLDER_EMAILS).sum() >= 5
    assert emails.str.contains(r"\+\w+@gmail\.com$", case=False).sum() > 0
    assert (emails != emails.str.strip()).sum() > 0
    assert (emails.str.contains("[A-Z]")).sum() > 50
    assert emails.str.contains(" at ").sum() > 0  # an invalid address
    phones = parties.airline.phone.dropna()
    assert phones.str.match(r"^\(\d{3}\) \d{3}-\d{4}$").sum() > 0  # US national
    assert phones.str.startswith("+44").sum() > 0 and phones.str.startswith("+91").sum() > 0
    assert parties.airline.phone.isna().mean() > 0.1
    assert parties.brand.dob.isna().mean() > 0.3
    names = parties.airline.first_name
    assert (names == names.str.upper()).sum() > 20
    assert names.str.contains("[éèëüöäç]").sum() > 0  # accents from French and German names


def test_most_phone_numbers_are_valid_in_their_country(parties):
    phones = parties.brand.phone.dropna().head(500)
    valid = 0
    for raw in phones:
        try:
            valid += phonenumbers.is_valid_number(phonenumbers.parse(raw, "US"))
        except phonenumbers.NumberParseException:
            pass
    assert 0.9 < valid / len(phones) < 1.0  # a few typos and placeholders, the rest valid


def test_segments_skew_so_some_overlap_cells_are_small(parties):
    tiers = parties.airline.tier.value_counts(normalize=True)
    assert tiers["Basic"] > 0.45 and tiers["Platinum"] < 0.08
    assert set(parties.brand.category) == {
        "Apparel", "Beauty", "Electronics", "Home", "Outdoor", "Travel Gear"}
    assert (parties.brand.spend > 0).all() and (parties.airline.miles_flown > 0).all()


def test_no_customer_id_looks_like_an_identifier(parties):
    assert all(re.fullmatch(r"FF\d{8}", v) for v in parties.airline.member_id)
    assert all(re.fullmatch(r"C-\d{7}", v) for v in parties.brand.customer_id)


def test_too_few_rows_is_refused():
    with pytest.raises(ValueError, match="at least 10"):
        generate(5)
