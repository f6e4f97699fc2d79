"""The `cleanroom` command line: one click group, one subcommand per user step.

Each command family lives in its own module and calls the library; `_group` is the one
boundary that turns library errors into a one-line message on stderr and an exit status
(2 usage, 1 failure, 3 policy refusal, 4 not authenticated or not allowed by a server). No
traceback for a user's mistake. The engine commands take a server URL in place of COLLAB
(`_remote`); `_server` runs the server and talks to it (upload, policy put, console-link).
"""

from __future__ import annotations

import os
from typing import Any

from ._budget import budget
from ._dedupe import dedupe
from ._demo import demo
from ._engine import audit, overlap_cmd, policy
from ._group import main
from ._interop import c3r, export_hashes
from ._local import inspect, keys, normalize_cmd, tokenize
from ._psi import psi
from ._query import query
from ._report import report
from ._server import console_link, keys_identity, policy_put, serve, upload
from ._walkthrough import DemoResult
from ._walkthrough import run_demo as _run_demo

keys.add_command(keys_identity)
policy.add_command(policy_put)
for _command in (keys, normalize_cmd, dedupe, tokenize, inspect, c3r, export_hashes, psi, demo,
                 report, policy, overlap_cmd, audit, query, budget, serve, upload,
                 console_link):
    main.add_command(_command)


def run_demo(out_dir: str | os.PathLike[str], **options: Any) -> DemoResult:
    """Run the demo walk-through with this command group (options as `cleanroom demo`'s,
    plus `echo`, a function that prints one line)."""
    return _run_demo(out_dir, group=main, **options)


__all__ = ["DemoResult", "main", "run_demo"]
