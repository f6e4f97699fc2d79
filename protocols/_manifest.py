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
MANIFEST_METADATA_KEY = b"cleanroom"  # the Parquet key-value metadata key of the manifest
PROTOCOL_HMAC = "hmac-sha256/v1"
PROTOCOL_PSI = "ecdh-x25519-ell2/v1"
PROTOCOLS = (PROTOCOL_HMAC, PROTOCOL_PSI)


@dataclass(frozen=True)
class Manifest:
    """What a token file says about itself. Never holds a secret or a raw identifier.

    identifiers: token column -> {"kinds": [kind, ...]} (one kind, or the parts of a match key)
    attributes:  attribute column -> Arrow type as text
    quality:     token column -> {"valid": n, "missing": n, "invalid": {reason: n}}
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

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, *, file: str | None = None) -> Manifest:
        try:
            data = json.loads(text)
            if data.get("format_version") != FORMAT_VERSION:
                raise InputError(
                    f"unsupported token file format version {data.get('format_version')!r}",
                    file=file,
                )
            return cls(**data)
        except InputError:
            raise
        except (ValueError, TypeError) as exc:
            raise InputError(f"token file manifest is malformed ({type(exc).__name__})",
                             file=file) from None


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
