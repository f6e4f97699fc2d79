"""The clean room as a service: members reach it with their own keys, never with the files.

Serve:    state = ServerState("collaboration.toml", operator_key); app = build_app(state);
          run_server(app, host=..., port=..., tls_cert=..., tls_key=...) — or `cleanroom serve`.
Client:   ServerClient(url, "member.key", ca_cert=...) — overlap, query, report, policy, audit,
          budget, upload, put_policy, console_link; every answer's signed audit head is
          checked and kept (Receipts). SignatureAuth(private_key, keyid) signs any httpx
          request.
Requests: RequestVerifier(keys).verify(method, target, headers, body) -> keyid, or
          verify_request(...); SignedRequestMiddleware / authenticate for Starlette.
          Every refusal is NotAuthenticated(reason), reason one of REASONS.
Audit:    sign_head / verify_head over an audit chain's head and entry count.
"""

from protocols import AUTH_REASONS as REASONS
from protocols import NotAuthenticated

from ._app import HEAD_HEADER, build_app
from ._asgi import (
    SignedRequestMiddleware,
    authenticate,
    not_authenticated_handler,
    not_authenticated_response,
    request_keyid,
    request_signed,
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
from ._console import COOKIE, LINK_TTL, SESSION_TTL
from ._nonces import NonceStore
from ._receipts import Receipt, Receipts, receipts_path
from ._remote import ServerClient, check_url
from ._serve import DEFAULT_HOST, DEFAULT_PORT, is_loopback, run_server, server_url, serving
from ._signing import HEAD_DOMAIN, sign_head, verify_head
from ._state import DEFAULT_WORKERS, Principal, ServerState, SignedHead
from ._storage import DEFAULT_MAX_UPLOAD, STATE_DIR, UPLOAD_PREFIX, remove_stale_uploads

__all__ = [
    "COOKIE",
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_HOST",
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_UPLOAD",
    "DEFAULT_PORT",
    "DEFAULT_WORKERS",
    "HEAD_DOMAIN",
    "HEAD_HEADER",
    "LINK_TTL",
    "NonceStore",
    "NotAuthenticated",
    "Principal",
    "REASONS",
    "REQUIRED_COMPONENTS",
    "Receipt",
    "Receipts",
    "RequestVerifier",
    "SESSION_TTL",
    "SIGNATURE_LABEL",
    "SIGNATURE_TAG",
    "STATE_DIR",
    "ServerClient",
    "ServerState",
    "SignatureAuth",
    "SignedHead",
    "SignedRequest",
    "SignedRequestMiddleware",
    "UPLOAD_PREFIX",
    "authenticate",
    "build_app",
    "check_url",
    "is_loopback",
    "new_nonce",
    "not_authenticated_handler",
    "not_authenticated_response",
    "receipts_path",
    "remove_stale_uploads",
    "request_keyid",
    "request_signed",
    "request_target",
    "run_server",
    "server_url",
    "serving",
    "sign_head",
    "sign_request",
    "verify_head",
    "verify_request",
]
