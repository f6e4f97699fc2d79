"""The clean room as a service: signed requests from members, signed audit heads.

Client:   SignatureAuth(private_key, keyid) for httpx; sign_request for one request.
Server:   RequestVerifier(keys).verify(method, target, headers, body) -> keyid, or
          verify_request(...); SignedRequestMiddleware / authenticate for Starlette.
          Every refusal is NotAuthenticated(reason), reason one of REASONS.
Audit:    sign_head / verify_head over an audit chain's head and entry count.
"""

from protocols import AUTH_REASONS as REASONS
from protocols import NotAuthenticated

from ._asgi import (
    SignedRequestMiddleware,
    authenticate,
    not_authenticated_handler,
    not_authenticated_response,
    request_keyid,
    request_target,
)
from ._auth import (
    DEFAULT_CLOCK_SKEW,
    DEFAULT_MAX_AGE,
    REQUIRED_COMPONENTS,
    SIGNATURE_LABEL,
    SIGNATURE_TAG,
    RequestVerifier,
    SignedRequest,
    verify_request,
)
from ._client import SignatureAuth, new_nonce, sign_request
from ._nonces import NonceStore
from ._signing import HEAD_DOMAIN, sign_head, verify_head

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_MAX_AGE",
    "HEAD_DOMAIN",
    "NonceStore",
    "NotAuthenticated",
    "REASONS",
    "REQUIRED_COMPONENTS",
    "RequestVerifier",
    "SIGNATURE_LABEL",
    "SIGNATURE_TAG",
    "SignatureAuth",
    "SignedRequest",
    "SignedRequestMiddleware",
    "authenticate",
    "new_nonce",
    "not_authenticated_handler",
    "not_authenticated_response",
    "request_keyid",
    "request_target",
    "sign_head",
    "sign_request",
    "verify_head",
    "verify_request",
]
