"""ECDH blinding over lists of values: X25519(key, hash_to_curve(value)) and its reblinding.

The PSI recipe (`protocols.psi_blind_file` and friends) runs these under a per-collaboration,
per-kind DST, with a canary and random stand-ins for missing values; called alone, they give
none of that. Large lists are split into chunks run over worker processes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from .._errors import ConfigError
from ._h2c import SUITE_RO, hash_to_curve_u_many, u_on_curve

POINT_BYTES = 32
_DST_PREFIX = b"cleanroom-psi-v1:"
PARALLEL_MIN_VALUES = 8_000  # below this, worker processes cost more than they save
_CHUNK = 4_000


def psi_dst(collaboration_id: str, kind: str) -> bytes:
    """The hash-to-curve domain separation tag of one identifier kind in one collaboration."""
    dst = _DST_PREFIX + collaboration_id.encode() + b":" + kind.encode()
    if len(dst) > 255:
        raise ConfigError("collaboration id and identifier kind are too long for a PSI DST")
    return dst


def _raw(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def _exchange(key: X25519PrivateKey, points: Sequence[bytes]) -> bytes:
    """X25519(key, point) of every point, concatenated; ValueError on a low-order point."""
    load, ex = X25519PublicKey.from_public_bytes, key.exchange
    return b"".join([ex(load(p)) for p in points])


def _work(task: tuple[str, bytes, bytes, list[bytes]]) -> tuple[bytes, int]:
    """One chunk in a worker: ("blind", key, dst, messages) or ("reblind", key, b"", points).
    Returns the concatenated 32-byte results and the index of the first bad point (or -1)."""
    op, raw_key, dst, items = task
    key = X25519PrivateKey.from_private_bytes(raw_key)
    if op == "blind":
        return _exchange(key, hash_to_curve_u_many(items, dst, SUITE_RO)), -1
    on_curve = u_on_curve(items)
    if not all(on_curve):
        return b"", on_curve.index(False)
    try:
        return _exchange(key, items), -1
    except ValueError:  # a low-order point: X25519 gives all zeros
        for i, point in enumerate(items):
            try:
                _exchange(key, [point])
            except ValueError:
                return b"", i
        raise


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

    def run(self, op: str, key: X25519PrivateKey, dst: bytes,
            items: list[bytes]) -> tuple[list[bytes], int]:
        raw = _raw(key)
        tasks = [(op, raw, dst, items[i:i + _CHUNK]) for i in range(0, len(items), _CHUNK)]
        if self.workers > 1 and len(tasks) > 1:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=_context())
            results = self._pool.map(_work, tasks)
        else:
            results = map(_work, tasks)
        out: list[bytes] = []
        for start, (blob, bad) in zip(range(0, len(items), _CHUNK), results, strict=True):
            if bad >= 0:
                return out, start + bad
            out.extend(blob[i:i + POINT_BYTES] for i in range(0, len(blob), POINT_BYTES))
        return out, -1


def worker_count(n: int, workers: int | None) -> int:
    """Processes for `n` values: `workers` when given, else one per core (at most 8) for large
    inputs and one for small ones."""
    if workers is not None:
        return max(1, workers)
    return max(1, min(os.cpu_count() or 1, 8)) if n >= PARALLEL_MIN_VALUES else 1


def psi_blind_values(key: X25519PrivateKey, collaboration_id: str, kind: str,
                     values: Sequence[str], *, workers: int | None = None) -> list[bytes]:
    """X25519(key, hash_to_curve(value)) of each normalized value (32 bytes each)."""
    msgs = [v.encode("utf-8") for v in values]
    with BlindingPool(worker_count(len(msgs), workers)) as runner:
        out, _ = runner.run("blind", key, psi_dst(collaboration_id, kind), msgs)
    return out


def psi_reblind_values(key: X25519PrivateKey, points: Sequence[bytes], *,
                       workers: int | None = None) -> list[bytes]:
    """X25519(key, point) of each blinded value; ValueError if one is not a curve point."""
    items = [bytes(p) for p in points]
    if any(len(p) != POINT_BYTES for p in items):
        raise ValueError("a blinded value is not 32 bytes")
    with BlindingPool(worker_count(len(items), workers)) as runner:
        out, bad = runner.run("reblind", key, b"", items)
    if bad >= 0:
        raise ValueError(f"value {bad} is not a point of the curve")
    return out
