"""The files a server keeps: uploaded token files and the versions of each table's policy.

Uploads are streamed to a temporary file beside the table's token file (`.cleanroom-upload-*`,
mode 0600), hashed on the way, checked against the collaboration, flushed to disk, then renamed
over the previous version: a crash at any point leaves the previous table whole (a restarted
server removes the leftovers). A policy is checked, renamed into place, then copied into its
history, `.cleanroom-server/policies/TABLE/vNNNN.toml`, next to the collaboration file.

Every check says what is wrong in terms of the table, never of a temporary file, and never
repeats a value from the file beyond column names and short fingerprints.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cleanroom.config import Policy, Roster
from protocols import (
    PROTOCOL_HMAC,
    PROTOCOL_PSI,
    ConfigError,
    InputError,
    Manifest,
    ManifestMismatch,
    fsync_path,
    read_manifest,
)

UPLOAD_PREFIX = ".cleanroom-upload-"
STATE_DIR = ".cleanroom-server"
DEFAULT_MAX_UPLOAD = 4 << 30
MAX_POLICY_BYTES = 1 << 16


class TooLarge(Exception):
    """An upload went over the size cap (the endpoint answers 413)."""


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fsync_path(folder)


def remove_stale_uploads(roster: Roster) -> int:
    """Remove what a server killed mid-upload left behind; return how many files."""
    removed = 0
    folders = {t.tokens.parent for t in roster.tables.values()}
    folders |= {t.policy_path.parent for t in roster.tables.values()}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith(UPLOAD_PREFIX) and path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
    return removed


class Upload:
    """A token file being received: written beside its target, hashed, size-capped."""

    def __init__(self, target: Path, *, table: str, max_bytes: int) -> None:
        self.target, self.max_bytes = target, max_bytes
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{UPLOAD_PREFIX}{table}-", suffix=".part",
                                   dir=target.parent)
        self.path = Path(tmp)
        self._fh = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def __repr__(self) -> str:
        return f"Upload({self.target.name!r}, size={self.size})"

    def write(self, chunk: bytes) -> None:
        """Append a chunk; TooLarge once the file would exceed the cap."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge
        self._hash.update(chunk)
        self._fh.write(chunk)

    def finish(self) -> bytes:
        """Flush the file to disk; return the SHA-256 of everything written."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return self._hash.digest()

    def commit(self) -> None:
        """Rename the received file over the table's token file (atomic), durably."""
        os.chmod(self.path, 0o640)
        os.replace(self.path, self.target)
        _fsync_dir(self.target.parent)

    def discard(self) -> None:
        """Remove the temporary file (after a refusal or an error)."""
        with contextlib.suppress(OSError):
            self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _other_manifests(roster: Roster, table: str) -> dict[str, Manifest]:
    out = {}
    for name, entry in roster.tables.items():
        if name != table and entry.tokens.is_file():
            with contextlib.suppress(InputError):
                out[name] = read_manifest(entry.tokens)
    return out


def check_tokens(roster: Roster, table: str, path: Path) -> Manifest:
    """Check a received token file for `table` against the collaboration; return its manifest.

    Refuses (ManifestMismatch, InputError or ConfigError, naming the table) a file made for
    another collaboration, by another party than the table's owner, with an unknown protocol,
    with another secret, protocol or profile than the tables already there, whose row count
    disagrees with its manifest, or that its owner's policy does not fit.
    """
    entry = roster.tables[table]
    what = f"the file uploaded for table {table!r}"
    try:
        manifest = read_manifest(path)
    except InputError as exc:
        raise InputError(f"{what} is not a token file ({exc.detail})") from None
    if manifest.collaboration_id != roster.id:
        raise ManifestMismatch(f"{what} was made for another collaboration (id "
                               f"{manifest.collaboration_id[:8]}… ≠ {roster.id[:8]}…)")
    if manifest.party != entry.owner:
        raise ManifestMismatch(f"{what} was made by party {manifest.party!r}, not by the "
                               f"table's owner {entry.owner!r}")
    if manifest.protocol not in (PROTOCOL_HMAC, PROTOCOL_PSI):
        raise ManifestMismatch(f"{what} uses an unknown protocol")
    for other, m in _other_manifests(roster, table).items():
        if m.protocol != manifest.protocol:
            raise ManifestMismatch(f"{what} uses protocol {manifest.protocol} but table "
                                   f"{other!r} uses {m.protocol}: they would never match")
        if m.key_fingerprint != manifest.key_fingerprint:
            raise ManifestMismatch(
                f"{what} was made with a different secret than table {other!r} (fingerprint "
                f"{manifest.key_fingerprint[:4]}… ≠ {m.key_fingerprint[:4]}…)")
        if m.profile != manifest.profile:
            raise ManifestMismatch(f"{what} was normalized with profile {manifest.profile!r} "
                                   f"but table {other!r} with {m.profile!r}")
        for rule in roster.matching.rules:
            mine, theirs = manifest.identifiers.get(rule), m.identifiers.get(rule)
            if mine and theirs and mine.get("kinds") != theirs.get("kinds"):
                raise ManifestMismatch(f"token column {rule!r} of {what} holds other "
                                       f"identifiers than table {other!r}'s")
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid):
        raise InputError(f"{what} is not a readable Parquet file") from None
    if rows != manifest.row_count:
        raise ManifestMismatch(f"{what} has {rows} rows but its manifest says "
                               f"{manifest.row_count}: altered after tokenizing")
    for col in manifest.identifiers:
        typ = schema.field(col).type if col in schema.names else None
        if typ is None or not (pa.types.is_binary(typ) or pa.types.is_fixed_size_binary(typ)
                               or pa.types.is_large_binary(typ)):
            raise ManifestMismatch(f"token column {col!r} of {what} is missing or not binary")
    if entry.policy_path.is_file():
        Policy.from_path(entry.policy_path).check_against(manifest, roster.members)
    return manifest


