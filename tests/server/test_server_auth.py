"""Request signatures checked without a network: each refusal has its one machine reason."""

from __future__ import annotations

import threading

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanroom.server import (
    REASONS,
    NonceStore,
    NotAuthenticated,
    RequestVerifier,
    sign_request,
    verify_request,
)
from protocols import identity_fingerprint

ALICE = Ed25519PrivateKey.generate()
MALLORY = Ed25519PrivateKey.generate()
ALICE_ID = identity_fingerprint(ALICE.public_key())
MALLORY_ID = identity_fingerprint(MALLORY.public_key())
KEYS = {ALICE_ID: ALICE.public_key()}
T0 = 1_750_000_000.0


def signed(method="POST", url="http://room.example/v1/query", body=b'{"q": 1}', *,
           key=ALICE, keyid=ALICE_ID, created=T0, nonce=None) -> httpx.Request:
    request = httpx.Request(method, url, content=body)
    sign_request(request, key, keyid, created=created, nonce=nonce)
    return request


def target(request: httpx.Request) -> str:
    return request.url.raw_path.decode("ascii")


def check(request: httpx.Request, *, verifier=None, method=None, path=None, body=None,
          now=T0) -> str:
    verifier = verifier or RequestVerifier(KEYS)
    return verifier.verify(method or request.method, path or target(request),
                           request.headers.multi_items(),
                           request.content if body is None else body, now=now)


def reason_of(fn, *args, **kwargs) -> str:
    with pytest.raises(NotAuthenticated) as info:
        fn(*args, **kwargs)
    assert info.value.reason in REASONS
    assert str(info.value) == f"not authenticated: {info.value.reason}"
    return info.value.reason


def test_wire_format():
    request = signed(url="http://room.example/v1/query?x=1", nonce="n" * 24)
    assert request.headers["content-digest"].startswith("sha-256=:")
    assert request.headers["signature-input"] == (
        f'cleanroom=("@method" "@path" "@query" "content-digest");created={int(T0)};'
        f'keyid="{ALICE_ID}";alg="ed25519";nonce="{"n" * 24}";tag="cleanroom-request-v1"')
    assert request.headers["signature"].startswith("cleanroom=:")


def test_accepted_and_function_form():
    assert check(signed()) == ALICE_ID
    request = signed(method="GET", url="http://room.example/v1/items/a%20b?x=1&y=%2F", body=b"")
    assert verify_request("GET", target(request), dict(request.headers), b"", keys=KEYS,
                          nonce_store=NonceStore(), now=T0 + 299) == ALICE_ID


def test_absolute_url_target_is_accepted():
    request = signed(url="http://room.example/v1/query?x=1")
    assert RequestVerifier(KEYS).verify("POST", "https://proxy.example:8443/v1/query?x=1",
                                        request.headers.multi_items(), request.content,
                                        now=T0) == ALICE_ID


def test_unsigned():
    request = httpx.Request("POST", "http://room.example/v1/query", content=b"{}")
    assert reason_of(check, request) == "missing_signature"


def test_altered_body():
    assert reason_of(check, signed(), body=b'{"q": 2}') == "digest_mismatch"


def test_unknown_key():
    assert reason_of(check, signed(key=MALLORY, keyid=MALLORY_ID)) == "unknown_key"


def test_other_members_key_with_victims_keyid():
    assert reason_of(check, signed(key=MALLORY, keyid=ALICE_ID)) == "bad_signature"


def test_wrong_method_or_path():
    request = signed()
    assert reason_of(check, request, method="PUT") == "bad_signature"
    assert reason_of(check, request, path="/v1/upload") == "bad_signature"
    assert reason_of(check, request, path="/v1/query?extra=1") == "missing_component"
    with_query = signed(url="http://room.example/v1/query?table=a")
    assert reason_of(check, with_query, path="/v1/query?table=b") == "bad_signature"


def test_freshness_window():
    verifier = RequestVerifier(KEYS, max_age=300, clock_skew=30)
    assert check(signed(created=T0 - 300), verifier=verifier) == ALICE_ID
    assert reason_of(check, signed(created=T0 - 301), verifier=verifier) == "expired"
    assert check(signed(created=T0 + 30), verifier=verifier) == ALICE_ID
    assert reason_of(check, signed(created=T0 + 31), verifier=verifier) == "not_yet_valid"


def test_clock_is_injectable():
    verifier = RequestVerifier(KEYS, clock=lambda: T0 + 3600)
    request = signed()
    assert reason_of(verifier.verify, "POST", target(request), request.headers.multi_items(),
                     request.content) == "expired"


