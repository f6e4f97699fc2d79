"""What many answers may reveal, and the two ways cleanroom limits it.

Threshold mode (default): `DifferenceMemory` remembers the people behind every answered row and
withholds a row whose people differ from an answered row's by 1 to minimum−1.

Differential mode: every figure gets OpenDP noise (`noisy_count`, `noisy_sum`, `noisy_avg`,
groups through `release_partitions`), and every query first spends ε from the collaboration's
`BudgetLedger`, durably, or is refused with rule `privacy_budget`.

`DifferenceGuard` keeps one memory per table and checks a row's people as each table knows
them. `PrivacySettings.from_dict` reads the `[privacy]` table of collaboration.toml;
`file_lock` and `write_durably` are the locked, fsync'd file primitives the engine's privacy
state shares with the memories and the ledger.
"""

from ._difference import DifferenceMemory, DifferenceVerdict
from ._files import locked as file_lock
from ._files import write_durably
from ._guard import DifferenceGuard, RowPeople
from ._ledger import BudgetLedger, Charge
from ._noise import (
    NoisyValue,
    average_of,
    noisy_avg,
    noisy_count,
    noisy_counts,
    noisy_sum,
    noisy_sums,
    sum_sensitivity,
)
from ._partitions import DEFAULT_DELTA, partition_threshold, release_partitions
from ._people import PeopleSet, people_set
from ._settings import PrivacySettings

__all__ = [
    "BudgetLedger",
    "Charge",
    "DEFAULT_DELTA",
    "DifferenceGuard",
    "DifferenceMemory",
    "DifferenceVerdict",
    "NoisyValue",
    "PeopleSet",
    "PrivacySettings",
    "RowPeople",
    "average_of",
    "file_lock",
    "noisy_avg",
    "noisy_count",
    "noisy_counts",
    "noisy_sum",
    "noisy_sums",
    "partition_threshold",
    "people_set",
    "release_partitions",
    "sum_sensitivity",
    "write_durably",
]
