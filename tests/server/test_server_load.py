"""Load and faults: concurrent signed clients leave one signed audit entry per request; a server
killed mid-upload leaves the previous table whole; a restarted server keeps its state."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from _engine_fixtures import BRAND_ATTRS, brand_policy, write_party
from _process import serve_process
from _room_fixture import make_room, records, served

from cleanroom.config import write_toml
from cleanroom.server import ServerClient, sign_request, verify_head
from protocols import identity_fingerprint, load_identity_private

CLIENTS, REQUESTS = 8, 5
SQL = ("SELECT a.tier, COUNT(DISTINCT a.entity_id) AS people FROM airline a JOIN brand b "
       "ON a.entity_id = b.entity_id GROUP BY a.tier")


def test_concurrent_signed_clients_leave_one_signed_entry_per_request(tmp_path):
    room = make_room(tmp_path)
    operator = load_identity_private(room.key("operator")).public_key()
    with served(room, workers=4) as (url, state):
        before = len(state.audit.entries())
        barrier = threading.Barrier(CLIENTS)

        def client(i: int) -> list[int]:
            got = []
            with ServerClient(url, private_key=load_identity_private(room.key("airline")),
                              timeout=60) as c:
                barrier.wait(timeout=30)
                for k in range(REQUESTS):
                    if (i + k) % 3 == 0:
                        got.append(len(c.query(SQL)["rows"]))
                    elif (i + k) % 3 == 1:
                        got.append(c.overlap()["overlap"]["entities"])
                    else:
                        got.append(len(c.overlap(by=["airline.tier"])["segments"]))
            return got

        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(client, range(CLIENTS), timeout=120))
        entries = state.audit.entries()
    assert all(len(r) == REQUESTS for r in results)
    assert {x for r in results for x in r} <= {2, 40}
    assert len(entries) - before == CLIENTS * REQUESTS
    assert all(e["decision"] == "accepted" for e in entries[before:])
    assert [e["seq"] for e in entries] == list(range(len(entries)))
    assert all(verify_head(operator, e["sha256"], e["seq"] + 1, e["operator_signature"])
               for e in entries)


def test_a_restarted_server_keeps_uploads_policies_and_the_log(tmp_path):
    room = make_room(tmp_path)
    airline, brand = records()
    brand += [{"email": f"person{i}@example.com", "segment": "travel", "spend": 3.0}
              for i in range(100, 105)]
    write_party(room.tokens("brand", 2), "brand", brand, attributes=BRAND_ATTRS, seed=3)
    write_toml(tmp_path / "strict.toml", brand_policy(7))
    with served(room) as (url, state):
        with room.client("brand", url) as c:
            c.upload("brand", room.tokens("brand", 2))
            assert c.put_policy("brand", tmp_path / "strict.toml")["version"] == 2
        with room.client("airline", url) as c:
            first = c.overlap(by=["airline.tier"])
        count = len(state.audit.entries())
    with served(room) as (url, state):
        with room.client("airline", url) as c:
            again = c.overlap(by=["airline.tier"])
            entries, summary = c.audit()  # checked against the heads kept before the restart
    assert again == first and again["overlap"] == {"entities": 45} and again["threshold"] == 7
    assert summary["entries"] == count + 1 and summary["kept_head"] == count + 1
    assert entries[count - 1]["request"]["analysis"] == "overlap"


def test_a_server_killed_mid_upload_leaves_the_previous_table_whole(tmp_path):
    room = make_room(tmp_path)
    tokens = room.operator / "brand.tokens.parquet"
    before = tokens.read_bytes()
    airline, brand = records()
    write_party(room.tokens("brand", 2), "brand", brand * 40, attributes=BRAND_ATTRS, seed=4)
    data = room.tokens("brand", 2).read_bytes()
    key = load_identity_private(room.key("brand"))
    half = threading.Event()
    release = threading.Event()

    def body():
        yield data[: len(data) // 2]
        half.set()
        release.wait(timeout=30)
        yield data[len(data) // 2:]

    errors: list[BaseException] = []
    with serve_process(room.collab, room.key("operator")) as server:
        with ServerClient(server.url, room.key("airline")) as c:
            assert c.overlap()["overlap"] == {"entities": 40}

        def send() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as h:
                request = h.build_request("PUT", "/v1/tables/brand/tokens", content=body(),
                                          headers={"content-length": str(len(data))})
                sign_request(request, key, identity_fingerprint(key.public_key()),
                             sha256=hashlib.sha256(data).digest())
                try:
                    h.send(request)
                except httpx.HTTPError as exc:
                    errors.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        assert half.wait(timeout=30)
        deadline = time.monotonic() + 10
        while not list(room.operator.glob(".cleanroom-upload-brand-*")):
            assert time.monotonic() < deadline, "the upload never reached the disk"
            time.sleep(0.05)
        server.kill()  # SIGKILL mid-stream: no handler runs
        release.set()
        sender.join(timeout=30)
    assert errors, "the client should see the connection drop"
    assert tokens.read_bytes() == before  # the previous table, untouched
    assert list(room.operator.glob(".cleanroom-upload-brand-*"))  # the crash left its part
    with serve_process(room.collab, room.key("operator")) as server:
        assert not list(room.operator.glob(".cleanroom-upload-*"))  # removed at start
        with ServerClient(server.url, room.key("airline")) as c:
            assert c.overlap()["overlap"] == {"entities": 40}
            entries = c.audit()[0]
    assert not any(e["request"].get("analysis") == "upload" for e in entries)


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_serve_prints_its_url_and_stops_gracefully(tmp_path, signal_name):
    import signal

    room = make_room(tmp_path)
    with serve_process(room.collab, room.key("operator")) as server:
        assert server.line.startswith("cleanroom: serving 'Airline x Brand' at http://127.0.0.1:")
        assert "2 of 2 tables ready" in server.line
        assert httpx.get(f"{server.url}/health", timeout=10).json() == {"ok": True}
        assert server.stop(getattr(signal, signal_name)) == 0
        assert "cleanroom: stopped" in server.proc.stderr.read()


def test_an_upload_cut_off_by_the_client_leaves_nothing_behind(tmp_path):
    import socket

    room = make_room(tmp_path)
    before = (room.operator / "brand.tokens.parquet").read_bytes()
    key = load_identity_private(room.key("brand"))
    data = room.tokens("brand").read_bytes()
    with served(room) as (url, state):
        request = httpx.Request("PUT", f"{url}/v1/tables/brand/tokens", content=data)
        sign_request(request, key, identity_fingerprint(key.public_key()))
        head = f"PUT /v1/tables/brand/tokens HTTP/1.1\r\nhost: {request.url.netloc.decode()}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in request.headers.items() if k != "host")
        host, port = request.url.host, request.url.port
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(head.encode() + b"\r\n" + data[:100])
            deadline = time.monotonic() + 10
            while not list(room.operator.glob(".cleanroom-upload-brand-*")):
                assert time.monotonic() < deadline
                time.sleep(0.02)
        deadline = time.monotonic() + 10
        while list(room.operator.glob(".cleanroom-upload-brand-*")):
            assert time.monotonic() < deadline, "the cut-off upload was not removed"
            time.sleep(0.02)
        with room.client("airline", url) as c:
            assert c.overlap()["overlap"] == {"entities": 40}
    assert (room.operator / "brand.tokens.parquet").read_bytes() == before
