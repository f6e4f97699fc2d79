"""The HTML report: self-contained, escaped, missing segments shown as "< minimum", renders."""

from __future__ import annotations

import json
import os
import re

import pytest
from _chromium import chromium, dump_dom

from cleanroom.report import render_report, write_report

TIERS = ["Basic", "Silver", "Gold", "Platinum"]
CATS = ["Apparel", "Beauty", "Outdoor"]


def _data(**over):
    counts = {("Basic", "Apparel"): 412, ("Basic", "Beauty"): 318, ("Basic", "Outdoor"): 97,
              ("Silver", "Apparel"): 203, ("Silver", "Beauty"): 151, ("Gold", "Apparel"): 66}
    data = {
        "title": "Airline × Brand",
        "collaboration_id": "6f1c2a9e-0d5b-4f7e-9a51-2c4d8e7b1f03",
        "viewer": "airline",
        "generated_at": "2026-11-29 21:10 UTC",
        "version": "0.1.0",
        "summary": {
            "tables": {"airline": {"rows": 20816, "entities": 20012},
                       "brand": {"rows": 12475, "entities": 11990}},
            "overlap": {"entities": 3874},
            "match_rate": {"airline": 0.19358, "brand": 0.32310},
            "links_by_rule": {"email": 3012, "phone": 610, "name_dob": 252},
            "threshold": 50,
        },
        "segments": {
            "by": ["airline.tier", "brand.category"],
            "metric": "SUM(brand.spend)",
            "values": {"airline.tier": TIERS, "brand.category": CATS},
            "rows": [{"airline.tier": t, "brand.category": c, "entities": n,
                      "SUM(brand.spend)": n * 131.25} for (t, c), n in counts.items()],
        },
        "policies": [{"table": "airline", "owner": "airline",
                      "lines": ["Every output row must count at least 50 distinct people."]}],
        "audit": {"verified": True, "message": "3 entries, hash chain intact", "entries": [
            {"time": "2026-11-29 21:10:01", "member": "airline", "action": "overlap",
             "decision": "accepted", "rule": "", "rows": 1, "suppressed": 0},
            {"time": "2026-11-29 21:10:03", "member": "brand", "action": "query",
             "decision": "refused", "rule": "can_query", "rows": 0, "suppressed": 0}]},
    }
    data.update(over)
    return data


def _cells(page: str) -> list[str]:
    return re.findall(r'<td[^>]*class="(?:hidden|shown)"[^>]*>(.*?)</td>', page)


def test_key_figures_and_sections_are_in_the_page():
    page = render_report(_data())
    for text in ("20,012", "11,990", "3,874", "19.4%", "32.3%", "3,012", "610", "252",
                 "20,816", "804", "Airline × Brand", "hash chain intact", "can_query",
                 "Every output row must count at least 50 distinct people."):
        assert text in page, text
    assert page.count("<svg") >= 3


def test_missing_combinations_show_as_below_minimum_never_zero():
    page = render_report(_data())
    cells = _cells(page)
    assert len(cells) == len(TIERS) * len(CATS)
    hidden = [c for c in cells if "&lt; 50" in c]
    assert len(hidden) == len(TIERS) * len(CATS) - 6
    assert not any(re.search(r'class="n">0<', c) for c in cells)
    assert "6 shown · 6 withheld" in page
    # a suppressed overall number is shown as "< minimum" too, not as zero
    data = _data()
    del data["summary"]["overlap"]["entities"]
    assert '<div class="value">&lt; 50</div>' in render_report(data)


def test_everything_is_escaped():
    evil = "<script>alert(1)</script>"
    data = _data(title=evil, viewer=evil)
    data["segments"]["rows"].append({"airline.tier": evil, "brand.category": "Apparel",
                                     "entities": 77, "SUM(brand.spend)": 1.0})
    data["policies"][0]["lines"].append(evil)
    data["audit"]["entries"][0]["action"] = evil
    page = render_report(data)
    assert "<script" not in page
    assert "&lt;script&gt;" in page


def test_the_page_references_nothing_outside_itself(tmp_path):
    out = tmp_path / "report.html"
    write_report(_data(), out)
    page = out.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?:|//[a-z]|\bsrc=|\bhref=|@import", page, re.I)
    assert all(ref.startswith("#") for ref in re.findall(r"url\(([^)]*)\)", page))
    assert oct(os.stat(out).st_mode & 0o777) == "0o644"
    assert not [p for p in tmp_path.iterdir() if p.name != "report.html"]  # no temp left


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed "
                    "(apt-get install chromium) - the browser rendering check is skipped")
