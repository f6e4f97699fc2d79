"""The privacy budget through a server: `cleanroom budget URL` prints what the local command
prints (differential and threshold mode), for members and auditors; and the console's budget
page (HTTP, and in headless Chromium when it is installed)."""

from __future__ import annotations

import json

import httpx
import pytest
from _chromium import chromium, dump_dom
from _room_fixture import local_copy, make_room, served
from click.testing import CliRunner

from cleanroom.cli import main
from cleanroom.config import read_toml, write_toml

TIMEOUT = httpx.Timeout(30.0)


def cli(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def differential(tmp_path_factory):
    """A served room in differential mode (ε 2, 0.5 per query) after two overlaps by the
    airline: ε 1 spent, 1 remaining."""
    room = make_room(tmp_path_factory.mktemp("budget-dp"))
    doc = read_toml(str(room.collab))
    doc["privacy"] = {"mode": "differential", "epsilon": 2.0, "epsilon_per_query": 0.5}
    write_toml(room.collab, doc)
    with served(room) as (url, state):
        with room.client("airline", url) as c:
            c.overlap()
            c.overlap()
        yield room, url, state


@pytest.fixture(scope="module")
def threshold(tmp_path_factory):
    room = make_room(tmp_path_factory.mktemp("budget-threshold"))
    with served(room) as (url, state):
        yield room, url, state


@pytest.mark.parametrize("mode", ["differential", "threshold"])
def test_budget_prints_the_same_as_locally(mode, request, tmp_path):
    room, url, state = request.getfixturevalue(mode)
    collab = local_copy(room, tmp_path / "local")  # the ledger comes with the folder
    logged = len(state.audit.entries())
    for who in ("airline", "brand", "agency", "compliance"):
        for args in (["--json"], []):
            local = cli("budget", collab, *args)
            remote = cli("budget", url, "--identity", room.key(who), *args)
            assert local.exit_code == 0, local.output
            assert remote.exit_code == 0, remote.output
            assert remote.stdout == local.stdout, (who, args)
    doc = json.loads(cli("budget", url, "--identity", room.key("compliance"), "--json").stdout)
    if mode == "differential":
        assert doc == {"mode": "differential", "epsilon": 2.0, "spent": 1.0, "remaining": 1.0,
                       "queries": 2, "epsilon_per_query": 0.5, "queries_remaining": 2}
    else:
        assert doc["mode"] == "threshold" and doc["epsilon"] is None and doc["queries"] == 0
    assert len(state.audit.entries()) == logged  # a read, like policy and audit: not logged


def test_budget_url_needs_a_known_identity(differential):
    room, url, _ = differential
    r = cli("budget", url, "--json")
    assert r.exit_code == 2 and "needs --identity KEYFILE" in r.stderr
    r = cli("budget", url, "--identity", room.key("operator"))  # the operator is no member
    assert r.exit_code == 4 and r.stderr == "error: not authenticated: unknown_key\n"
    r = cli("budget", url, "--json", env={"CLEANROOM_IDENTITY": str(room.key("brand"))})
    assert r.exit_code == 0 and json.loads(r.stdout)["spent"] == 1.0
    unsigned = httpx.get(f"{url}/v1/budget", timeout=TIMEOUT)
    assert unsigned.status_code == 401 and "epsilon" not in unsigned.text


def _page(room, url, who: str) -> httpx.Response:
    with room.client(who, url) as c:
        link = c.console_link("budget")
    with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as h:
        return h.get(link)


def test_console_budget_page_for_members_and_auditors(differential):
    room, url, state = differential
    for who in ("compliance", "brand"):
        page = _page(room, url, who)
        assert page.status_code == 200 and "Privacy budget" in page.text
        text = page.text
        for needle in ("Budget", "ε 2<", "Spent", "ε 1<", "Remaining", "by 2 queries",
                       "2 more at ε = 0.5 each", "Spend history", 'style="width:50.0%"',
                       'aria-label="privacy budget: ε 1 of 2 spent"'):
            assert needle in text, (who, needle)
        assert text.count("<td>airline</td>") == 2 and "script" not in text.lower()
    out = httpx.get(f"{url}/console/budget", timeout=TIMEOUT)
    assert out.status_code == 401 and "Spend history" not in out.text


def test_console_budget_page_in_threshold_mode(threshold):
    room, url, _ = threshold
    page = _page(room, url, "airline")
    assert page.status_code == 200
    assert "Threshold mode: there is no privacy budget." in page.text
    assert "Spend history" not in page.text


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed "
                    "(apt-get install chromium) - the browser rendering check is skipped")
def test_chromium_shows_the_budget(differential):
    room, url, _ = differential
    with room.client("compliance", url) as c:
        link = c.console_link("budget")
        spent = c.budget()["spent"]
    dom = dump_dom(link)
    for text in ("Privacy budget", "Remaining", "Spend history", "Signed in as",
                 f"privacy budget: ε {spent:g} of 2 spent"):
        assert text in dom, text
