"""The ε ledger: exact sums, refusal with rule privacy_budget, exactly-N under 8 racing
processes, charges that survive a killed process, and corrupted files that fail closed."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from cleanroom.privacy import BudgetLedger, Charge
from cleanroom.privacy._ledger import decimal_text, exact_epsilon
from protocols import PolicyRefusal


def test_twenty_halves_spend_exactly_ten(tmp_path):
    ledger = BudgetLedger(tmp_path, 10.0)
    for i in range(20):
        ledger.charge(0.5, f"q{i}", "airline")
    assert ledger.spent() == 10.0 and ledger.remaining() == 0.0
    with pytest.raises(PolicyRefusal) as refused:
        ledger.charge(0.5, "q20", "brand")
    assert refused.value.rule == "privacy_budget"
    assert "needs ε=0.5 but only 0 of the collaboration's ε=10 remains" in str(refused.value)
    assert len(ledger.entries()) == 20  # the refused query was not recorded


def test_tenths_are_exact(tmp_path):
    ledger = BudgetLedger(tmp_path, 1)
    for i in range(3):
        ledger.charge(0.1, f"q{i}", "brand")
    assert ledger.spent() == 0.3  # not 0.30000000000000004
    assert ledger.remaining() == 0.7
    for i in range(7):
        ledger.charge("0.1", f"r{i}", "brand")
    assert ledger.remaining() == 0.0
    with pytest.raises(PolicyRefusal):
        ledger.charge(Decimal("0.000001"), "last", "brand")


def test_a_charge_larger_than_what_remains_is_refused_but_a_smaller_one_fits(tmp_path):
    ledger = BudgetLedger(tmp_path, 1.0)
    ledger.charge(0.75, "q1", "airline")
    with pytest.raises(PolicyRefusal):
        ledger.charge(0.5, "q2", "airline")
    assert ledger.charge(0.25, "q3", "airline").spent_after == 1.0


def test_entries_and_persistence(tmp_path):
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    BudgetLedger(tmp_path, 10).charge(0.5, "overlap --by tier", "airline", now=at)
    charge = BudgetLedger(tmp_path, 10).charge(1.5, "sql:abc", "brand", now=at)
    assert charge == Charge(2, 1.5, "sql:abc", "brand", "2025-01-02T03:04:05+00:00", 2.0)
    reopened = BudgetLedger(tmp_path, 10)
    assert reopened.entries() == (
        Charge(1, 0.5, "overlap --by tier", "airline", "2025-01-02T03:04:05+00:00", 0.5),
        charge,
    )
    assert reopened.spent() == 2.0 and reopened.remaining() == 8.0
    lines = (tmp_path / "budget.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["epsilon"] == "0.5" and json.loads(lines[0])["v"] == 1


def test_an_empty_ledger(tmp_path):
    ledger = BudgetLedger(tmp_path / "new", 3)
    assert ledger.spent() == 0.0 and ledger.remaining() == 3.0 and ledger.entries() == ()
    assert ledger.total_epsilon == 3.0


def _charge_once(folder: str, n: int, start, results) -> None:  # type: ignore[no-untyped-def]
    """Child: wait for the others, then try to spend 0.5."""
    start.wait(timeout=30)
    try:
        BudgetLedger(folder, 2.0).charge(0.5, f"q{n}", f"member{n % 2}")
        results.put("answered")
    except PolicyRefusal as exc:
        results.put(exc.rule)


def test_eight_racing_queries_against_a_budget_for_four_answer_exactly_four(tmp_path):
    ctx = mp.get_context("fork")
    start, results = ctx.Barrier(8), ctx.Queue()
    procs = [
        ctx.Process(target=_charge_once, args=(str(tmp_path), n, start, results)) for n in range(8)
    ]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert outcomes == ["answered"] * 4 + ["privacy_budget"] * 4
    ledger = BudgetLedger(tmp_path, 2.0)
    assert ledger.spent() == 2.0
    assert [c.seq for c in ledger.entries()] == [1, 2, 3, 4]


def _charge_then_hang(folder: str, charged) -> None:  # type: ignore[no-untyped-def]
    """Child: charge, say so, then wait to be killed before it can answer."""
    BudgetLedger(folder, 1.0).charge(0.5, "doomed", "brand")
    charged.send(True)
    signal.pause()


def _charge_then_exit(folder: str) -> None:
    """Child: charge and die at once (no cleanup, no flush of anything else)."""
    BudgetLedger(folder, 1.0).charge(0.5, "doomed", "brand")
    os._exit(9)


def test_a_process_killed_after_charging_leaves_the_budget_charged(tmp_path):
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_charge_then_hang, args=(str(tmp_path), child))
    proc.start()
    assert parent.recv()
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    exiting = ctx.Process(target=_charge_then_exit, args=(str(tmp_path),))
    exiting.start()
    exiting.join(timeout=30)
    assert exiting.exitcode == 9
    ledger = BudgetLedger(tmp_path, 1.0)
    assert ledger.spent() == 1.0
    with pytest.raises(PolicyRefusal):
        ledger.charge(0.5, "after", "brand")


def test_a_torn_last_line_fails_closed(tmp_path):
    ledger = BudgetLedger(tmp_path, 10)
    ledger.charge(0.5, "q1", "airline")
    with open(tmp_path / "budget.jsonl", "ab") as f:
        f.write(b'{"v": 1, "seq": 2, "epsi')  # a crash in the middle of writing a charge
    for read in (ledger.spent, ledger.remaining, ledger.entries):
        with pytest.raises(PolicyRefusal) as refused:
            read()
        assert refused.value.rule == "privacy_budget"
        assert "unreadable at line 2" in str(refused.value)
    with pytest.raises(PolicyRefusal):
        ledger.charge(0.5, "q2", "airline")


def test_a_complete_last_line_missing_its_newline_still_counts(tmp_path):
    ledger = BudgetLedger(tmp_path, 10)
    ledger.charge(0.5, "q1", "airline")
    ledger.charge(0.25, "q2", "airline")
    path = tmp_path / "budget.jsonl"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert ledger.spent() == 0.75
    ledger.charge(1, "q3", "brand")
    assert [c.seq for c in ledger.entries()] == [1, 2, 3]
    assert ledger.spent() == 1.75


@pytest.mark.parametrize(
    "damage",
    [
        lambda lines: [lines[0], b"garbage", lines[1]],
        lambda lines: [lines[1]],  # the first entry deleted
        lambda lines: [lines[1], lines[0]],  # reordered
        lambda lines: [lines[0], lines[1].replace(b'"0.5"', b'"-0.5"')],
        lambda lines: [lines[0], lines[1].replace(b'"v": 1', b'"v": 2')],
        lambda lines: [lines[0], b"", lines[1]],
    ],
)
def test_damaged_ledgers_fail_closed(tmp_path, damage):
    ledger = BudgetLedger(tmp_path, 10)
    ledger.charge(0.5, "q1", "airline")
    ledger.charge(0.5, "q2", "airline")
    path = tmp_path / "budget.jsonl"
    path.write_bytes(b"\n".join(damage(path.read_bytes().splitlines())) + b"\n")
    with pytest.raises(PolicyRefusal) as refused:
        ledger.charge(0.5, "q3", "airline")
    assert refused.value.rule == "privacy_budget"


def test_exact_epsilon_and_its_text():
    assert exact_epsilon(0.1) == Fraction(1, 10)
    assert exact_epsilon("2.5") == Fraction(5, 2)
    assert decimal_text(Fraction(10)) == "10"
    assert decimal_text(Fraction(3, 40)) == "0.075"
    assert decimal_text(Fraction(1, 3)) == "1/3"
    for bad in (0, -1, float("inf"), float("nan"), "abc", True, Decimal("Infinity")):
        with pytest.raises(ValueError):
            exact_epsilon(bad)  # type: ignore[arg-type]
