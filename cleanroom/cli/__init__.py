"""The `cleanroom` command line: one click group, one subcommand per user step.

Each command family lives in its own module and calls the library; `_group` is the one
boundary that turns library errors into a one-line message on stderr and an exit status
(2 usage, 1 failure, 3 policy refusal, 4 not authenticated or not allowed by a server). No
traceback for a user's mistake. The engine commands take a server URL in place of COLLAB
(`_remote`); `_server` runs the server and talks to it (upload, policy put, console-link).
A command's module is imported when the command is used, so each step starts quickly.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ._group import main

if TYPE_CHECKING:
    from ._walkthrough import DemoResult

main.lazy.update({
    "keys": "._local:keys",
    "normalize": "._local:normalize_cmd",
    "dedupe": "._dedupe:dedupe",
    "tokenize": "._local:tokenize",
    "inspect": "._local:inspect",
    "c3r": "._interop:c3r",
    "export-hashes": "._interop:export_hashes",
    "psi": "._psi:psi",
    "demo": "._demo:demo",
    "report": "._report:report",
    "policy": "._engine:policy",
    "overlap": "._engine:overlap_cmd",
    "audit": "._engine:audit",
    "query": "._query:query",
    "budget": "._budget:budget",
    "serve": "._server:serve",
    "upload": "._server:upload",
    "console-link": "._server:console_link",
})


def run_demo(out_dir: str | os.PathLike[str], **options: Any) -> DemoResult:
    """Run the demo walk-through with this command group (options as `cleanroom demo`'s,
    plus `echo`, a function that prints one line)."""
    from ._walkthrough import run_demo as _run_demo

    return _run_demo(out_dir, group=main, **options)


def __getattr__(name: str) -> Any:
    if name == "DemoResult":
        from ._walkthrough import DemoResult

        return DemoResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DemoResult", "main", "run_demo"]
