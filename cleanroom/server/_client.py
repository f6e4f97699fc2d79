"""The member's side of a signed request: an httpx Auth that adds Content-Digest and signs.

See `_auth.py` for the wire format. The clock and the nonce can be passed in, so tests can
make an old, a future or a repeated request on purpose.
"""

from __future__ import annotations

import base64
import datetime as _dt
import secrets
import time
from collections.abc import Callable, Generator, Iterator

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from ._auth import SIGNATURE_LABEL, SIGNATURE_TAG

_SIGNED_HEADERS = ("content-digest", "signature", "signature-input")


def new_nonce() -> str:
    """A fresh request nonce: 144 random bits, base64url (24 characters)."""
    return secrets.token_urlsafe(18)


def sign_request(request: httpx.Request, private_key: Ed25519PrivateKey, keyid: str, *,
                 created: float | None = None, nonce: str | None = None,
                 sha256: bytes | None = None) -> None:
    """Sign `request` in place: set Content-Digest of its (already read) body, Signature-Input
    and Signature over @method, @path, @query (when there is a query) and content-digest.

    For a streamed body (a file upload), pass the body's `sha256` instead: the body is not
    read, and the server checks the digest once it has received the whole stream."""
    if not isinstance(private_key, Ed25519PrivateKey):
        raise TypeError("an identity private key must be an Ed25519 private key")
    for name in _SIGNED_HEADERS:
        request.headers.pop(name, None)
    if sha256 is not None:
        if len(sha256) != 32:
            raise ValueError("sha256 must be the 32-byte SHA-256 digest of the body")
        request.headers["content-digest"] = f"sha-256=:{base64.b64encode(sha256).decode()}:"
    components = ["@method", "@path"]
    if request.url.query:
        components.append("@query")
    components.append("content-digest")
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={keyid: private_key}),
    )
    at = time.time() if created is None else created
    signer.sign(
        _RequestView(request), key_id=keyid,
        created=_dt.datetime.fromtimestamp(int(at), _dt.UTC),
        nonce=new_nonce() if nonce is None else nonce,
        label=SIGNATURE_LABEL, tag=SIGNATURE_TAG,
        covered_component_ids=tuple(components),
        body=request.content if sha256 is None else None, use_existing_digest=sha256 is not None,
    )


class SignatureAuth(httpx.Auth):
    """httpx authentication that signs every request with a member's identity key.

        client = httpx.Client(base_url=url, auth=SignatureAuth(key, keyid))

    `keyid` is the identity's fingerprint. `clock` and `nonce_factory` exist for tests.
    """

    requires_request_body = True

    def __init__(self, private_key: Ed25519PrivateKey, keyid: str, *,
                 clock: Callable[[], float] = time.time,
                 nonce_factory: Callable[[], str] = new_nonce) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("an identity private key must be an Ed25519 private key")
        self._key, self.keyid = private_key, keyid
        self._clock, self._nonce_factory = clock, nonce_factory

    def __repr__(self) -> str:
        return f"SignatureAuth(keyid={self.keyid!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sign_request(request, self._key, self.keyid, created=self._clock(),
                     nonce=self._nonce_factory())
        yield request


class _RequestView:
    """The message interface the signer reads and writes, over an httpx.Request."""

    def __init__(self, request: httpx.Request) -> None:
        self.method = request.method
        self.url = str(request.url)
        self.headers = _HeaderView(request.headers)


class _HeaderView:
    def __init__(self, headers: httpx.Headers) -> None:
        self._headers = headers

    def items(self) -> list[tuple[str, str]]:
        return self._headers.multi_items()

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._headers

    def __setitem__(self, name: str, value: str) -> None:
        self._headers[name] = value

    def __delitem__(self, name: str) -> None:
        del self._headers[name]
