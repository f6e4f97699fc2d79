"""A bounded, thread-safe memory of the nonces of accepted requests, for replay refusal.

A nonce is remembered (per key id) until the request that carried it could no longer pass the
freshness check anyway; after that, forgetting it is safe. When the store holds `capacity` live
nonces it refuses new ones instead of forgetting live ones (forgetting would reopen a replay
window): the verifier turns that into a refusal with reason "busy".
"""

from __future__ import annotations

import heapq
import threading


class NonceStore:
    """Remembers (keyid, nonce) pairs until their expiry time (seconds since the epoch)."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def __repr__(self) -> str:
        return f"NonceStore(capacity={self.capacity})"

    def add(self, keyid: str, nonce: str, *, expires_at: float, now: float) -> bool | None:
        """Record a nonce atomically.

        Returns True if it was new and is now remembered, False if it is a replay (already
        remembered and not yet expired), None if the store is full of live nonces.
        """
        item = (keyid, nonce)
        with self._lock:
            self._purge(now)
            seen = self._expiry.get(item)
            if seen is not None and seen > now:
                return False
            if len(self._expiry) >= self.capacity:
                return None
            self._expiry[item] = expires_at
            heapq.heappush(self._heap, (expires_at, item))
            return True

    def _purge(self, now: float) -> None:
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] <= now:
            at, item = heapq.heappop(heap)
            if expiry.get(item) == at:
                del expiry[item]
