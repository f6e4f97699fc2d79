"""The ε budget of a collaboration: an append-only, fsync'd, lock-guarded ledger of charges.

Protocol: under an exclusive lock, read every entry, refuse (rule `privacy_budget`) if the new
charge would take the total past the budget, else append one JSON line, fsync it, release
the lock — and only then compute the answer. So:

- Concurrency: charges are serialized by the lock; 8 racing queries against a budget for 4
  get exactly 4 charges.
- Crashes: a process that dies after `charge` returned has its charge on disk, so the
  budget stays charged whether or not it answered; it can never be under-charged.
- Torn or corrupted lines: a charge is acknowledged only once its whole line, newline
  included, is fsync'd. A last line that is a complete entry missing only its newline still
  counts. Anything else unreadable (a torn write from a crash inside `charge`, a damaged or
  edited file, entries missing or out of order) makes the ledger refuse every charge and
  every reading with rule `privacy_budget`, naming the line: the ledger can no longer prove
  what was spent, so it fails closed until an operator restores it.
- Exactness: ε values are kept as exact fractions of the decimal text they were given as
  (0.1 is 1/10), so 20 × 0.5 spends exactly 10 and 100 × 0.1 exactly 10.

Line format: {"v": 1, "seq": n, "epsilon": "0.5", "query_id": ..., "member": ..., "at": ...}.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from fractions import Fraction
from os import PathLike
from pathlib import Path

from protocols import PolicyRefusal, fsync_path

from ._files import locked

LEDGER_VERSION = 1
EpsilonLike = float | int | str | Decimal | Fraction


@dataclass(frozen=True)
class Charge:
    """One recorded spend: its sequence number, ε, who asked what, when, and the total after."""

    seq: int
    epsilon: float
    query_id: str
    member: str
    at: str
    spent_after: float


@dataclass(frozen=True)
class _Line:
    """One parsed ledger line, with its ε exact."""

    seq: int
    amount: Fraction
    query_id: str
    member: str
    at: str


class BudgetLedger:
    """A collaboration's ε budget, shared by all its members, kept in a folder of its own."""

    FILE = "budget.jsonl"

    def __init__(self, folder: str | PathLike[str], total_epsilon: EpsilonLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / self.FILE
        self._lock = self.folder / "budget.lock"
        self._total = exact_epsilon(total_epsilon)

    @property
    def total_epsilon(self) -> float:
        """The budget for the collaboration's lifetime."""
        return float(self._total)

    def charge(
        self,
        epsilon: EpsilonLike,
        query_id: str,
        member: str,
        *,
        now: datetime | None = None,
    ) -> Charge:
        """Durably record a spend of ε before the answer is computed, or refuse.

        Raises PolicyRefusal (rule `privacy_budget`) if it would overspend the budget.
        """
        amount = exact_epsilon(epsilon)
        at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        with locked(self._lock, exclusive=True):
            lines, needs_newline = self._read()
            spent = sum((line.amount for line in lines), Fraction(0))
            if spent + amount > self._total:
                raise PolicyRefusal(
                    "privacy_budget",
                    f"this query needs ε={decimal_text(amount)} but only "
                    f"{decimal_text(self._total - spent)} of the collaboration's "
                    f"ε={decimal_text(self._total)} remains",
                )
            seq = len(lines) + 1
            entry = {
                "v": LEDGER_VERSION,
                "seq": seq,
                "epsilon": decimal_text(amount),
                "query_id": str(query_id),
                "member": str(member),
                "at": at,
            }
            data = json.dumps(entry, ensure_ascii=False, sort_keys=False) + "\n"
            self._append((b"\n" if needs_newline else b"") + data.encode("utf-8"))
        return Charge(seq, float(amount), str(query_id), str(member), at, float(spent + amount))

    def spent(self) -> float:
        """ε spent so far by all members together."""
        return float(self._spent())

    def remaining(self) -> float:
        """ε left to spend (exact difference, then rounded to a float once)."""
        return float(self._total - self._spent())

    def entries(self) -> tuple[Charge, ...]:
        """Every recorded charge, oldest first."""
        with locked(self._lock, exclusive=False):
            lines, _ = self._read()
        out, running = [], Fraction(0)
        for line in lines:
            running += line.amount
            out.append(
                Charge(
                    line.seq,
                    float(line.amount),
                    line.query_id,
                    line.member,
                    line.at,
                    float(running),
                )
            )
        return tuple(out)

    def _spent(self) -> Fraction:
        """Exact sum of every charge, read under a shared lock."""
        with locked(self._lock, exclusive=False):
            lines, _ = self._read()
        return sum((line.amount for line in lines), Fraction(0))

    def _read(self) -> tuple[list[_Line], bool]:
        """Parse every entry; also say whether the file lacks its final newline."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return [], False
        pieces = data.split(b"\n")
        needs_newline = pieces[-1] != b""
        if not needs_newline:
            pieces.pop()
        lines = [self._parse(piece, number) for number, piece in enumerate(pieces, start=1)]
        return lines, needs_newline

    def _parse(self, raw: bytes, number: int) -> _Line:
        """One entry, or a refusal naming the line that cannot be trusted."""
        try:
            entry = json.loads(raw.decode("utf-8"))
            valid = (
                isinstance(entry, dict)
                and entry.get("v") == LEDGER_VERSION
                and entry.get("seq") == number
                and all(isinstance(entry.get(k), str) for k in ("query_id", "member", "at"))
                and isinstance(entry.get("epsilon"), str)
            )
            if valid:
                return _Line(
                    number,
                    exact_epsilon(entry["epsilon"]),
                    entry["query_id"],
                    entry["member"],
                    entry["at"],
                )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            pass
        raise PolicyRefusal(
            "privacy_budget",
            f"the budget ledger {self.FILE} is unreadable at line {number}; it cannot "
            "prove what was spent, so nothing is charged until it is restored",
        )

    def _append(self, data: bytes) -> None:
        """Append and fsync (and fsync the folder when the file is new)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_path(self.folder)


def exact_epsilon(value: EpsilonLike) -> Fraction:
    """ε as an exact fraction of its shortest decimal text (0.1 → 1/10); positive, finite."""
    if isinstance(value, bool):
        raise ValueError(f"epsilon must be a number, not {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"epsilon must be finite, not {value!r}")
        value = repr(value)
    try:
        exact = Fraction(value)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError) as exc:
        raise ValueError(f"epsilon must be a number, not {value!r}") from exc
    if exact <= 0:
        raise ValueError(f"epsilon must be positive, not {value!r}")
    return exact


def decimal_text(value: Fraction) -> str:
    """Exact decimal text when the fraction has one (0.5, 10), else 'p/q'."""
    den = value.denominator
    for prime in (2, 5):
        while den % prime == 0:
            den //= prime
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    with localcontext() as ctx:
        ctx.prec = 1000
        text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
