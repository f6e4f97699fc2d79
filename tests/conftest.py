"""Test-wide settings and fixtures.

Property tests have no per-example deadline (the machine is shared and timing is not what
they test). `runner` invokes the `cleanroom` command line in-process, as a user would.
"""

from __future__ import annotations

from collections.abc import Callable
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


@pytest.fixture
def runner() -> Callable[..., Result]:
    """`runner("overlap", path, "--json")` -> the click Result (exit_code, stdout, stderr)."""
    return invoke_cli
