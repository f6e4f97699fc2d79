"""ECDH blinding over batches of values: X25519(key, hash_to_curve(value)) and its reblinding.

The PSI recipe (`protocols.psi_blind_file` and friends) runs these under a per-collaboration,
per-kind DST, with a canary and random stand-ins for missing values; called alone, they give
none of that.

Batches travel as one bytes object of 32-byte points laid end to end (a "blob"), which is what
a Parquet binary column holds, so a file step touches no per-value Python object beyond the
one each primitive call needs. Large batches are split into chunks run over worker processes,
one per core this process may run on (so a process pinned to one core runs in-line, with no
hand-off at all).

The scalar multiplication is libsodium's X25519 (PyNaCl's `crypto_scalarmult`): the function
of RFC 7748 that OpenSSL's X25519 key objects compute too, byte for byte, but one C call per
value with no key objects around it (measured about 15% faster per value). Key files stay
`cryptography` X25519 keys.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.bindings import crypto_scalarmult

from .._errors import ConfigError
from ._h2c import SUITE_RO, first_off_curve, hash_to_curve_u_many

POINT_BYTES = 32
_DST_PREFIX = b"cleanroom-psi-v1:"
PARALLEL_MIN_VALUES = 8_000  # below this, worker processes cost more than they save
_CHUNK = 8_192  # values per task handed to a worker
_Task = TypeVar("_Task")


def psi_dst(collaboration_id: str, kind: str) -> bytes:
    """The hash-to-curve domain separation tag of one identifier kind in one collaboration."""
    dst = _DST_PREFIX + collaboration_id.encode() + b":" + kind.encode()
    if len(dst) > 255:
        raise ConfigError("collaboration id and identifier kind are too long for a PSI DST")
    return dst


def _raw(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def split_points(blob: bytes) -> list[bytes]:
    """The 32-byte points of a blob."""
    return [blob[i:i + POINT_BYTES] for i in range(0, len(blob), POINT_BYTES)]


def blind_chunk(raw_key: bytes, dst: bytes, msgs: Sequence[bytes]) -> bytes:
    """X25519(key, hash_to_curve_u(msg, dst)) of each message, as one blob."""
    return b"".join([crypto_scalarmult(raw_key, u)
                     for u in hash_to_curve_u_many(msgs, dst, SUITE_RO)])


def reblind_chunk(raw_key: bytes, blob: bytes) -> tuple[bytes, int]:
    """X25519(key, point) of each point of a blob, as one blob, and -1; or b"" and the index
    of the first point that is not on the curve or of low order (nothing is blinded then)."""
    points = split_points(blob)
    bad = first_off_curve(points)
    if bad >= 0:
        return b"", bad
    try:
        return b"".join([crypto_scalarmult(raw_key, p) for p in points]), -1
    except RuntimeError:  # a low-order point: X25519 gives all zeros, which libsodium refuses
        for i, point in enumerate(points):
            try:
                crypto_scalarmult(raw_key, point)
            except RuntimeError:
                return b"", i
        raise


def _blind_task(task: tuple[bytes, bytes, list[bytes]]) -> tuple[bytes, int]:
    return blind_chunk(*task), -1


def _reblind_task(task: tuple[bytes, bytes]) -> tuple[bytes, int]:
    return reblind_chunk(*task)


def _context() -> multiprocessing.context.BaseContext:
    """fork where the platform has it: workers start in milliseconds and need not re-import
    the caller's main module; they only run hashlib, gmpy2 and OpenSSL code."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class BlindingPool:
    """Runs blind/reblind chunks in this process, or over `workers` worker processes."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> BlindingPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def _map(self, fn: Callable[[_Task], tuple[bytes, int]],
             tasks: list[_Task]) -> Iterator[tuple[bytes, int]]:
        if self.workers > 1 and len(tasks) > 1:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=_context())
            return self._pool.map(fn, tasks)
        return map(fn, tasks)

    def blind(self, key: X25519PrivateKey, dst: bytes, msgs: Sequence[bytes]) -> bytes:
        """`blind_chunk` of all messages, as one blob."""
        raw = _raw(key)
        if self.workers <= 1 or len(msgs) <= _CHUNK:
            return blind_chunk(raw, dst, msgs)
        tasks = [(raw, dst, list(msgs[i:i + _CHUNK])) for i in range(0, len(msgs), _CHUNK)]
        return b"".join(blob for blob, _ in self._map(_blind_task, tasks))

    def reblind(self, key: X25519PrivateKey, blob: bytes) -> tuple[bytes, int]:
        """`reblind_chunk` of a whole blob: (result, -1) or (b"", index of the first bad point)."""
        raw = _raw(key)
        if self.workers <= 1 or len(blob) <= _CHUNK * POINT_BYTES:
            return reblind_chunk(raw, blob)
        step = _CHUNK * POINT_BYTES
        tasks = [(raw, blob[i:i + step]) for i in range(0, len(blob), step)]
        out = []
        for start, (part, bad) in zip(range(0, len(tasks) * _CHUNK, _CHUNK),
                                      self._map(_reblind_task, tasks), strict=True):
            if bad >= 0:
                return b"", start + bad
            out.append(part)
        return b"".join(out), -1


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        return os.cpu_count() or 1


def worker_count(n: int, workers: int | None) -> int:
    """Processes for `n` values: `workers` when given, else one per usable core (at most 8)
    for large inputs and one for small ones."""
    if workers is not None:
        return max(1, workers)
    return max(1, min(usable_cores(), 8)) if n >= PARALLEL_MIN_VALUES else 1


def psi_blind_values(key: X25519PrivateKey, collaboration_id: str, kind: str,
                     values: Sequence[str], *, workers: int | None = None) -> list[bytes]:
    """X25519(key, hash_to_curve(value)) of each normalized value (32 bytes each)."""
    msgs = [v.encode("utf-8") for v in values]
    with BlindingPool(worker_count(len(msgs), workers)) as runner:
        blob = runner.blind(key, psi_dst(collaboration_id, kind), msgs)
    return split_points(blob)


def psi_reblind_values(key: X25519PrivateKey, points: Sequence[bytes], *,
                       workers: int | None = None) -> list[bytes]:
    """X25519(key, point) of each blinded value; ValueError if one is not a curve point."""
    items = [bytes(p) for p in points]
    if any(len(p) != POINT_BYTES for p in items):
        raise ValueError("a blinded value is not 32 bytes")
    with BlindingPool(worker_count(len(items), workers)) as runner:
        out, bad = runner.reblind(key, b"".join(items))
    if bad >= 0:
        raise ValueError(f"value {bad} is not a point of the curve")
    return split_points(out)
