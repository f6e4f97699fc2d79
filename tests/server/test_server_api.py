"""The served clean room end to end: the same answers as locally, the walls between roles."""

from __future__ import annotations

import json

import pytest
from _room_fixture import local_copy, make_room, served

from cleanroom.engine import open_collaboration


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    return make_room(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def server(room):
    with served(room) as (url, state):
        yield url, state


def test_overlap_is_the_same_document_as_locally(room, server, tmp_path):
    url, _ = server
    with room.client("airline", url) as c:
        got = c.overlap(by=["airline.tier"], metrics=["SUM(brand.spend)"])
        assert c.member == "airline"
    with open_collaboration(local_copy(room, tmp_path / "local")) as local:
        want = local.overlap("airline", by=["airline.tier"],
                             metrics=["SUM(brand.spend)"]).to_dict()
    assert json.dumps(got) == json.dumps(want)
    assert got["overlap"] == {"entities": 40}
