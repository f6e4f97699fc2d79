"""The security list of the served clean room, one test (or a few) per promise."""

from __future__ import annotations

import base64
import json

import httpx
import pyarrow.parquet as pq
import pytest
from _room_fixture import make_room, served

from cleanroom.server import HEAD_HEADER, SignatureAuth, sign_request, verify_head
from protocols import (
    NotAllowed,
    NotAuthenticated,
    PolicyRefusal,
    identity_fingerprint,
    load_identity_private,
)

TIMEOUT = httpx.Timeout(30.0)


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    return make_room(tmp_path_factory.mktemp("walls"))


@pytest.fixture(scope="module")
def server(room):
    with served(room) as (url, state):
        yield url, state


def raw(room, who: str, url: str) -> httpx.Client:
    """A signed httpx client that goes around ServerClient's own checks."""
    key = load_identity_private(room.key(who))
    return httpx.Client(base_url=url, timeout=TIMEOUT,
                        auth=SignatureAuth(key, identity_fingerprint(key.public_key())))


def test_results_only_to_allowed_receivers(room, server):
    url, _ = server
    with room.client("agency", url) as c:  # may query, may not receive
        with pytest.raises(PolicyRefusal) as info:
            c.overlap()
        assert info.value.rule == "can_receive_results"
    with room.client("brand", url) as c:  # may receive, may not query
        with pytest.raises(PolicyRefusal) as info:
            c.query("SELECT COUNT(DISTINCT entity_id) FROM brand")
        assert info.value.rule == "can_query"


def test_auditors_never_query_but_read(room, server):
    url, state = server
    before = len(state.audit.entries())
    with room.client("compliance", url) as c:
        for call in (lambda: c.overlap(), lambda: c.query("SELECT 1"), lambda: c.report()):
            with pytest.raises(NotAllowed) as info:
                call()
            assert info.value.rule == "auditor"
            assert str(info.value).startswith("not allowed (auditor): auditors read")
        assert c.policy()["valid"] is True
        entries, summary = c.audit()
    refused = entries[before:before + 3]
    assert [(e["member"], e["decision"], e["rule"]) for e in refused] == \
        [("compliance", "refused", "auditor")] * 3
    assert summary["entries"] == len(entries)


def test_as_must_be_the_identitys_member_and_is_never_echoed(room, server):
    url, state = server
    before = len(state.audit.entries())
    with room.client("airline", url) as c:
        assert c.overlap("airline")["overlap"] == {"entities": 40}
        with pytest.raises(NotAllowed) as info:
            c.overlap("brand")
        assert info.value.rule == "identity" and "brand" not in str(info.value)
    with raw(room, "airline", url) as h:
        r = h.post("/v1/overlap", json={"as": "\x1b[31mevil"})
        assert r.status_code == 400 and "evil" not in r.text and "\x1b" not in r.text
    entries = state.audit.entries()[before:]
    assert "brand" not in json.dumps(entries) and "evil" not in json.dumps(entries)


def _token_strings(room) -> set[str]:
    table = pq.read_table(room.operator / "airline.tokens.parquet", columns=["email", "phone"])
    out = set()
    for col in table.columns:
        for v in col.to_pylist()[:50]:
            if v:
                out |= {v.hex(), base64.b64encode(v).decode()}
    return out


def test_answers_never_hold_tokens_files_entity_ids_or_tracebacks(room, server, monkeypatch):
    url, state = server
    texts = []
    with raw(room, "airline", url) as h:
        for method, path, body in [
                ("POST", "/v1/overlap", {"by": ["airline.tier"], "metrics": ["SUM(brand.spend)"]}),
                ("POST", "/v1/query", {"sql": "SELECT a.tier, COUNT(DISTINCT a.entity_id) AS n "
                                              "FROM airline a JOIN brand b "
                                              "ON a.entity_id = b.entity_id GROUP BY a.tier"}),
                ("POST", "/v1/query", {"sql": "SELECT a.entity_id FROM airline a JOIN brand b "
                                              "ON a.entity_id = b.entity_id"}),
                ("POST", "/v1/query", {"sql": "SELECT email FROM airline"}),
                ("POST", "/v1/report", {}),
                ("GET", "/v1/policy", None), ("GET", "/v1/audit", None),
                ("GET", "/v1/tables/airline/tokens", None),
                ("GET", "/v1/tables/brand/policy", None)]:
            r = h.request(method, path, json=body)
            assert "\n" not in r.text.strip()
            texts.append(r.text)
        assert json.loads(texts[2])["error"] == "refused"  # entity_id is never output
        assert json.loads(texts[3])["error"] == "refused"  # a token column is not even visible
    blob = "".join(texts)
    assert "PAR1" not in blob and "Traceback" not in blob
    assert not any(t in blob for t in _token_strings(room))
    entity_ids = pq.read_table(next((room.operator / ".cleanroom-cache").glob("*.parquet")),
                               columns=["entity_id"]).column(0).to_pylist()[:50]
    assert not any(f'"{e}"' in blob or f":{e}," in blob for e in entity_ids if e > 10**6)

    def boom(*a, **k):
        raise RuntimeError("secret detail /srv/operator/airline.tokens.parquet")
    monkeypatch.setattr(state, "room", boom)
    with raw(room, "airline", url) as h:
        r = h.post("/v1/overlap", json={})
    assert r.status_code == 500 and r.json() == {"error": "internal"}


