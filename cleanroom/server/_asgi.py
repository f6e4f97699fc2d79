"""Signed requests in a Starlette (ASGI) app: a middleware, or a per-endpoint check.

    app = Starlette(routes=..., middleware=[
        Middleware(SignedRequestMiddleware, verifier=RequestVerifier(keys))])
    # in an endpoint:  keyid = request_keyid(request)

or, per endpoint, `keyid = await authenticate(request, verifier)` with
`exception_handlers={NotAuthenticated: not_authenticated_handler}`.

A refused request gets HTTP 401 and one line of JSON,
`{"error":"not_authenticated","reason":"<reason>"}`; a body over the size cap gets 413
`{"error":"too_large"}` before any verification.

A streamed request (a file upload, chosen by the `streamed(method, path)` predicate) is checked
before its body is read: the endpoint gets the `SignedRequest` (`request_signed`), streams the
body to disk while hashing it, and calls `verify_sha256` before trusting a byte of it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocols import NotAuthenticated

from ._auth import RequestVerifier, SignedRequest

STATE_KEY = "keyid"
SIGNED_KEY = "signed_request"
DEFAULT_MAX_BODY = 1 << 20
_NO_STORE = {"cache-control": "no-store"}


def not_authenticated_response(exc: NotAuthenticated) -> JSONResponse:
    """The 401 answer: one line of JSON with the machine reason and nothing else."""
    return JSONResponse({"error": "not_authenticated", "reason": exc.reason}, status_code=401,
                        headers=_NO_STORE)


async def not_authenticated_handler(request: Request, exc: Exception) -> JSONResponse:
    """A Starlette exception handler for NotAuthenticated."""
    if not isinstance(exc, NotAuthenticated):  # pragma: no cover - registered for that class
        raise exc
    return not_authenticated_response(exc)


def request_target(scope: Scope) -> str:
    """The request target as it came on the wire: raw path, then "?" and the raw query."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope.get("path", "/"), safe="/%:@!$&'()*+,;=")
    path = path.split("?", 1)[0]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


async def authenticate(request: Request, verifier: RequestVerifier) -> str:
    """Verify a Starlette request (reading its body); record and return the key id.

    Raises NotAuthenticated. The body stays readable by the endpoint (Starlette caches it).
    """
    body = await request.body()
    keyid = verifier.verify(request.method, request_target(request.scope),
                            request.headers.raw, body)
    request.state.keyid = keyid
    return keyid


def request_keyid(request: Request) -> str:
    """The key id that SignedRequestMiddleware (or `authenticate`) verified for this request."""
    keyid = request.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(keyid, str):
        raise NotAuthenticated("missing_signature")
    return keyid


def request_signed(request: Request) -> SignedRequest:
    """The verified (body not yet checked) signature of a streamed request."""
    signed = request.scope.get("state", {}).get(SIGNED_KEY)
    if not isinstance(signed, SignedRequest):
        raise NotAuthenticated("missing_signature")
    return signed


class SignedRequestMiddleware:
    """Pure ASGI middleware: every HTTP request must be signed by a known identity.

    The body is read in full (at most `max_body` bytes) and checked against the signed
    Content-Digest before the app sees it; the verified key id goes to `request.state.keyid`.
    Paths in `public_paths` (exact matches) or under `public_prefixes` pass unsigned, e.g. a
    health check or the browser console (which has its own session check); requests for which
    `streamed(method, path)` holds are checked without their body (see the module docstring).
    """

    def __init__(self, app: ASGIApp, verifier: RequestVerifier, *,
                 max_body: int = DEFAULT_MAX_BODY, public_paths: Collection[str] = (),
                 public_prefixes: Collection[str] = (),
                 streamed: Callable[[str, str], bool] | None = None) -> None:
        self.app, self.verifier = app, verifier
        self.max_body, self.public_paths = max_body, frozenset(public_paths)
        self.public_prefixes = tuple(public_prefixes)
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or path in self.public_paths
                or (self.public_prefixes and path.startswith(self.public_prefixes))):
            await self.app(scope, receive, send)
            return
        if self.streamed is not None and self.streamed(scope["method"], path):
            try:
                signed = self.verifier.verify_headers(scope["method"], request_target(scope),
                                                      scope.get("headers", []))
            except NotAuthenticated as exc:
                await not_authenticated_response(exc)(scope, receive, send)
                return
            state = scope.setdefault("state", {})
            state[STATE_KEY], state[SIGNED_KEY] = signed.keyid, signed
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive)
        if body is None:
            await JSONResponse({"error": "too_large"}, status_code=413,
                               headers=_NO_STORE)(scope, receive, send)
            return
        try:
            keyid = self.verifier.verify(scope["method"], request_target(scope),
                                         scope.get("headers", []), body)
        except NotAuthenticated as exc:
            await not_authenticated_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[STATE_KEY] = keyid
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    if int(value) > self.max_body:
                        return None
                except ValueError:
                    return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
