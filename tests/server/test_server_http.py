"""Signed requests end to end: a real uvicorn server on loopback, an httpx client signing.

The server runs in a thread on a port the OS picks and is stopped by each test module; every
client call has a timeout.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from _server_harness import serve_in_thread
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cleanroom.server import (
    NotAuthenticated,
    RequestVerifier,
    SignatureAuth,
    SignedRequestMiddleware,
    authenticate,
    not_authenticated_handler,
    request_keyid,
    sign_request,
)
from protocols import identity_fingerprint

ALICE = Ed25519PrivateKey.generate()
BRAND = Ed25519PrivateKey.generate()
MALLORY = Ed25519PrivateKey.generate()
ALICE_ID = identity_fingerprint(ALICE.public_key())
BRAND_ID = identity_fingerprint(BRAND.public_key())
MALLORY_ID = identity_fingerprint(MALLORY.public_key())
MEMBERS = {ALICE_ID: "airline", BRAND_ID: "brand"}
TIMEOUT = httpx.Timeout(5.0)


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"member": MEMBERS[request_keyid(request)], "bytes": len(body),
                         "path": request.url.path})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def make_app(max_body: int = 1 << 16) -> Starlette:
    verifier = RequestVerifier({ALICE_ID: ALICE.public_key(), BRAND_ID: BRAND.public_key()})
    return Starlette(
        routes=[Route("/v1/echo", echo, methods=["GET", "POST", "PUT"]),
                Route("/v1/items/{name}", echo, methods=["GET"]),
                Route("/health", health)],
        middleware=[Middleware(SignedRequestMiddleware, verifier=verifier, max_body=max_body,
                               public_paths={"/health"})],
    )


@pytest.fixture(scope="module")
def base_url():
    with serve_in_thread(make_app()) as url:
        yield url


def client(url: str, auth: httpx.Auth | None = None) -> httpx.Client:
    return httpx.Client(base_url=url, auth=auth, timeout=TIMEOUT)


def refused(response: httpx.Response) -> str:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert "\n" not in response.text
    doc = response.json()
    assert set(doc) == {"error", "reason"} and doc["error"] == "not_authenticated"
    return doc["reason"]


def test_signed_requests_are_accepted(base_url):
    with client(base_url, SignatureAuth(ALICE, ALICE_ID)) as c:
        r = c.post("/v1/echo", content=b"x" * 1000)
        assert r.status_code == 200 and r.json() == {"member": "airline", "bytes": 1000,
                                                     "path": "/v1/echo"}
        r = c.get("/v1/items/a%20b", params={"table": "brand crm", "q": "é"})
        assert r.status_code == 200 and r.json()["path"] == "/v1/items/a b"
    with client(base_url, SignatureAuth(BRAND, BRAND_ID)) as c:
        assert c.get("/v1/echo").json()["member"] == "brand"


def test_unsigned_is_refused_but_public_path_is_open(base_url):
    with client(base_url) as c:
        assert refused(c.post("/v1/echo", content=b"{}")) == "missing_signature"
        assert c.get("/health").status_code == 200


def test_altered_body_is_refused(base_url):
    with client(base_url) as c:
        request = c.build_request("POST", "/v1/echo", content=b'{"amount": 1}')
        sign_request(request, ALICE, ALICE_ID)
        headers = {k: v for k, v in request.headers.items() if k != "content-length"}
        assert refused(c.post("/v1/echo", headers=headers, content=b'{"amount": 9}')) \
            == "digest_mismatch"


def test_unknown_key_is_refused(base_url):
    with client(base_url, SignatureAuth(MALLORY, MALLORY_ID)) as c:
        assert refused(c.get("/v1/echo")) == "unknown_key"


def test_replayed_request_is_refused(base_url):
    with client(base_url) as c:
        request = c.build_request("POST", "/v1/echo", content=b"once")
        sign_request(request, ALICE, ALICE_ID)
        assert c.send(request).status_code == 200
        assert refused(c.send(request)) == "replayed"
    with client(base_url, SignatureAuth(ALICE, ALICE_ID, nonce_factory=lambda: "z" * 24)) as c:
        assert c.get("/v1/echo").status_code == 200
        assert refused(c.get("/v1/echo")) == "replayed"


def test_expired_and_future_requests_are_refused(base_url):
    with client(base_url, SignatureAuth(ALICE, ALICE_ID, clock=lambda: time.time() - 3600)) as c:
        assert refused(c.get("/v1/echo")) == "expired"
    with client(base_url, SignatureAuth(ALICE, ALICE_ID, clock=lambda: time.time() + 3600)) as c:
        assert refused(c.get("/v1/echo")) == "not_yet_valid"


def test_wrong_method_or_path_is_refused(base_url):
    with client(base_url) as c:
        request = c.build_request("POST", "/v1/echo", content=b"{}")
        sign_request(request, ALICE, ALICE_ID)
        headers = dict(request.headers)
        assert refused(c.put("/v1/echo", headers=headers, content=b"{}")) == "bad_signature"
        assert refused(c.post("/v1/items/x", headers=headers, content=b"{}")) \
            == "bad_signature"
        assert refused(c.post("/v1/echo?table=brand", headers=headers, content=b"{}")) \
            == "missing_component"


def test_other_members_key_with_victims_keyid_is_refused(base_url):
    with client(base_url, SignatureAuth(MALLORY, ALICE_ID)) as c:
        assert refused(c.post("/v1/echo", content=b"{}")) == "bad_signature"


def test_refusal_never_echoes_header_values(base_url):
    with client(base_url) as c:
        r = c.get("/v1/echo", headers={"signature-input": 'cleanroom=("@x");keyid="EVIL<b>"',
                                       "signature": "cleanroom=:RVZJTA==:"})
        assert refused(r) == "malformed_signature"  # no `created`
        assert "EVIL" not in r.text and "RVZJ" not in r.text


def test_body_over_the_cap_is_refused_before_verification():
    with serve_in_thread(make_app(max_body=100)) as url:
        with client(url, SignatureAuth(ALICE, ALICE_ID)) as c:
            r = c.post("/v1/echo", content=b"x" * 101)
            assert r.status_code == 413 and r.json() == {"error": "too_large"}
            assert c.post("/v1/echo", content=b"x" * 100).status_code == 200


def test_per_endpoint_authenticate():
    verifier = RequestVerifier({ALICE_ID: ALICE.public_key()})

    async def endpoint(request: Request) -> JSONResponse:
        keyid = await authenticate(request, verifier)
        return JSONResponse({"keyid": keyid, "state": request_keyid(request),
                             "body": (await request.body()).decode()})

    app = Starlette(routes=[Route("/v1/q", endpoint, methods=["POST"])],
                    exception_handlers={NotAuthenticated: not_authenticated_handler})
    with serve_in_thread(app) as url, client(url) as c:
        r = c.post("/v1/q", content=b"hello", auth=SignatureAuth(ALICE, ALICE_ID))
        assert r.json() == {"keyid": ALICE_ID, "state": ALICE_ID, "body": "hello"}
        r = c.post("/v1/q", content=b"hello")
        assert r.status_code == 401
        assert json.loads(r.text) == {"error": "not_authenticated",
                                      "reason": "missing_signature"}
