"""The web console: one-time links, the session cookie, pages that show nothing without it,
and the pages rendered by headless Chromium (skipped when Chromium is not installed)."""

from __future__ import annotations

import httpx
import pytest
from _chromium import chromium, dump_dom
from _room_fixture import make_room, served

from cleanroom.server import COOKIE

TIMEOUT = httpx.Timeout(30.0)


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    return make_room(tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="module")
def server(room):
    with served(room) as (url, state):
        yield url, state


def test_link_sets_a_strict_httponly_expiring_cookie_once(room, server):
    url, _ = server
    with room.client("compliance", url) as c:
        link = c.console_link()
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as h:
        assert "Airline x Brand" not in h.get(f"{url}/console/").text
        r = h.get(link)
        assert r.status_code == 303 and r.headers["location"] == "/console/"
        cookie = r.headers["set-cookie"]
        for part in ("HttpOnly", "SameSite=strict", "Max-Age=28800", "Path=/console",
                     "expires="):
            assert part.lower() in cookie.lower(), part
        assert "secure" not in cookie.lower()  # plain http on loopback; TLS adds Secure
        page = h.get(f"{url}/console/")
        assert page.status_code == 200 and "Airline x Brand" in page.text
        assert "compliance" in page.text and "auditor" in page.text
        assert "script" not in page.text.lower()
        assert "default-src 'none'" in page.headers["content-security-policy"]
        again = httpx.get(link, timeout=TIMEOUT, follow_redirects=False)
        assert again.status_code == 401 and "Airline x Brand" not in again.text
        assert h.get(f"{url}/console/logout").status_code == 401
        out = h.get(f"{url}/console/audit")
        assert out.status_code == 401 and "Airline x Brand" not in out.text


def test_a_forged_or_expired_cookie_shows_nothing(room, server):
    url, state = server
    with httpx.Client(timeout=TIMEOUT, cookies={COOKIE: "forged"}) as h:
        r = h.get(f"{url}/console/policies")
    assert r.status_code == 401 and "Airline x Brand" not in r.text and "brand" not in r.text


def test_pages_for_an_auditor_and_for_a_member(room, server):
    url, _ = server
    with room.client("airline", url) as c:
        c.overlap()
        link = c.console_link("report")
    with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as h:
        report = h.get(link)
        assert report.status_code == 200 and "Audience overlap" in report.text
        policies = h.get(f"{url}/console/policies").text
        assert "Rules in force" in policies and "What airline can learn" in policies
        audit = h.get(f"{url}/console/audit").text
        assert "hash chain intact, every entry signed by the operator" in audit
    with room.client("compliance", url) as c:
        link = c.console_link("report")
    with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as h:
        page = h.get(link).text
        assert "Not available to you" in page and "auditors read" in page


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed "
                    "(apt-get install chromium) - the browser rendering check is skipped")
def test_chromium_logs_in_through_a_link_and_sees_the_figures(room, server):
    url, _ = server
    with room.client("airline", url) as c:
        overview, report = c.console_link(), c.console_link("report")
        overlap = c.overlap()["overlap"]["entities"]
    dom = dump_dom(overview)
    for text in ("Airline x Brand", "Members and auditors", "compliance", "Tables ready",
                 "2 / 2", "Signed in as"):
        assert text in dom, text
    dom = dump_dom(report)
    assert "Audience overlap" in dom and f">{overlap:,}<" in dom.replace(" ", "")
    assert dom.count("<svg") >= 3
    # the links were used: a browser opening one again gets the sign-in notice only
    dom = dump_dom(overview)
    assert "already used or has expired" in dom and "Airline x Brand" not in dom
