"""Difference checks over several tables at once: one memory per table, one lock over all.

A row of an answer stands for people who have records in one or more tables; the row is given
to the guard as one people set per table (the stable ids that table's records give its
people). Each table has its own `DifferenceMemory`, and a row is withheld if, in ANY of its
tables, its people differ from a remembered row's (or an earlier row's of the same result) by
1 to minimum−1.

Why per table: a data owner controls only its own table. If it re-uploads that table with one
customer dropped and, say, the records of fifty other people rewritten so that their ids in
its table change, the sets in its own table differ by a hundred — but in every other table the
ids are untouched and the sets differ by exactly the one dropped person, so the row is still
withheld.

The check and the remembering happen under one exclusive lock over all tables, so racing
answers can never slip past each other and a row is remembered in every table or in none.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

from protocols import CleanroomBug

from ._difference import DifferenceMemory, DifferenceVerdict
from ._files import locked
from ._people import PeopleSet

RowPeople = Mapping[str, PeopleSet]  # table name -> the row's people as that table knows them


class DifferenceGuard:
    """The difference-check memories of a collaboration, one folder per table under `folder`."""

    def __init__(self, folder: str | PathLike[str]) -> None:
        self.folder = Path(folder)
        self._lock = self.folder / "lock"
        self._memories: dict[str, DifferenceMemory] = {}
        self._threads = threading.Lock()

    def memory(self, table: str) -> DifferenceMemory:
        """The memory of one table (created on first use)."""
        if not table or "/" in table or table.startswith("."):
            raise CleanroomBug(f"not a table name for a memory folder: {table!r}")
        if table not in self._memories:
            self._memories[table] = DifferenceMemory(self.folder / table)
        return self._memories[table]

    def check_and_remember(self, rows: Sequence[RowPeople], minimum: int) -> DifferenceVerdict:
        """Withhold every row that differs by 1..minimum−1 in some table; remember the rest."""
        with self._threads, locked(self._lock, exclusive=True):
            tables = sorted({t for row in rows for t in row})
            withheld: set[int] = set()
            for table in tables:
                index = [i for i, row in enumerate(rows) if table in row]
                verdict = self.memory(table).check([rows[i][table] for i in index], minimum)
                withheld.update(index[j] for j in verdict.suppressed)
            accepted = [i for i in range(len(rows)) if i not in withheld]
            for table in tables:
                index = [i for i in accepted if table in rows[i]]
                verdict = self.memory(table).check_and_remember(
                    [rows[i][table] for i in index], minimum)
                if verdict.suppressed:  # fewer rows can only conflict less; under the lock
                    raise CleanroomBug("a row accepted by the dry run was withheld")
        return DifferenceVerdict(tuple(accepted), tuple(sorted(withheld)))
