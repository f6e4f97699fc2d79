"""InvalidIdentifier: the one error a normalizer raises for a value it cannot normalize."""

from __future__ import annotations


class InvalidIdentifier(ValueError):
    """A value that cannot be normalized: `.kind`, a machine-readable `.reason`, never the value."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind, self.reason = kind, reason
        super().__init__(f"invalid {kind}: {reason}")

    def __repr__(self) -> str:
        return f"InvalidIdentifier(kind={self.kind!r}, reason={self.reason!r})"

    def __reduce__(self) -> tuple[type[InvalidIdentifier], tuple[str, str]]:  # picklable
        return (type(self), (self.kind, self.reason))
