"""Signed requests: HTTP Message Signatures (RFC 9421, Ed25519) over a Content-Digest (RFC 9530).

Wire format of every request a member sends (made by `SignatureAuth`, checked here):

    Content-Digest:  sha-256=:<base64 of SHA-256(body)>:          (also for an empty body)
    Signature-Input: cleanroom=("@method" "@path" ["@query"] "content-digest");
                     created=<unix seconds>;keyid="<identity fingerprint>";alg="ed25519";
                     nonce="<random, base64url>";tag="cleanroom-request-v1"
    Signature:       cleanroom=:<base64 Ed25519 signature of the RFC 9421 signature base>:

"@query" is covered whenever the request has a query. The `tag` names this protocol and its
version. The signature base is built and checked by the `http-message-signatures` package;
this module adds what RFC 9421 leaves to the application: which components must be covered,
freshness against an injectable clock, the body's digest, and replay refusal by nonce.

Order of checks: headers present -> freshness (created, expires) -> key known -> signature
valid -> coverage, tag, nonce -> replay (the nonce is consumed only once the signature holds)
-> digest. Any failure raises `NotAuthenticated(reason)` and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)

from protocols import AuthReason, NotAuthenticated

from ._nonces import NonceStore

SIGNATURE_LABEL = "cleanroom"
SIGNATURE_TAG = "cleanroom-request-v1"
REQUIRED_COMPONENTS = ("@method", "@path", "content-digest")
DEFAULT_MAX_AGE = 300.0
DEFAULT_CLOCK_SKEW = 30.0
_DIGEST = re.compile(r"sha-256=:([A-Za-z0-9+/]{43}=):")
_NONCE = re.compile(r"[A-Za-z0-9_\-]{16,128}")

HeaderList = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]


@dataclass(frozen=True)
class SignedRequest:
    """A request whose signature verified and whose nonce is consumed; the body is not yet
    checked. `verify_body` or `verify_sha256` must pass before the body is trusted."""

    keyid: str
    created: int
    _digest: str

    def verify_body(self, body: bytes) -> str:
        """Check the signed Content-Digest against the whole body; return the key id."""
        return self.verify_sha256(hashlib.sha256(body).digest())

    def verify_sha256(self, sha256: bytes) -> str:
        """Check the signed digest against the SHA-256 of a body hashed while streaming."""
        match = _DIGEST.fullmatch(self._digest)
        if match is None or not hmac.compare_digest(base64.b64decode(match[1]), sha256):
            raise NotAuthenticated("digest_mismatch")
        return self.keyid


class RequestVerifier:
    """Verifies signed requests against the collaboration's identities.

    `keys` maps each key id (the identity fingerprint) to its Ed25519 public key. Requests older
    than `max_age` seconds, or created more than `clock_skew` seconds in the future, are
    refused; `clock` (seconds since the epoch) can be replaced in tests. Requests created
    before `not_before` are refused as expired: a server passes its start time, so a request
    captured before a restart (whose nonce the new process never saw) cannot be replayed after
    it. Thread-safe: the only shared state is the nonce store, which locks.
    """

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], *,
                 nonce_store: NonceStore | None = None, max_age: float = DEFAULT_MAX_AGE,
                 clock_skew: float = DEFAULT_CLOCK_SKEW,
                 clock: Callable[[], float] = time.time, not_before: float | None = None
                 ) -> None:
        if max_age <= 0 or clock_skew < 0:
            raise ValueError("max_age must be positive and clock_skew not negative")
        for keyid, key in keys.items():
            if not isinstance(key, Ed25519PublicKey):
                raise TypeError(f"key for {keyid!r} is not an Ed25519 public key")
        self._keys = dict(keys)
        self.nonce_store = nonce_store if nonce_store is not None else NonceStore()
        self.max_age, self.clock_skew, self.clock = float(max_age), float(clock_skew), clock
        self.not_before = not_before

    def __repr__(self) -> str:
        return f"RequestVerifier(keys={len(self._keys)}, max_age={self.max_age:g})"

    def verify(self, method: str, target: str, headers: HeaderList, body: bytes, *,
               now: float | None = None) -> str:
        """Verify a whole request; return the signer's key id or raise NotAuthenticated.

        `target` is the request target as received: the raw (still percent-encoded) path and,
        if any, "?" and the raw query. An absolute URL is accepted too.
        """
        return self.verify_headers(method, target, headers, now=now).verify_body(body)

    def verify_headers(self, method: str, target: str, headers: HeaderList, *,
                       now: float | None = None) -> SignedRequest:
        """Verify everything but the body (for bodies streamed to disk); see SignedRequest."""
        at = float(self.clock() if now is None else now)
        fields = _header_lines(headers)
        names = {name.lower() for name, _ in fields}
        if "signature" not in names or "signature-input" not in names:
            raise NotAuthenticated("missing_signature")
        url, has_query = _absolute_url(target)
        resolver = _KeyResolver(self._keys)
        verifier = _Verifier(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
        verifier.now, verifier.max_age_s, verifier.skew_s = at, self.max_age, self.clock_skew
        verifier.not_before = self.not_before
        message = _Message(method=method, url=url, headers=_Fields(fields))
        try:
            results = verifier.verify(message, max_age=None)
        except _Refused as exc:
            raise NotAuthenticated(exc.reason) from None
        except (HTTPMessageSignaturesException, ValueError, TypeError, UnicodeError):
            if resolver.unknown:
                raise NotAuthenticated("unknown_key") from None
            raise NotAuthenticated("bad_signature") from None
        if len(results) != 1:
            raise NotAuthenticated("malformed_signature")
        result = results[0]
        params = result.parameters
        keyid, created, nonce = params.get("keyid"), params.get("created"), params.get("nonce")
        if (params.get("tag") != SIGNATURE_TAG or not isinstance(keyid, str)
                or type(created) is not int or not isinstance(nonce, str)
                or _NONCE.fullmatch(nonce) is None):
            raise NotAuthenticated("malformed_signature")
        covered = set(result.covered_components)
        required = REQUIRED_COMPONENTS + (("@query",) if has_query else ())
        if any(f'"{c}"' not in covered for c in required):
            raise NotAuthenticated("missing_component")
        # Remembered until the request would fail the freshness check anyway.
        added = self.nonce_store.add(keyid, nonce, expires_at=created + self.max_age + 1,
                                     now=at)
        if added is None:
            raise NotAuthenticated("busy")
        if not added:
            raise NotAuthenticated("replayed")
        return SignedRequest(keyid, created, result.covered_components['"content-digest"'])


def verify_request(method: str, target: str, headers: HeaderList, body: bytes, *,
                   keys: Mapping[str, Ed25519PublicKey], nonce_store: NonceStore,
                   now: float | None = None, max_age: float = DEFAULT_MAX_AGE,
                   clock_skew: float = DEFAULT_CLOCK_SKEW) -> str:
    """Verify one signed request; return the signer's key id or raise NotAuthenticated.

    A one-call form of `RequestVerifier(...).verify(...)`; pass the same `nonce_store` to
    every call, or replays will not be seen.
    """
    verifier = RequestVerifier(keys, nonce_store=nonce_store, max_age=max_age,
                               clock_skew=clock_skew)
    return verifier.verify(method, target, headers, body, now=now)


class _Refused(InvalidSignature):
    def __init__(self, reason: AuthReason) -> None:
        super().__init__(reason)
        self.reason: AuthReason = reason


class _Verifier(HTTPMessageVerifier):
    """The library's verifier with freshness checked against our clock and our window."""

    now: float
    max_age_s: float
    skew_s: float
    not_before: float | None

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        created, expires = sig_input.params.get("created"), sig_input.params.get("expires")
        if type(created) is not int or (expires is not None and type(expires) is not int):
            raise _Refused("malformed_signature")
        if created > self.now + self.skew_s:
            raise _Refused("not_yet_valid")
        if self.now - created > self.max_age_s or (expires is not None and expires < self.now):
            raise _Refused("expired")
        if self.not_before is not None and created < self.not_before:
            raise _Refused("expired")


