"""Resolution of records into people: probabilistic matching on tokens, local dedupe.

    resolve_probabilistic(con, table, key=, source=, fields=, options=) -> ProbabilisticResult
        Fellegi-Sunter over exact and fuzzy-form token columns (Splink, DuckDB), within and
        across sources; clusters, the model's weights per field level, re-clustering.
    dedupe(columns, options=) -> DedupeResult
        one party's own file, in the clear: a person_id per row and a summary.
"""

from ._dedupe import DedupeOptions, DedupeResult, DedupeSummary, dedupe
from ._probabilistic import (
    DEFAULT_BLOCKING,
    STRONG_IDENTIFIERS,
    FieldSpec,
    ProbabilisticOptions,
    ProbabilisticResult,
    fields_from_columns,
    resolve_probabilistic,
)
from ._splink import LevelWeight, connected_components

__all__ = [
    "DEFAULT_BLOCKING",
    "STRONG_IDENTIFIERS",
    "DedupeOptions",
    "DedupeResult",
    "DedupeSummary",
    "FieldSpec",
    "LevelWeight",
    "ProbabilisticOptions",
    "ProbabilisticResult",
    "connected_components",
    "dedupe",
    "fields_from_columns",
    "resolve_probabilistic",
]
