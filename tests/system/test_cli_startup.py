"""Each command loads only what it needs: `cleanroom psi …` and `keys …` start without the
engine, the server stack, the matching models or the DP library."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from cleanroom.cli import main

HEAVY = ("duckdb", "pandas", "cleanroom.engine", "cleanroom.server", "cleanroom.report",
         "starlette", "uvicorn", "splink", "opendp", "jellyfish", "nicknames")


def _modules_after(argv: list[str]) -> set[str]:
    """The modules a fresh interpreter has imported after running `cleanroom ARGV`."""
    code = ("import json, sys\nfrom cleanroom.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_every_command_loads_under_its_own_name():
    ctx = click.Context(main)
    names = main.list_commands(ctx)
    assert {"psi", "keys", "tokenize", "overlap", "query", "report", "serve", "dedupe",
            "demo", "budget"} <= set(names)
    for name in names:
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                assert command.get_command(ctx, sub).name == sub
    assert main.get_command(ctx, "no-such-command") is None


@pytest.mark.parametrize("argv", [["psi", "--help"], ["psi", "reblind", "--help"],
                                  ["keys", "pair", "--help"]])
def test_psi_and_keys_start_without_the_heavy_parts(argv):
    loaded = _modules_after(argv)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_overlap_still_loads_the_engine():
    assert "cleanroom.engine" in _modules_after(["overlap", "--help"])
