"""Headless Chromium for the tests that render a page (the report, the server's console)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile


def chromium() -> str | None:
    """The headless browser to render pages with, or None when none is installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or \
        shutil.which("google-chrome")


def dump_dom(url: str) -> str:
    """The DOM of `url` after headless Chromium loaded it (fresh profile, no network else)."""
    browser = chromium()
    assert browser is not None
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-500:]
    return done.stdout
