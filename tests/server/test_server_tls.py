"""TLS: a private CA trusted with --ca-cert, refused without it; no plain http off loopback."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl

import httpx
import pytest
from _process import serve_process
from _room_fixture import make_room
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cleanroom.cli import main
from cleanroom.server import ServerClient
from protocols import ServerError


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write_ca_and_cert(d):
    """A private CA and a certificate for 127.0.0.1 it signed (PEM files in `d`)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("test CA")).issuer_name(_name("test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d / "ca.pem", d / "cert.pem", d / "key.pem"


def test_tls_with_a_private_ca(tmp_path):
    room = make_room(tmp_path / "room")
    ca, cert, key = write_ca_and_cert(tmp_path)
    with serve_process(room.collab, room.key("operator"), "--tls-cert", str(cert),
                       "--tls-key", str(key)) as server:
        assert server.url.startswith("https://127.0.0.1:")
        r = cli("overlap", server.url, "--identity", room.key("airline"), "--ca-cert", ca,
                "--json")
        assert r.exit_code == 0, r.output
        r = cli("overlap", server.url, "--identity", room.key("airline"))
        assert r.exit_code == 1 and "TLS certificate is not trusted" in r.stderr
        assert "--ca-cert" in r.stderr
        with ServerClient(server.url, room.key("airline"), ca_cert=ca) as c:
            link = c.console_link()
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=30,
                          follow_redirects=False) as h:
            cookie = h.get(link).headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com"])
def test_no_plain_http_off_loopback(tmp_path, host):
    room = make_room(tmp_path)
    r = cli("serve", room.collab, "--identity", room.key("operator"), "--host", host)
    assert r.exit_code == 2 and f"refusing to serve on {host} without TLS" in r.stderr
    with pytest.raises(ServerError, match="refusing plain http"):
        ServerClient(f"http://{host}:8765", room.key("airline"))
    r = cli("overlap", f"http://{host}:8765", "--identity", room.key("airline"))
    assert r.exit_code == 2 and "refusing plain http" in r.stderr


def test_serve_needs_the_operators_own_key(tmp_path):
    room = make_room(tmp_path)
    r = cli("serve", room.collab)
    assert r.exit_code == 2 and "operator's identity key is needed" in r.stderr
    r = cli("serve", room.collab, "--identity", room.key("airline"))
    assert r.exit_code == 1
    assert r.stderr == ("error: this identity key is not the operator's declared in "
                        "collaboration.toml ([operator] identity)\n")