def test_chromium_renders_the_report_with_its_key_figures(tmp_path):
    out = tmp_path / "report.html"
    write_report(_data(), out)
    dom = dump_dom(f"file://{out}")
    for text in ("20,012", "11,990", "3,874", "19.4%", "32.3%", "&lt; 50", "Audit trail"):
        assert text in dom, text
    assert dom.count("<svg") >= 3


# -- `cleanroom report` on a real (small) collaboration ----------------------------------------
@pytest.fixture(scope="module")
def collab(tmp_path_factory):
    from cleanroom.cli import run_demo

    out = tmp_path_factory.mktemp("collab") / "demo"
    result = run_demo(out, rows=3000, seed=3, echo=lambda _line: None)
    assert result.stopped_at is None and result.report is not None
    return out / "cleanroom" / "collaboration.toml"


def test_report_command_writes_the_figures_the_engine_reports(collab, tmp_path):
    from click.testing import CliRunner

    from cleanroom.cli import main

    runner = CliRunner()
    ov = runner.invoke(main, ["overlap", str(collab), "--as", "airline", "--json"])
    assert ov.exit_code == 0, ov.output
    summary = json.loads(ov.output)
    out = tmp_path / "r.html"
    res = runner.invoke(main, ["report", str(collab), "--as", "airline", "--out", str(out),
                               "--by", "airline.tier", "--by", "brand.category",
                               "--metric", "AVG(brand.spend)"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"wrote {out} for airline")
    page = out.read_text("utf-8")
    for name in ("airline", "brand"):
        assert f"{summary['tables'][name]['entities']:,}" in page
        assert f"{100 * summary['match_rate'][name]:.1f}%" in page
    assert f"{summary['overlap']['entities']:,}" in page
    assert "AVG(brand.spend)" in page and "<th>Basic</th>" in page
    assert "&lt; 50" in page  # small segments withheld at this size
    assert "hash chain intact" in page and "overlap by airline.tier" in page
    assert not re.search(r"https?:|\bsrc=|\bhref=", page)


def test_report_for_a_member_who_may_not_query_is_refused_naming_the_rule(collab, tmp_path):
    from click.testing import CliRunner

    from cleanroom.cli import main

    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", str(collab), "--as", "brand", "--out", str(out)])
    assert res.exit_code == 3
    assert res.output.strip().splitlines()[-1].startswith("error: refused by rule can_query")
    assert not out.exists()


def test_report_refuses_three_dimensions(collab, tmp_path):
    from click.testing import CliRunner

    from cleanroom.cli import main

    res = CliRunner().invoke(main, ["report", str(collab), "--as", "airline", "--out",
                                    str(tmp_path / "r.html"), "--by", "airline.tier",
                                    "--by", "airline.country", "--by", "brand.category"])
    assert res.exit_code == 2 and "at most two --by" in res.output


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed "
                    "(apt-get install chromium) - the browser rendering check is skipped")
def test_chromium_renders_the_demo_report(collab, tmp_path):
    from click.testing import CliRunner

    from cleanroom.cli import main

    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", str(collab), "--as", "airline", "--out", str(out),
                                    "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)["summary"]
    dom = dump_dom(f"file://{out}")
    assert "Audience overlap" in dom and "Rules in force" in dom and "Audit trail" in dom
    for text in (f"{summary['overlap']['entities']:,}",
                 f"{summary['tables']['brand']['entities']:,}",
                 f"{100 * summary['match_rate']['airline']:.1f}%"):
        assert text in dom, text
    assert re.search(r'class="n">\d[\d,]*<', dom)  # at least one heatmap cell shown


def test_report_on_a_missing_collaboration_is_one_clear_line(tmp_path):
    from click.testing import CliRunner

    from cleanroom.cli import main

    missing = tmp_path / "nope.toml"
    res = CliRunner().invoke(main, ["report", str(missing), "--as", "airline", "--out",
                                    str(tmp_path / "r.html")])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope.toml" in lines[0]
    assert "Traceback" not in res.output and not (tmp_path / "r.html").exists()


def test_literals_typed_in_analyst_sql_never_reach_the_report(collab, tmp_path):
    from click.testing import CliRunner

    from cleanroom import AuditLog
    from cleanroom.cli import main

    # the engine already logs literals as '?'; the report does not rely on it
    AuditLog(collab.parent / "audit.jsonl").record(
        member="airline", decision="refused", rule="column_role",
        request={"analysis": "query", "sql": "SELECT a.tier FROM airline a WHERE a.tier = "
                 "'jane.doe@example.com' AND a.phone_digits = 6505551212"})
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", str(collab), "--as", "airline", "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = out.read_text("utf-8")
    assert "query SELECT a.tier FROM airline a WHERE a.tier = &#x27;…&#x27;" in page
    assert "jane.doe@example.com" not in page and "6505551212" not in page
