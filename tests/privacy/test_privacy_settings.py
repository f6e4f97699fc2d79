"""The [privacy] table: absent means threshold mode; every mistake is a ConfigError naming the
key; and the package's __all__ is its sorted public API."""

from __future__ import annotations

import tomllib

import pytest

import cleanroom.privacy as privacy
from cleanroom.privacy import PrivacySettings
from protocols import ConfigError

CONTRACT = """
[privacy]                      # in collaboration.toml; absent = threshold mode
mode = "differential"
epsilon = 10.0                 # the collaboration's total budget, all members together
epsilon_per_query = 0.5        # spent by each accepted query or analysis
"""


def test_the_contract_of_issue_13_parses():
    settings = PrivacySettings.from_dict(tomllib.loads(CONTRACT)["privacy"])
    assert settings == PrivacySettings("differential", 10.0, 0.5)
    assert settings.differential and settings.max_queries == 20


def test_absent_or_empty_table_means_threshold_mode():
    for table in (None, {}, {"mode": "threshold"}):
        settings = PrivacySettings.from_dict(table)
        assert settings == PrivacySettings()
        assert settings.mode == "threshold" and not settings.differential
        assert settings.max_queries is None


def test_integers_are_accepted_and_budgets_divide_exactly():
    settings = PrivacySettings.from_dict(
        {"mode": "differential", "epsilon": 1, "epsilon_per_query": 0.1}
    )
    assert settings.epsilon == 1.0 and isinstance(settings.epsilon, float)
    assert settings.max_queries == 10  # not 9 from 1 / 0.1 in floats


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"mode": "dp"}, "privacy.mode", 'must be "threshold" or "differential"'),
        ({"mode": 1}, "privacy.mode", "must be a string"),
        ({"mode": "differential", "epsilon_per_query": 0.5}, "privacy.epsilon", "required"),
        ({"mode": "differential", "epsilon": 1.0}, "privacy.epsilon_per_query", "required"),
        (
            {"mode": "differential", "epsilon": 0, "epsilon_per_query": 0.5},
            "privacy.epsilon",
            "positive",
        ),
        (
            {"mode": "differential", "epsilon": float("inf"), "epsilon_per_query": 0.5},
            "privacy.epsilon",
            "positive finite",
        ),
        (
            {"mode": "differential", "epsilon": "10", "epsilon_per_query": 0.5},
            "privacy.epsilon",
            "must be a number",
        ),
        (
            {"mode": "differential", "epsilon": 10, "epsilon_per_query": True},
            "privacy.epsilon_per_query",
            "must be a number",
        ),
        (
            {"mode": "differential", "epsilon": 1.0, "epsilon_per_query": 2.0},
            "privacy.epsilon_per_query",
            "must not exceed epsilon",
        ),
        ({"epsilon": 10.0}, "privacy.epsilon", 'applies only with mode = "differential"'),
        ({"mode": "threshold", "epsilon_per_query": 1}, "privacy.epsilon_per_query", "only"),
        ({"mode": "differential", "budget": 3}, "privacy.budget", "unknown key"),
    ],
)
def test_mistakes_name_the_key(table, key, words):
    with pytest.raises(ConfigError) as error:
        PrivacySettings.from_dict(table, file="collaboration.toml")
    assert error.value.key == key
    assert error.value.file == "collaboration.toml"
    assert words in str(error.value)
    assert str(error.value).startswith(f"collaboration.toml: {key}: ")


def test_the_table_must_be_a_table():
    with pytest.raises(ConfigError) as error:
        PrivacySettings.from_dict(["differential"])  # type: ignore[arg-type]
    assert error.value.key == "privacy"


def test_invalid_settings_cannot_be_constructed_directly():
    with pytest.raises(ConfigError):
        PrivacySettings("differential", 10.0, None)
    with pytest.raises(ConfigError):
        PrivacySettings("other")  # type: ignore[arg-type]


def test_all_is_sorted_and_exported():
    assert list(privacy.__all__) == sorted(privacy.__all__)
    public = {
        n
        for n in dir(privacy)
        if not n.startswith("_") and type(getattr(privacy, n)).__name__ != "module"
    }
    assert set(privacy.__all__) == public
