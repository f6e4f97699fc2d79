"""`cleanroom serve` as a real process on a free loopback port, for tests that signal or kill it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

URL = re.compile(r"https?://\S+?(?=[\s)]|$)")


class ServeProcess:
    """A started `cleanroom serve`; `url` once its ready line came."""

    def __init__(self, collab: Path, identity: Path, *extra: str, timeout: float = 30.0,
                 env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-c", "from cleanroom.cli import main; main()", "serve",
               str(collab), "--identity", str(identity), "--port", "0", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, **(env or {})})
        self.line = ""
        got = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            self.line = self.proc.stdout.readline()
            got.set()

        threading.Thread(target=read, daemon=True).start()
        if not got.wait(timeout) or not self.line:
            self.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"cleanroom serve did not start: {err[-800:]}")
        match = URL.search(self.line)
        assert match, self.line
        self.url = match.group(0)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send `sig` and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as a crash."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)


@contextlib.contextmanager
def serve_process(collab: Path, identity: Path, *extra: str,
                  env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    """A `cleanroom serve` process, always stopped at the end."""
    p = ServeProcess(collab, identity, *extra, env=env)
    try:
        yield p
    finally:
        p.kill()
        for stream in (p.proc.stdout, p.proc.stderr):
            if stream is not None:
                stream.close()