class _KeyResolver(HTTPSignatureKeyResolver):
    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys, self.unknown = keys, False

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        key = self._keys.get(key_id) if isinstance(key_id, str) else None
        self.unknown = key is None
        return key

    def resolve_private_key(self, key_id: str) -> Any:
        raise HTTPMessageSignaturesException("a verifier holds no private key")


class _Fields:
    """Read-only header lines in wire order, as the library's resolver reads them."""

    def __init__(self, lines: list[tuple[str, str]]) -> None:
        self._lines = lines

    def items(self) -> list[tuple[str, str]]:
        return list(self._lines)

    def __iter__(self) -> Any:
        return iter(dict.fromkeys(name for name, _ in self._lines))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self._lines)


@dataclass
class _Message:
    method: str
    url: str
    headers: _Fields


def _header_lines(headers: HeaderList) -> list[tuple[str, str]]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in pairs:
        n = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        v = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        out.append((n, v))
    return out


def _absolute_url(target: str) -> tuple[str, bool]:
    """An absolute URL for the library's component resolver, and whether there is a query.

    Only the path and the query are signed: the authority is not covered (a proxy may change
    it), so a fixed placeholder stands in for it. The raw, percent-encoded spelling is kept.
    """
    if not target.startswith("/"):
        parts = urlsplit(target)
        if not parts.scheme or not parts.netloc:
            raise NotAuthenticated("bad_signature")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    _, sep, query = target.partition("?")
    return "http://server.invalid" + target, bool(sep and query)
