"""Resolution of records into people: probabilistic matching on tokens, local dedupe.

    resolve_probabilistic(con, table, key=, source=, fields=, options=) -> ProbabilisticResult
        Fellegi-Sunter over exact and fuzzy-form token columns (Splink, DuckDB), within and
        across sources; clusters, the model's weights per field level, re-clustering.
    null_frequent_values(records, name, cap, per=) -> (records, values, rows)
        an Arrow column's values held by more than `cap` rows nulled (tokens too common).
    dedupe(columns, options=) -> DedupeResult
        one party's own records, in the clear: a person_id per row and a summary.
    dedupe_file(input, output, identifiers=, threshold=) -> DedupeReport
        the same on a CSV or Parquet extract (normalized first), written back with person_id.
"""

from ._dedupe import DedupeOptions, DedupeResult, DedupeSummary, dedupe
from ._dedupe_file import PERSON_COLUMN, DedupeReport, dedupe_file
from ._probabilistic import (
    DEFAULT_BLOCKING,
    STRONG_IDENTIFIERS,
    FieldSpec,
    ProbabilisticOptions,
    ProbabilisticResult,
    fields_from_columns,
    resolve_probabilistic,
)
from ._splink import LevelWeight, connected_components, null_frequent_values

__all__ = [
    "DEFAULT_BLOCKING",
    "DedupeOptions",
    "DedupeReport",
    "DedupeResult",
    "DedupeSummary",
    "FieldSpec",
    "LevelWeight",
    "PERSON_COLUMN",
    "ProbabilisticOptions",
    "ProbabilisticResult",
    "STRONG_IDENTIFIERS",
    "connected_components",
    "dedupe",
    "dedupe_file",
    "fields_from_columns",
    "null_frequent_values",
    "resolve_probabilistic",
]
