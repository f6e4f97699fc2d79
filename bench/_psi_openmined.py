"""One step of OpenMined PSI as its own process, for `python -m bench.psi --cli`.

    python -m bench._psi_openmined STEP WORKDIR

A is the client, B the server; messages pass as files in WORKDIR. This module imports nothing
but the standard library and OpenMined PSI, so each step's process start-up is OpenMined's own
(importing `bench.psi` would add cleanroom's).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def openmined_step(step: str, work: Path) -> None:
    """One OpenMined PSI step as its own process (A is the client, B the server)."""
    import private_set_intersection.python as om

    def items(name: str) -> list[str]:
        return (work / f"om_{name}.txt").read_text().split("\n")

    if step == "server-setup":
        server = om.server.CreateWithNewKey(True)
        (work / "om_server.key").write_bytes(server.GetPrivateKeyBytes())
        client_size = int((work / "om_a.count").read_text())  # OpenMined's server needs it
        setup = server.CreateSetupMessage(1e-9, client_size, items("b"), om.DataStructure.GCS)
        (work / "om_setup.bin").write_bytes(setup.SerializeToString())
    elif step == "client-request":
        client = om.client.CreateWithNewKey(True)
        (work / "om_client.key").write_bytes(client.GetPrivateKeyBytes())
        (work / "om_request.bin").write_bytes(client.CreateRequest(items("a")).SerializeToString())
    elif step == "server-response":
        server = om.server.CreateFromKey((work / "om_server.key").read_bytes(), True)
        request = om.Request()
        request.ParseFromString((work / "om_request.bin").read_bytes())
        (work / "om_response.bin").write_bytes(server.ProcessRequest(request).SerializeToString())
    elif step == "one-process":  # every step in turn, as bench.psi's in-process mode does
        client = om.client.CreateWithNewKey(True)
        server = om.server.CreateWithNewKey(True)
        a = items("a")
        setup = server.CreateSetupMessage(1e-9, len(a), items("b"), om.DataStructure.GCS)
        response = server.ProcessRequest(client.CreateRequest(a))
        (work / "om_result1.json").write_text(json.dumps(client.GetIntersection(setup, response)))
    elif step == "client-intersection":
        client = om.client.CreateFromKey((work / "om_client.key").read_bytes(), True)
        setup, response = om.ServerSetup(), om.Response()
        setup.ParseFromString((work / "om_setup.bin").read_bytes())
        response.ParseFromString((work / "om_response.bin").read_bytes())
        (work / "om_result.json").write_text(json.dumps(client.GetIntersection(setup, response)))
    else:
        raise SystemExit(f"unknown OpenMined step {step!r}")


if __name__ == "__main__":
    openmined_step(sys.argv[1], Path(sys.argv[2]))
