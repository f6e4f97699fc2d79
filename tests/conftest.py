"""Test-wide settings, fixtures and builders.

Property tests have no per-example deadline (the machine is shared and timing is not what
they test). `runner` invokes the `cleanroom` command line in-process, as a user would;
`policy_doc`, `collaboration_doc` and `write_collaboration` write collaboration and policy
files through the library's one TOML writer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

settings.register_profile(
    "cleanroom", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("cleanroom")


def invoke_cli(*args: Any, **kwargs: Any) -> Result:
    """Run `cleanroom ARGS...` in-process; every argument is passed as a string."""
    from cleanroom.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`cleanroom demo --rows 10000 --seed 7`, run once per session: its output folder
    (copy its `cleanroom/` before writing to it: see tests/system/_demo.py)."""
    from cleanroom.cli import run_demo

    out = tmp_path_factory.mktemp("demo") / "run"
    run_demo(out, rows=10_000, seed=7, echo=lambda line: None)
    return out


@pytest.fixture
def runner() -> Callable[..., Result]:
    """`runner("overlap", path, "--json")` -> the click Result (exit_code, stdout, stderr)."""
    return invoke_cli


# -- collaboration and policy files, through the library's one TOML writer -----------------
def policy_doc(
    joins: list[str],
    *,
    rule: str = "aggregation",
    dimensions: list[str] | None = None,
    aggregates: dict[str, list[str]] | None = None,
    minimum: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A policy as a dict: `aggregates` maps a column to its functions; `extra` keys as is."""
    doc: dict[str, Any] = {"analysis_rule": rule, "join_columns": joins}
    if dimensions is not None:
        doc["dimension_columns"] = dimensions
    if aggregates:
        doc["aggregate_columns"] = [{"columns": [c], "functions": f}
                                    for c, f in aggregates.items()]
    if minimum is not None:
        doc["output_constraints"] = [{"column": "entity_id", "type": "COUNT_DISTINCT",
                                      "minimum": minimum}]
    return {**doc, **extra}


def collaboration_doc(
    cid: str,
    *,
    members: dict[str, tuple[bool, bool]],
    tables: dict[str, str],
    rules: list[str],
    cap: int = 5,
) -> dict[str, Any]:
    """A collaboration: members as name -> (can_query, can_receive_results), tables as
    name -> owner (token file NAME.tokens.parquet, policy NAME.policy.toml)."""
    return {
        "collaboration": {"id": cid, "name": "Airline x Brand", "audit_log": "audit.jsonl"},
        "members": {m: {"can_query": q, "can_receive_results": r}
                    for m, (q, r) in members.items()},
        "tables": {t: {"owner": o, "tokens": f"{t}.tokens.parquet",
                       "policy": f"{t}.policy.toml"} for t, o in tables.items()},
        "matching": {"rules": rules, "max_records_per_token": cap},
    }


def write_collaboration(
    d: Path, collaboration: dict[str, Any], policies: dict[str, dict[str, Any]],
    name: str = "collab.toml",
) -> Path:
    """Write each table's policy and the collaboration file into `d`; return its path."""
    from cleanroom.config import write_toml

    for table, doc in policies.items():
        write_toml(d / f"{table}.policy.toml", doc)
    return write_toml(d / name, collaboration)
