"""The one exception tree of cleanroom.

    CleanroomError                 base of every error a user can cause
    ├── InputError                 a bad input file: names file, row, column
    ├── ConfigError                a bad collaboration / policy / schema file: names file, key
    ├── KeyMaterialError           a secret or key file unreadable, wrong mode, wrong version
    ├── ManifestMismatch           token files that cannot be matched together: says what differs
    ├── PolicyRefusal              a query or analysis refused: names the rule (exit status 3)
    ├── AuditError                 the audit log fails verification
    ├── DecryptionError            wrong key or tampered ciphertext; deliberately says nothing more
    ├── NotAuthenticated           a request whose signature proves no known identity (HTTP 401,
    │                              exit status 4); `reason`: one word of AUTH_REASONS, no more
    ├── NotAllowed                 a known identity asking for what its role does not allow
    │                              (HTTP 403, exit status 4): says which rule of roles refused
    └── ServerError                a clean-room server unreachable, not trusted, or answering
                                   outside the protocol (exit status 1)

    CleanroomBug                   an internal error (not a user's mistake); not a CleanroomError

Messages never contain raw identifiers, tokens or secrets: at most a file name, a row number,
a column name and a machine-readable reason.
"""

from __future__ import annotations

from typing import Literal, get_args


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


AuthReason = Literal[
    "missing_signature",   # no Signature / Signature-Input header
    "malformed_signature", # unparseable, several signatures, missing keyid/created/nonce/tag
    "missing_component",   # the signature does not cover @method, @path, @query, content-digest
    "unknown_key",         # keyid names no identity of this collaboration
    "bad_signature",       # the signature does not verify over this request
    "expired",             # `created` older than the maximum age, or `expires` passed
    "not_yet_valid",       # `created` further in the future than the allowed clock skew
    "replayed",            # this key's nonce was already seen inside the window
    "digest_mismatch",     # Content-Digest absent, malformed, or not the body's SHA-256
    "busy",                # the replay store is full of live nonces: refuse rather than forget
    "no_session",          # a console page without a valid session (or a used/expired link)
]
AUTH_REASONS: frozenset[str] = frozenset(get_args(AuthReason))


class NotAuthenticated(CleanroomError):
    """A request that does not prove a known identity; `reason` is a short machine word.

    The message never carries a header value, a key id, a nonce or a body byte.
    """

    exit_code = 4

    def __init__(self, reason: AuthReason) -> None:
        if reason not in AUTH_REASONS:
            raise CleanroomBug(f"unknown authentication failure reason {reason!r}")
        self.reason: AuthReason = reason
        super().__init__(f"not authenticated: {reason}")


class NotAllowed(CleanroomError):
    """A known identity asking for something its role does not allow (exit status 4).

    `rule` is a short machine word (e.g. "owner", "auditor", "member"); the message says in
    plain words what was refused and never echoes a value the caller sent.
    """

    exit_code = 4

    def __init__(self, rule: str, message: str) -> None:
        self.rule, self.detail = rule, message
        super().__init__(f"not allowed ({rule}): {message}")


class ServerError(CleanroomError):
    """A clean-room server that cannot be reached or trusted, or answered outside the
    protocol; the message names the server and what went wrong, never a key or a token."""


class CleanroomBug(Exception):
    """An internal error: a bug in cleanroom, not a mistake of the user."""
