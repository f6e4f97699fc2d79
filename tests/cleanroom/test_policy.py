"""Policy and collaboration files: strict validation, errors naming file, key and reason."""

from __future__ import annotations

import pytest
from _engine_fixtures import (
    AIRLINE_ATTRS,
    BRAND_ATTRS,
    write_collab,
    write_party,
)

from cleanroom import Collaboration, ConfigError, EffectivePolicy, Policy

GOOD = {
    "analysis_rule": "aggregation",
    "join_columns": ["email"],
    "dimension_columns": ["tier"],
    "aggregate_columns": [{"columns": ["miles"], "functions": ["SUM"]}],
    "output_constraints": [{"column": "entity_id", "type": "COUNT_DISTINCT", "minimum": 50}],
}


def test_good_policy_builds_frozen_record():
    p = Policy.from_dict(GOOD, file="p.toml")
    assert p.minimum == 50 and p.functions_for("miles") == ("SUM",)
    assert p.analyst_columns() == ("tier", "miles")
    with pytest.raises(AttributeError):
        p.minimum_x = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "change, key, reason",
    [
        ({"join_colums": ["email"]}, "join_colums", "unknown key"),
        ({"analysis_rule": "custom"}, "analysis_rule", "must be 'aggregation' or 'list'"),
        ({"dimension_columns": ["email", "tier"]}, "dimension_columns", "also a dimension"),
        ({"output_constraints": [{"column": "entity_id", "type": "COUNT_DISTINCT",
                                  "minimum": 1}]}, "output_constraints", "minimum must be"),
        ({"output_constraints": []}, "output_constraints", "needs a minimum"),
        ({"output_constraints": [{"column": "email", "type": "COUNT_DISTINCT",
                                  "minimum": 5}]}, "output_constraints", "must be 'entity_id'"),
        ({"aggregate_columns": [{"columns": ["miles"], "functions": ["MEDIAN"]}]},
         "aggregate_columns", "unknown function"),
        ({"aggregate_columns": [{"columns": ["miles"], "function": ["SUM"]}]},
         "aggregate_columns", "unknown key 'function'"),
        ({"join_required": "always"}, "join_required", "query_runner"),
        ({"scalar_functions": ["EVAL"]}, "scalar_functions", "unknown scalar function"),
        ({"dimension_columns": "tier"}, "dimension_columns", "must be a list"),
        ({"dimension_columns": ["Tier!"]}, "dimension_columns", "not a valid column name"),
    ],
)
def test_bad_policy_names_file_key_reason(change, key, reason):
    with pytest.raises(ConfigError) as info:
        Policy.from_dict({**GOOD, **change}, file="brand.policy.toml")
    assert info.value.file == "brand.policy.toml"
    assert info.value.key == key
    assert reason in str(info.value)
    assert str(info.value).startswith(f"brand.policy.toml: {key}: ")


def test_most_restrictive_wins():
    a = Policy.from_dict({**GOOD, "allowed_result_receivers": ["airline", "brand"],
                          "scalar_functions": ["UPPER", "LOWER"]})
    b = Policy.from_dict({**GOOD, "output_constraints": [
        {"column": "entity_id", "type": "COUNT_DISTINCT", "minimum": 150}],
        "allowed_result_receivers": ["brand"], "scalar_functions": ["LOWER"],
        "join_required": "query_runner"})
    eff = EffectivePolicy.combine({"a": a, "b": b})
    assert eff.minimum == 150
    assert eff.allowed_result_receivers == ("brand",)
    assert eff.scalar_functions == ("LOWER",)
    assert eff.join_required == ("b",)


@pytest.fixture
def collab_dir(tmp_path):
    write_party(tmp_path / "airline.tokens.parquet", "airline",
                [{"email": "a@x.com", "tier": "gold", "home_airport": "SFO", "miles": 5}],
                attributes=AIRLINE_ATTRS)
    write_party(tmp_path / "brand.tokens.parquet", "brand",
                [{"email": "a@x.com", "segment": "s", "spend": 1.0}], attributes=BRAND_ATTRS)
    write_collab(tmp_path)
    return tmp_path


def test_collaboration_loads_with_policies(collab_dir):
    c = Collaboration.from_path(collab_dir / "collab.toml")
    assert set(c.tables) == {"airline", "brand"}
    assert c.members["brand"].can_query is False
    assert c.matching.rules == ("email", "phone", "name_dob")
    assert c.owned_by("airline") == ("airline",)


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    "file, old, new, key, reason",
    [
        ("airline.policy.toml", '"tier", "home_airport"', '"tier", "seat"', "dimension_columns",
         "'seat' is not an attribute column"),
        ("airline.policy.toml", '["email", "phone", "name_dob"]', '["email", "passport"]',
         "join_columns", "'passport' is not a token column"),
        ("airline.policy.toml", '["airline", "brand"]', '["airline", "hotel"]',
         "allowed_result_receivers", "'hotel' is not a member"),
        ("collab.toml", 'owner = "brand"', 'owner = "hotel"', "tables.brand.owner",
         "not a member"),
        ("collab.toml", "max_records_per_token = 5", "max_records_per_token = 0",
         "matching.max_records_per_token", "positive integer"),
        ("collab.toml", 'rules = ["email"', 'rules = ["passport"', "matching.rules",
         "not a join column"),
        ("collab.toml", "can_query = true\ncan_receive_results = true",
         "can_query = true\ncan_recieve = true", "members.airline.can_recieve", "unknown key"),
    ],
)
def test_bad_collaboration_names_file_key_reason(collab_dir, file, old, new, key, reason):
    _edit(collab_dir / file, old, new)
    with pytest.raises(ConfigError) as info:
        Collaboration.from_path(collab_dir / "collab.toml")
    assert info.value.key == key
    assert info.value.file.endswith(file)
    assert reason in str(info.value)


def test_missing_token_file_is_named(collab_dir):
    (collab_dir / "brand.tokens.parquet").unlink()
    with pytest.raises(ConfigError, match="tables.brand.tokens: token file: .*file not found"):
        Collaboration.from_path(collab_dir / "collab.toml")
