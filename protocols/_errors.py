"""The one exception tree of cleanroom.

    CleanroomError                 base of every error a user can cause
    ├── InputError                 a bad input file: names file, row, column
    ├── ConfigError                a bad collaboration / policy / schema file: names file, key
    ├── KeyMaterialError           a secret or key file unreadable, wrong mode, wrong version
    ├── ManifestMismatch           token files that cannot be matched together: says what differs
    ├── PolicyRefusal              a query or analysis refused: names the rule (exit status 3)
    ├── AuditError                 the audit log fails verification
    └── DecryptionError            wrong key or tampered ciphertext; deliberately says nothing more

    CleanroomBug                   an internal error (not a user's mistake); not a CleanroomError

Messages never contain raw identifiers, tokens or secrets: at most a file name, a row number,
a column name and a machine-readable reason.
"""

from __future__ import annotations


class CleanroomError(Exception):
    """Base class of every error caused by input, configuration or policy."""

    exit_code = 1


class InputError(CleanroomError):
    """A bad input file; the message names the file, and the row and column where known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file, self.row, self.column, self.detail = file, row, column, message
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ConfigError(CleanroomError):
    """A bad collaboration, policy or schema file; names the file and the key."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file, self.key, self.detail = file, key, message
        where = ": ".join(p for p in (str(file) if file else None, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class KeyMaterialError(CleanroomError):
    """A secret or key file that cannot be used (missing, unreadable, wrong mode or version)."""


class ManifestMismatch(CleanroomError):
    """Token files that cannot be matched together; the message says what differs."""


class PolicyRefusal(CleanroomError):
    """A query or analysis refused by a rule; `rule` names the rule that refused."""

    exit_code = 3

    def __init__(self, rule: str, message: str, *, rules: list[str] | None = None) -> None:
        self.rule, self.detail = rule, message
        self.rules = rules or [rule]
        super().__init__(f"refused by rule {rule}: {message}")


class AuditError(CleanroomError):
    """The audit log failed verification (edited, deleted or reordered entries)."""


class DecryptionError(CleanroomError):
    """Wrong key or tampered data. Deliberately carries no detail (no oracle)."""

    def __init__(self, message: str = "decryption failed: wrong key or tampered data") -> None:
        super().__init__(message)


class CleanroomBug(Exception):
    """An internal error: a bug in cleanroom, not a mistake of the user."""
