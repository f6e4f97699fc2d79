"""cleanroom: privacy-preserving clean-room matching (engine, policies, CLI, reports).

The public API: open a collaboration and ask it questions under its owners' policies.

    room = cleanroom.open_collaboration("collaboration.toml")
    room.overlap("airline", by=["airline.tier"])
    cleanroom.run_query(room, "airline", "SELECT ...")

Parts: `config` (collaboration and policy files), `engine` (the room), `matching`
(probabilistic resolution, and `dedupe_file` for a party's own extract), `analyst` (analyst
SQL), `report` (figures and HTML), `cli` (the `cleanroom` command).

Names load on first use, so a command that needs one part does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from protocols import (
    AuditError,
    CleanroomBug,
    CleanroomError,
    ConfigError,
    DecryptionError,
    InputError,
    KeyMaterialError,
    ManifestMismatch,
    PolicyRefusal,
)

if TYPE_CHECKING:
    from .analyst import (
        CheckedQuery,
        QueryResult,
        TableRules,
        check_sql,
        run_query,
    )
    from .config import (
        AggregateColumns,
        Collaboration,
        EffectivePolicy,
        Matching,
        Member,
        OutputConstraint,
        Policy,
        Table,
    )
    from .engine import (
        AuditLog,
        CleanRoom,
        Dimension,
        Metric,
        OverlapResult,
        Resolution,
        VerifyResult,
        open_collaboration,
        overlap,
        policy_report,
        verify_tables,
    )
    from .matching import (
        DedupeReport,
        dedupe_file,
    )
    from .report import (
        build_report,
        render_report,
        write_report,
    )

# Each name is imported from its part the first time it is used.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submodules=["analyst", "cli", "config", "engine", "matching", "privacy", "report", "server"],
    submod_attrs={
        "analyst": (
            "CheckedQuery", "QueryResult", "TableRules", "check_sql", "run_query",
        ),
        "config": (
            "AggregateColumns", "Collaboration", "EffectivePolicy", "Matching", "Member",
            "OutputConstraint", "Policy", "Table",
        ),
        "engine": (
            "AuditLog", "CleanRoom", "Dimension", "Metric", "OverlapResult", "Resolution",
            "VerifyResult", "open_collaboration", "overlap", "policy_report", "verify_tables",
        ),
        "matching": (
            "DedupeReport", "dedupe_file",
        ),
        "report": (
            "build_report", "render_report", "write_report",
        ),
    },
)

__all__ = [
    "AggregateColumns",
    "AuditError",
    "AuditLog",
    "CheckedQuery",
    "CleanRoom",
    "CleanroomBug",
    "CleanroomError",
    "Collaboration",
    "ConfigError",
    "DecryptionError",
    "DedupeReport",
    "Dimension",
    "EffectivePolicy",
    "InputError",
    "KeyMaterialError",
    "ManifestMismatch",
    "Matching",
    "Member",
    "Metric",
    "OutputConstraint",
    "OverlapResult",
    "Policy",
    "PolicyRefusal",
    "QueryResult",
    "Resolution",
    "Table",
    "TableRules",
    "VerifyResult",
    "build_report",
    "check_sql",
    "dedupe_file",
    "open_collaboration",
    "overlap",
    "policy_report",
    "render_report",
    "run_query",
    "verify_tables",
    "write_report",
]