def test_replay_refused_same_headers_and_same_nonce():
    verifier = RequestVerifier(KEYS)
    request = signed()
    assert check(request, verifier=verifier) == ALICE_ID
    assert reason_of(check, request, verifier=verifier, now=T0 + 1) == "replayed"
    again = signed(nonce=request_nonce(request), body=b"other")
    assert reason_of(check, again, verifier=verifier) == "replayed"
    # the same nonce from another member is that member's own nonce
    verifier2 = RequestVerifier({**KEYS, MALLORY_ID: MALLORY.public_key()},
                                nonce_store=verifier.nonce_store)
    assert check(signed(key=MALLORY, keyid=MALLORY_ID, nonce=request_nonce(request)),
                 verifier=verifier2) == MALLORY_ID


def request_nonce(request: httpx.Request) -> str:
    return request.headers["signature-input"].split('nonce="')[1].split('"')[0]


def test_forged_request_does_not_burn_a_nonce():
    verifier = RequestVerifier(KEYS)
    good = signed(nonce="x" * 20)
    forged = signed(key=MALLORY, keyid=ALICE_ID, nonce="x" * 20)
    assert reason_of(check, forged, verifier=verifier) == "bad_signature"
    assert check(good, verifier=verifier) == ALICE_ID


@pytest.mark.parametrize("edit, reason", [
    (lambda h: h.update({"signature-input": "cleanroom=garbage\x7f"}), "bad_signature"),
    (lambda h: h.update({"signature": "cleanroom=:AAAA:"}), "bad_signature"),
    (lambda h: h.update({"signature-input": h["signature-input"].replace(
        "cleanroom-request-v1", "other-v9")}), "bad_signature"),
    (lambda h: h.pop("content-digest"), "bad_signature"),
    (lambda h: h.update({"content-digest": "sha-512=:" + "A" * 86 + "==:"}), "bad_signature"),
])
def test_tampered_headers(edit, reason):
    request = signed()
    headers = dict(request.headers)
    edit(headers)
    with pytest.raises(NotAuthenticated) as info:
        RequestVerifier(KEYS).verify("POST", "/v1/query", headers, request.content, now=T0)
    assert info.value.reason == reason
    assert "garbage" not in str(info.value) and "AAAA" not in str(info.value)


def test_signature_without_required_parts():
    # a correct signature that covers too little, or carries no nonce, is refused
    from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={ALICE_ID: ALICE}))
    import datetime as dt

    def make(components, nonce, tag="cleanroom-request-v1"):
        request = httpx.Request("POST", "http://room.example/v1/query", content=b"{}")
        view = type("V", (), {})()
        view.method, view.url = "POST", str(request.url)
        view.headers = dict(request.headers)
        signer.sign(view, key_id=ALICE_ID, created=dt.datetime.fromtimestamp(T0, dt.UTC),
                    nonce=nonce, tag=tag, label="cleanroom", covered_component_ids=components,
                    body=b"{}")
        return view.headers

    verifier = RequestVerifier(KEYS)
    headers = make(("@method",), "n" * 20)
    assert reason_of(verifier.verify, "POST", "/v1/query", headers, b"{}", now=T0) \
        == "missing_component"
    headers = make(("@method", "@path"), None)
    assert reason_of(verifier.verify, "POST", "/v1/query", headers, b"{}", now=T0) \
        == "malformed_signature"
    headers = make(("@method", "@path"), "n" * 20, tag="someone-else")
    assert reason_of(verifier.verify, "POST", "/v1/query", headers, b"{}", now=T0) \
        == "malformed_signature"


def test_nonce_store_is_bounded_and_forgets_expired():
    store = NonceStore(capacity=2)
    assert store.add("k", "a", expires_at=10, now=0) is True
    assert store.add("k", "a", expires_at=10, now=1) is False
    assert store.add("k", "b", expires_at=20, now=1) is True
    assert store.add("k", "c", expires_at=20, now=1) is None   # full of live nonces: refuse
    assert store.add("k", "c", expires_at=20, now=10) is True  # "a" expired and was forgotten
    assert len(store) == 2


def test_full_nonce_store_refuses_as_busy():
    verifier = RequestVerifier(KEYS, nonce_store=NonceStore(capacity=1))
    assert check(signed(), verifier=verifier) == ALICE_ID
    assert reason_of(check, signed(), verifier=verifier) == "busy"
    assert check(signed(created=T0 + 302), verifier=verifier, now=T0 + 302) == ALICE_ID


def test_nonce_store_is_thread_safe():
    store = NonceStore()
    results: list[bool | None] = []
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait(timeout=5)
        results.append(store.add("k", "same", expires_at=100, now=0))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert sorted(results, key=str) == [False] * 7 + [True]


def test_reason_must_be_known():
    from protocols import CleanroomBug
    with pytest.raises(CleanroomBug):
        NotAuthenticated("something else")  # type: ignore[arg-type]
    assert NotAuthenticated("expired").exit_code == 4


def test_requests_signed_before_not_before_are_refused():
    # a server passes its start time: a request captured before a restart cannot be replayed
    verifier = RequestVerifier(KEYS, not_before=T0)
    assert reason_of(check, signed(created=T0 - 1), verifier=verifier) == "expired"
    assert check(signed(created=T0), verifier=verifier) == ALICE_ID
