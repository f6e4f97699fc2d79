"""One loader for published test vectors: tests/vectors/<source>.json.

Each file is {"source": "<where the vectors were published>", "vectors": [{...}, ...]};
use `vectors("name")` as the argument list of `pytest.mark.parametrize("case", ...)`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

VECTOR_DIR = Path(__file__).parent / "vectors"


def vectors(source: str) -> list:
    """The vectors of tests/vectors/<source>.json as pytest params with readable ids."""
    data = json.loads((VECTOR_DIR / f"{source}.json").read_text(encoding="utf-8"))
    assert data.get("source"), f"{source}.json must name its source"
    return [
        pytest.param(case, id=case.get("id") or f"{source}-{i}")
        for i, case in enumerate(data["vectors"])
    ]
