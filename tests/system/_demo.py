"""Helper of the system tests on the demo collaboration (its fixture is `demo_run`)."""

from __future__ import annotations

import shutil
from pathlib import Path


def fresh_copy(demo: Path, tmp: Path) -> Path:
    """A copy of the demo's collaboration with no privacy state and no audit log yet."""
    target = tmp / "cleanroom"
    shutil.copytree(demo / "cleanroom", target,
                    ignore=shutil.ignore_patterns(".cleanroom-privacy", "audit.jsonl"))
    return target / "collaboration.toml"
