"""The `[privacy]` table of collaboration.toml, validated into a frozen PrivacySettings.

    [privacy]                      # absent = threshold mode
    mode = "differential"          # or "threshold"
    epsilon = 10.0                 # the collaboration's total budget, all members together
    epsilon_per_query = 0.5        # spent by each accepted query or analysis

Errors are ConfigError naming the key (`privacy.epsilon`), and the file when known.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from protocols import ConfigError

from ._ledger import exact_epsilon

Mode = Literal["threshold", "differential"]
_MODES = ("threshold", "differential")
_KEYS = ("mode", "epsilon", "epsilon_per_query")


@dataclass(frozen=True)
class PrivacySettings:
    """Which privacy mode a collaboration runs in and, in differential mode, its ε budget."""

    mode: Mode = "threshold"
    epsilon: float | None = None
    epsilon_per_query: float | None = None

    def __post_init__(self) -> None:
        """Refuse settings that cannot be run: unknown mode, missing or impossible ε."""
        if self.mode not in _MODES:
            raise ConfigError('must be "threshold" or "differential"', key="privacy.mode")
        values = {"epsilon": self.epsilon, "epsilon_per_query": self.epsilon_per_query}
        if self.mode == "threshold":
            for name, value in values.items():
                if value is not None:
                    raise ConfigError(
                        'applies only with mode = "differential"', key=f"privacy.{name}"
                    )
            return
        exact = {}
        for name, value in values.items():
            if value is None:
                raise ConfigError('is required with mode = "differential"', key=f"privacy.{name}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"must be a number, not {value!r}", key=f"privacy.{name}")
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(
                    f"must be a positive finite number, not {value!r}", key=f"privacy.{name}"
                )
            object.__setattr__(self, name, float(value))
            exact[name] = exact_epsilon(float(value))
        if exact["epsilon_per_query"] > exact["epsilon"]:
            raise ConfigError(
                f"must not exceed epsilon ({self.epsilon_per_query} > {self.epsilon})",
                key="privacy.epsilon_per_query",
            )

    @classmethod
    def from_dict(
        cls, table: Mapping[str, Any] | None, *, file: str | None = None
    ) -> PrivacySettings:
        """Build from the parsed `[privacy]` table (None when the table is absent)."""
        try:
            if table is None:
                return cls()
            if not isinstance(table, Mapping):
                raise ConfigError("must be a table", key="privacy")
            unknown = sorted(set(table) - set(_KEYS))
            if unknown:
                raise ConfigError(
                    f"unknown key (allowed: {', '.join(_KEYS)})", key=f"privacy.{unknown[0]}"
                )
            mode = table.get("mode", "threshold")
            if not isinstance(mode, str):
                raise ConfigError(f"must be a string, not {mode!r}", key="privacy.mode")
            # __post_init__ refuses any mode but the two
            return cls(cast(Mode, mode), table.get("epsilon"), table.get("epsilon_per_query"))
        except ConfigError as exc:
            if file is None:
                raise
            raise ConfigError(exc.detail, file=file, key=exc.key) from None

    @property
    def differential(self) -> bool:
        """True when every figure gets noise and queries spend the ε budget."""
        return self.mode == "differential"

    @property
    def max_queries(self) -> int | None:
        """How many queries the whole budget pays for (exactly), or None in threshold mode."""
        if self.epsilon is None or self.epsilon_per_query is None:
            return None
        return math.floor(exact_epsilon(self.epsilon) / exact_epsilon(self.epsilon_per_query))
