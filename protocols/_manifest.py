"""The token file's manifest and the Parquet container that carries it.

A token file is one Parquet file: `row_id` (random, shuffled), one 32-byte binary column per
identifier kind or match key, the attribute columns the party chose, and this manifest as
JSON under the Parquet key-value metadata key `cleanroom`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ._errors import InputError
from ._io import atomic_path

FORMAT_VERSION = 1
#: version 2 = version 1 plus derived-form token columns (`tokenize --fuzzy`), listed in the
#: manifest's `fuzzy` entry; a file without them is still written as version 1
FUZZY_FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (FORMAT_VERSION, FUZZY_FORMAT_VERSION)
MANIFEST_METADATA_KEY = b"cleanroom"  # the Parquet key-value metadata key of the manifest
PROTOCOL_HMAC = "hmac-sha256/v1"
PROTOCOL_PSI = "ecdh-x25519-ell2/v1"
PROTOCOLS = (PROTOCOL_HMAC, PROTOCOL_PSI)


@dataclass(frozen=True)
class Manifest:
    """What a token file says about itself. Never holds a secret or a raw identifier.

    identifiers: token column -> {"kinds": [kind, ...]} (one kind, or the parts of a match key);
                 a derived-form column also has "form" and "of" (the column it derives from)
    attributes:  attribute column -> Arrow type as text
    quality:     token column -> {"valid": n, "missing": n, "invalid": {reason: n}}
    fuzzy:       (format version 2 only) {"version": n, "forms": {column: [form, ...]}}: the
                 derived forms of each column, strongest first, and the version of their rules
    """

    party: str
    collaboration_id: str
    protocol: str
    key_fingerprint: str
    profile: str
    region: str
    row_count: int
    identifiers: dict[str, dict[str, Any]]
    attributes: dict[str, str]
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    canary: str | None = None
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    fuzzy: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        forms = any("form" in spec for spec in self.identifiers.values())
        if forms != bool(self.fuzzy) or forms != (self.format_version == FUZZY_FORMAT_VERSION):
            raise InputError(f"token file format version {self.format_version} does not match "
                             "its derived-form columns")

    def to_json(self) -> str:
        doc = asdict(self)
        if not self.fuzzy:
            del doc["fuzzy"]  # version 1 files stay exactly as version 1 wrote them
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, *, file: str | None = None) -> Manifest:
        try:
            data = json.loads(text)
            if data.get("format_version") not in READABLE_FORMAT_VERSIONS:
                raise InputError(
                    f"unsupported token file format version {data.get('format_version')!r}",
                    file=file,
                )
            manifest = cls(**data)
        except InputError as exc:
            if exc.file is None and file is not None:
                raise InputError(exc.detail, file=file) from None
            raise
        except (ValueError, TypeError) as exc:
            raise InputError(f"token file manifest is malformed ({type(exc).__name__})",
                             file=file) from None
        return manifest


def write_token_file(table: pa.Table, manifest: Manifest, path: str | os.PathLike[str]) -> None:
    """Write `table` with `manifest` in its metadata, atomically."""
    meta = dict(table.schema.metadata or {})
    meta[MANIFEST_METADATA_KEY] = manifest.to_json().encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path, 0o644) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read the manifest of a token file without reading its rows."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise InputError("file not found", file=name)
    try:
        meta = pq.read_schema(name).metadata or {}
    except (pa.ArrowInvalid, OSError):
        raise InputError("not a Parquet token file", file=name) from None
    if MANIFEST_METADATA_KEY not in meta:
        raise InputError("not a cleanroom token file (no 'cleanroom' manifest)", file=name)
    return Manifest.from_json(meta[MANIFEST_METADATA_KEY], file=name)