@pytest.mark.parametrize("path", [
    "/v1/tables/..%2F..%2Fetc/tokens", "/v1/tables/AIRLINE/policy", "/v1/tables/air%0aline/policy",
    "/v1/tables/nosuch/policy"])
def test_table_names_from_requests_are_validated(room, server, path):
    url, _ = server
    with raw(room, "airline", url) as h:
        r = h.put(path, content=b"analysis_rule = 'list'")
    assert r.status_code in (404, 405)
    assert r.json()["error"] == "not_found"


def test_malformed_fields_are_refused_without_echo(room, server):
    url, _ = server
    with raw(room, "airline", url) as h:
        for body in ({"by": ["airline.tier\x07"]}, {"by": "x" * 300}, {"metrics": ["DROP()"]},
                     {"nonsense": 1}, [1, 2]):
            r = h.post("/v1/overlap", json=body)
            assert r.status_code == 400, body
            assert r.json()["error"] == "bad_request"
            assert "DROP" not in r.text and "\x07" not in r.text and "nonsense" not in r.text


def test_unsigned_foreign_replayed_and_altered_requests_get_401(room, server):
    url, _ = server
    stranger = load_identity_private(room.key("airline"))
    with httpx.Client(base_url=url, timeout=TIMEOUT) as h:
        assert h.post("/v1/overlap", json={}).json() == {"error": "not_authenticated",
                                                          "reason": "missing_signature"}
        request = h.build_request("POST", "/v1/overlap", json={})
        sign_request(request, stranger, identity_fingerprint(stranger.public_key()))
        assert h.send(request).status_code == 200
        assert h.send(request).json()["reason"] == "replayed"
        request = h.build_request("POST", "/v1/overlap", content=b'{"by":[]}')
        sign_request(request, stranger, identity_fingerprint(stranger.public_key()))
        headers = {k: v for k, v in request.headers.items() if k != "content-length"}
        r = h.post("/v1/overlap", headers=headers, content=b'{"by":["airline.tier"]}')
        assert r.json()["reason"] == "digest_mismatch"
        assert h.get("/console/").status_code == 401
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = Ed25519PrivateKey.generate()
    with httpx.Client(base_url=url, timeout=TIMEOUT,
                      auth=SignatureAuth(other, identity_fingerprint(other.public_key()))) as h:
        assert h.get("/v1/hello").json()["reason"] == "unknown_key"
    with pytest.raises(NotAuthenticated):
        from cleanroom.server import ServerClient

        ServerClient(url, private_key=other).hello()


def test_every_answer_carries_a_signed_head_and_every_entry_is_signed(room, server):
    url, state = server
    operator = load_identity_private(room.key("operator")).public_key()
    with raw(room, "airline", url) as h:
        for _ in range(2):
            r = h.post("/v1/overlap", json={})
            v, count, head, sig = r.headers[HEAD_HEADER].split(" ")
            assert v == "v1" and verify_head(operator, head, int(count), sig)
        r = h.post("/v1/query", json={"sql": "SELECT nothing"})  # a refusal carries one too
        assert r.status_code == 422 and HEAD_HEADER in r.headers
    entries = state.audit.entries()
    assert entries and all(verify_head(operator, e["sha256"], e["seq"] + 1,
                                       e["operator_signature"]) for e in entries)
