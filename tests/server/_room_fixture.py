"""A served collaboration for tests: one folder per party (airline/, brand/, agency/,
compliance/, operator/) with its own identity key: two owners, an agency that may query but
receives nothing, an auditor, and the operator, whose folder holds the collaboration;
token files made in each party's folder; a server on loopback, stopped by the test."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _engine_fixtures import (
    AIRLINE_ATTRS,
    BRAND_ATTRS,
    COLLAB_ID,
    airline_policy,
    brand_policy,
    write_party,
)
from _server_harness import serve_in_thread
from conftest import collaboration_doc

from cleanroom.config import write_toml
from cleanroom.server import ServerClient, ServerState, build_app
from protocols import load_identity_private, write_identity

MEMBERS = ("airline", "brand", "agency")


def person(i: int) -> dict:
    return {"email": f"person{i}@example.com", "phone": f"+1650555{i:04d}"}


def records() -> tuple[list[dict], list[dict]]:
    """40 people in both (24 gold, 16 silver at the airline), 20 airline-only, 10 brand-only."""
    airline, brand = [], []
    for i in range(40):
        airline.append({**person(i), "tier": "gold" if i < 24 else "silver",
                        "home_airport": "SFO", "miles": 100 + i})
        brand.append({**person(i), "segment": "sports" if i % 2 else "travel",
                      "spend": 10.0 + i})
    for i in range(100, 120):
        airline.append({**person(i), "tier": "blue", "home_airport": "LAX", "miles": 5})
    for i in range(200, 210):
        brand.append({**person(i), "segment": "sports", "spend": 1.0})
    return airline, brand


@dataclass
class Room:
    """Paths of a three-folder collaboration."""

    root: Path

    @property
    def operator(self) -> Path:
        return self.root / "operator"

    @property
    def collab(self) -> Path:
        return self.operator / "collaboration.toml"

    def key(self, who: str) -> Path:
        return self.root / who / f"{who}.key"

    def tokens(self, party: str, version: int = 1) -> Path:
        return self.root / party / f"{party}.v{version}.tokens.parquet"

    def client(self, who: str, url: str, **kw) -> ServerClient:
        return ServerClient(url, self.key(who), **kw)


def make_room(root: Path, *, uploaded: bool = True, minimum: int = 5) -> Room:
    """Write the three folders; with `uploaded`, the token files are already in operator/."""
    room = Room(root)
    for folder in (*MEMBERS, "compliance", "operator"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for who in (*MEMBERS, "compliance", "operator"):
        _, pub = write_identity(room.key(who).with_suffix(""))
        if who != "operator":
            shutil.copy(pub, room.operator / f"{who}.pub")
    airline, brand = records()
    write_party(room.tokens("airline"), "airline", airline, attributes=AIRLINE_ATTRS, seed=1)
    write_party(room.tokens("brand"), "brand", brand, attributes=BRAND_ATTRS, seed=2)
    doc = collaboration_doc(COLLAB_ID, members={"airline": (True, True), "brand": (False, True),
                                                "agency": (True, False)},
                            tables={"airline": "airline", "brand": "brand"},
                            rules=["email", "phone", "name_dob"])
    for m in MEMBERS:
        doc["members"][m]["identity"] = f"{m}.pub"
    doc["auditors"] = {"compliance": {"identity": "compliance.pub"}}
    doc["operator"] = {"identity": "operator.pub"}
    write_toml(room.collab, doc)
    write_toml(room.operator / "airline.policy.toml", airline_policy(minimum))
    write_toml(room.operator / "brand.policy.toml", brand_policy(minimum))
    if uploaded:
        for party in ("airline", "brand"):
            shutil.copy(room.tokens(party), room.operator / f"{party}.tokens.parquet")
    return room


def local_copy(room: Room, dest: Path) -> Path:
    """A copy of the operator's folder without its audit log, for local runs to compare with
    (a local run on the served folder itself would append unsigned entries to its log)."""
    shutil.copytree(room.operator, dest, ignore=shutil.ignore_patterns("audit.jsonl*",
                                                                        ".audit.jsonl*"))
    return dest / room.collab.name


def state_for(room: Room, **kw) -> ServerState:
    return ServerState(room.collab, load_identity_private(room.key("operator")), **kw)


@contextlib.contextmanager
def served(room: Room, **kw) -> Iterator[tuple[str, ServerState]]:
    """A server for `room` on a free loopback port, in a thread; stopped on exit."""
    max_upload = kw.pop("max_upload", None)
    state = state_for(room, **kw)
    app = build_app(state, **({"max_upload": max_upload} if max_upload else {}))
    try:
        with serve_in_thread(app) as url:
            yield url, state
    finally:
        state.close()
