"""Collaboration and policy files: parse, validate and write them.

`Collaboration.from_path` reads a collaboration file and each table's policy;
`Roster.from_path` only what the file declares (members and their identities, auditors, the
operator, tables), opening no token file. `Policy` is one owner's rules, `EffectivePolicy` what
applies where several tables meet. `toml_text` and `write_toml` are the one writer of these
files (the demo, tests and benches all use it).
"""

from ._collaboration import (
    DEFAULT_MAX_RECORDS_PER_TOKEN,
    Auditor,
    Collaboration,
    Matching,
    Member,
    Roster,
    Table,
    TableEntry,
)
from ._names import NAME_PATTERN, valid_name
from ._policy import (
    AGGREGATE_FUNCTIONS,
    ENTITY_COLUMN,
    AggregateColumns,
    EffectivePolicy,
    OutputConstraint,
    Policy,
    read_toml,
)
from ._toml import toml_text, write_toml

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "DEFAULT_MAX_RECORDS_PER_TOKEN",
    "ENTITY_COLUMN",
    "NAME_PATTERN",
    "AggregateColumns",
    "Auditor",
    "Collaboration",
    "EffectivePolicy",
    "Matching",
    "Member",
    "OutputConstraint",
    "Policy",
    "Roster",
    "Table",
    "TableEntry",
    "read_toml",
    "toml_text",
    "valid_name",
    "write_toml",
]
