"""What many answers may reveal, and the two ways cleanroom limits it.

Threshold mode (default): `DifferenceMemory` remembers the people behind every answered row and
withholds a row whose people differ from an answered row's by 1 to minimum−1.

Differential mode: every figure gets OpenDP noise (`noisy_count`, `noisy_sum`, `noisy_avg`,
groups through `release_partitions`), and every query first spends ε from the collaboration's
`BudgetLedger`, durably, or is refused with rule `privacy_budget`.

`PrivacySettings.from_dict` reads the `[privacy]` table of collaboration.toml.
"""

from ._difference import DifferenceMemory, DifferenceVerdict
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
    "DifferenceMemory",
    "DifferenceVerdict",
    "NoisyValue",
    "PeopleSet",
    "PrivacySettings",
    "average_of",
    "noisy_avg",
    "noisy_count",
    "noisy_counts",
    "noisy_sum",
    "noisy_sums",
    "partition_threshold",
    "people_set",
    "release_partitions",
    "sum_sensitivity",
]