# -- policies ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyVersion:
    """One version of a table's policy in the history."""

    version: int
    path: Path
    sha256: str


def history_dir(roster: Roster, table: str) -> Path:
    """Where the versions of `table`'s policy are kept."""
    return roster.path.parent / STATE_DIR / "policies" / table


def policy_versions(roster: Roster, table: str) -> list[PolicyVersion]:
    """Every kept version of `table`'s policy, oldest first."""
    folder = history_dir(roster, table)
    out = []
    if folder.is_dir():
        for path in sorted(folder.glob("v*.toml")):
            stem = path.stem[1:]
            if stem.isdigit():
                out.append(PolicyVersion(int(stem), path,
                                         hashlib.sha256(path.read_bytes()).hexdigest()))
    return out


def check_policy(roster: Roster, table: str, text: bytes) -> Policy:
    """Validate a new policy for `table`: TOML, the policy rules, its token file (if there)
    and the matching rules (each still a join column of some table)."""
    entry = roster.tables[table]
    name = entry.policy_path.name
    if len(text) > MAX_POLICY_BYTES:
        raise ConfigError("too large for a policy file", file=name)
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file=name) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=name) from None
    policy = Policy.from_dict(data, file=name)
    if entry.tokens.is_file():
        policy.check_against(read_manifest(entry.tokens), roster.members)
    joins = {table: set(policy.join_columns)}
    for other, e in roster.tables.items():
        if other != table and e.policy_path.is_file():
            with contextlib.suppress(ConfigError):
                joins[other] = set(Policy.from_path(e.policy_path).join_columns)
    complete = len(joins) == len(roster.tables)
    for rule in roster.matching.rules:
        if complete and not any(rule in j for j in joins.values()):
            raise ConfigError(f"matching rule {rule!r} would no longer be a join column of any "
                              "table", file=name, key="join_columns")
    return policy


@contextlib.contextmanager
def _written(path: Path, data: bytes) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{UPLOAD_PREFIX}{path.stem}-", suffix=".part",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        yield Path(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def put_policy(roster: Roster, table: str, text: bytes) -> PolicyVersion:
    """Put a checked policy in force for `table` and keep it as the next version.

    The policy in force before the first put is kept as version 1 first, so the history
    starts where the collaboration did. Call under the server's write lock.
    """
    entry = roster.tables[table]
    folder = history_dir(roster, table)
    versions = policy_versions(roster, table)
    if entry.policy_path.is_file():
        current = entry.policy_path.read_bytes()
        digest = hashlib.sha256(current).hexdigest()
        if not versions or versions[-1].sha256 != digest:
            n = versions[-1].version + 1 if versions else 1
            with _written(folder / f"v{n:04d}.toml", current):
                pass
            versions.append(PolicyVersion(n, folder / f"v{n:04d}.toml", digest))
    with _written(entry.policy_path, text):
        pass
    n = versions[-1].version + 1 if versions else 1
    kept = folder / f"v{n:04d}.toml"
    with _written(kept, text):
        pass
    return PolicyVersion(n, kept, hashlib.sha256(text).hexdigest())
