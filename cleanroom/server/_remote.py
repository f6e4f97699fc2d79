"""The member's side: a client that signs every request and checks every answer.

    with ServerClient("https://room.example:8765", "airline.key", ca_cert="ca.pem") as c:
        c.overlap(by=["airline.tier"])        # the dict `cleanroom overlap --json` prints
        c.query("SELECT ...")                 # {"columns": [...], "rows": [...]}
        c.audit()                             # entries, verified: chain, signatures, receipts
        c.budget()                            # the dict `cleanroom budget --json` prints

Answers are the same documents the local commands print; errors come back as the same
exceptions (PolicyRefusal exits 3, NotAuthenticated and NotAllowed exit 4, others 1) with the
server's one-line message, stripped of control characters. Every answer's signed audit head
is checked against the operator's key and kept (see `_receipts`). Plain http is refused except
to a loopback address; `ca_cert` trusts a private certificate authority.
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleanroom.engine import verify_entries
from protocols import (
    AUTH_REASONS,
    AuditError,
    CleanroomError,
    ConfigError,
    DecryptionError,
    InputError,
    KeyMaterialError,
    ManifestMismatch,
    NotAllowed,
    NotAuthenticated,
    PolicyRefusal,
    ServerError,
    identity_fingerprint,
    load_identity_private,
    load_identity_public,
)

from ._client import SignatureAuth, sign_request
from ._receipts import Receipt, Receipts, receipts_path
from ._serve import is_loopback
from ._signing import verify_head

HEAD_HEADER = "cleanroom-audit-head"
DEFAULT_TIMEOUT = 300.0
_CHUNK = 1 << 20
_KINDS: dict[str, type[CleanroomError]] = {
    "InputError": InputError, "ConfigError": ConfigError, "ManifestMismatch": ManifestMismatch,
    "AuditError": AuditError, "KeyMaterialError": KeyMaterialError,
    "DecryptionError": DecryptionError}
_HEAD = re.compile(r"v1 (\d{1,18}) ([0-9a-f]{64}) (\S{1,200})")


def _plain(text: Any, limit: int = 2000) -> str:
    """A message from the server, on one line, without control characters."""
    out = "".join("?" if unicodedata.category(c) in ("Cc", "Cf") else c for c in str(text))
    return out[:limit]


def check_url(url: str) -> str:
    """A server URL: http(s)://host[:port], plain http only to a loopback address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServerError(f"{_plain(url, 200)} is not a server URL (https://host:port)")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ServerError("refusing plain http to a server that is not on this machine: "
                          "answers would cross the network in clear (use https)")
    return url.rstrip("/")


class ServerClient:
    """A signed connection to one clean-room server, as one identity."""

    def __init__(self, url: str, identity: str | os.PathLike[str] | None = None, *,
                 private_key: Ed25519PrivateKey | None = None,
                 ca_cert: str | os.PathLike[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, keep_receipts: bool = True) -> None:
        self.url = check_url(url)
        if private_key is None:
            if identity is None:
                raise KeyMaterialError("an identity key is needed to reach a server "
                                       "(--identity KEYFILE or CLEANROOM_IDENTITY)")
            private_key = load_identity_private(identity)
        self._key = private_key
        self.keyid = identity_fingerprint(private_key.public_key())
        verify: ssl.SSLContext | bool = True
        if ca_cert is not None:
            try:
                verify = ssl.create_default_context(cafile=os.fspath(ca_cert))
            except (OSError, ssl.SSLError):
                raise ServerError(f"{os.fspath(ca_cert)}: not a readable PEM certificate "
                                  "authority") from None
        self._http = httpx.Client(base_url=self.url, auth=SignatureAuth(private_key, self.keyid),
                                  timeout=httpx.Timeout(timeout, connect=10.0), verify=verify,
                                  follow_redirects=False, trust_env=False)
        self.receipts = (Receipts(receipts_path(identity))
                         if keep_receipts and identity is not None else None)
        self._hello: dict[str, Any] | None = None
        self._operator: Ed25519PublicKey | None = None

    def __repr__(self) -> str:
        return f"ServerClient({self.url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------
    def _send(self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
              request: httpx.Request | None = None) -> httpx.Response:
        try:
            if request is not None:
                return self._http.send(request, auth=None)
            return self._http.request(method, path, json=json, content=content)
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc) or isinstance(
                    exc.__cause__, ssl.SSLError):
                raise ServerError(f"{self.url}: the server's TLS certificate is not trusted "
                                  "(for a private certificate authority pass --ca-cert PEM)"
                                  ) from None
            raise ServerError(f"cannot reach {self.url} (connection failed)") from None
        except httpx.TimeoutException:
            raise ServerError(f"{self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ServerError(f"{self.url}: the connection failed ({type(exc).__name__})"
                              ) from None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if response.status_code != 200 or not isinstance(doc, dict | list):
            raise _error(response.status_code, doc, self.url)
        if path != "/v1/hello":
            self._check_head(response)
        return doc

    def _check_head(self, response: httpx.Response) -> None:
        value = response.headers.get(HEAD_HEADER, "")
        match = _HEAD.fullmatch(value)
        hello = self.hello()
        operator = self._operator
        if match is None or operator is None:
            raise ServerError(f"{self.url} answered without a signed audit head")
        count, head, sig = int(match[1]), match[2], match[3]
        if not verify_head(operator, head, count, sig):
            raise AuditError(f"{self.url}: the audit head of this answer is not signed by the "
                             "operator's key")
        if self.receipts is not None:
            self.receipts.observe(hello["collaboration"]["id"],
                                  Receipt(hello["operator"], count, head, sig))

    # -- calls -----------------------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        """Who this identity is to the server, the collaboration, the operator's key."""
        if self._hello is None:
            doc = self._call("GET", "/v1/hello")
            try:
                operator = load_identity_public(str(doc["operator"]))
                cid = str(doc["collaboration"]["id"])
                if not isinstance(doc["you"]["name"], str) or not isinstance(doc["tables"],
                                                                             dict):
                    raise TypeError
            except (KeyError, TypeError, KeyMaterialError):
                raise ServerError(f"{self.url} is not a cleanroom server (unexpected hello)"
                                  ) from None
            if self.receipts is not None:
                self.receipts.pin(cid, str(doc["operator"]))
            self._operator, self._hello = operator, doc
        return self._hello

    @property
    def member(self) -> str:
        """The name this identity has in the collaboration."""
        return str(self.hello()["you"]["name"])

    def overlap(self, as_member: str | None = None, *, by: list[str] | tuple[str, ...] = (),
                metrics: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """The overlap, as `cleanroom overlap --json` prints it."""
        return self._call("POST", "/v1/overlap", json={"as": as_member, "by": list(by),
                                                      "metrics": list(metrics)})

    def query(self, sql: str, as_member: str | None = None) -> dict[str, Any]:
        """Analyst SQL: {"columns": [...], "rows": [[...], ...]}."""
        return self._call("POST", "/v1/query", json={"as": as_member, "sql": sql})

    def report(self, as_member: str | None = None, *, by: list[str] | tuple[str, ...] = (),
               metric: str | None = None) -> dict[str, Any]:
        """The report's figures (render them with `cleanroom.report.render_report`)."""
        return self._call("POST", "/v1/report", json={"as": as_member, "by": list(by),
                                                     "metric": metric})

    def policy(self) -> dict[str, Any]:
        """The rules in force, as `cleanroom policy check --json` prints them."""
        return self._call("GET", "/v1/policy")

    def budget(self) -> dict[str, Any]:
        """The privacy budget, as `cleanroom budget --json` prints it."""
        return self._call("GET", "/v1/budget")

    def audit(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The audit log, verified here: the hash chain, the operator's signature of every
        entry, and the head this member kept from earlier answers (the log must extend it).
        Returns the entries and a summary."""
        hello = self.hello()
        cid = hello["collaboration"]["id"]
        kept = self.receipts.get(cid) if self.receipts is not None else None
        doc = self._call("GET", "/v1/audit")
        entries = doc.get("entries") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise ServerError(f"{self.url} sent an audit log in an unexpected form")
        operator = self._operator
        assert operator is not None
        result = verify_entries(entries, name="the server's audit log",
                                check=lambda h, n, s: verify_head(operator, h, n, s))
        if self.receipts is not None and kept is not None:
            self.receipts.check_log(kept, entries)
        return entries, {"ok": True, "entries": result.entries,
                         "head_sha256": result.head_sha256,
                         "signed_by": identity_fingerprint(operator),
                         "kept_head": kept.count if kept is not None else None}

    def _own(self, table: str) -> None:
        hello = self.hello()
        tables = hello.get("tables") or {}
        if table not in tables:
            raise ConfigError(f"no table {_plain(table, 100)!r} in the collaboration "
                              f"(tables: {', '.join(tables)})")
        owner = tables[table].get("owner")
        if owner != self.member:
            raise NotAllowed("owner", f"only {owner}, the owner of table {table!r}, may "
                             "change it")

    def upload(self, table: str, tokens: str | os.PathLike[str]) -> dict[str, Any]:
        """Send a token file for a table this member owns; the previous one is replaced."""
        self._own(table)
        path = Path(tokens)
        try:
            size = path.stat().st_size
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
        except OSError as exc:
            raise InputError(f"cannot read ({exc.strerror})", file=os.fspath(path)) from None

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    yield chunk

        request = self._http.build_request(
            "PUT", f"/v1/tables/{quote(table, safe='')}/tokens", content=chunks(),
            headers={"content-length": str(size), "content-type": "application/octet-stream"})
        sign_request(request, self._key, self.keyid, sha256=digest.digest())
        return self._call("PUT", "", request=request)

    def put_policy(self, table: str, policy: str | os.PathLike[str]) -> dict[str, Any]:
        """Put a policy in force on a table this member owns (the server keeps versions)."""
        self._own(table)
        try:
            text = Path(policy).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read ({exc.strerror})", file=os.fspath(policy)) from None
        return self._call("PUT", f"/v1/tables/{quote(table, safe='')}/policy", content=text)

    def console_link(self, page: str = "") -> str:
        """A one-time, short-lived link that opens the web console in a browser."""
        doc = self._call("POST", "/v1/console-link", json={"next": page})
        return str(doc.get("url", "")) if isinstance(doc, dict) else ""


def _error(status: int, doc: Any, url: str) -> CleanroomError:
    """The exception for an error answer (the same kinds, hence exit codes, as locally)."""
    doc = doc if isinstance(doc, dict) else {}
    error = doc.get("error")
    if status == 401 and error == "not_authenticated":
        reason = doc.get("reason")
        return NotAuthenticated(reason if reason in AUTH_REASONS else "bad_signature")
    if status == 403 and error == "not_allowed":
        return NotAllowed(_plain(doc.get("rule"), 40), _plain(doc.get("message")))
    if status == 422 and error == "refused":
        rules = doc.get("rules")
        return PolicyRefusal(_plain(doc.get("rule"), 80), _plain(doc.get("message")),
                             rules=[_plain(r, 80) for r in rules]
                             if isinstance(rules, list) else None)
    if error == "failed":
        kind = _KINDS.get(str(doc.get("kind")), ServerError)
        return kind(_plain(doc.get("message")))
    if error == "not_ready":
        return ServerError(_plain(doc.get("message")))
    if error in ("bad_request", "not_found"):
        return ServerError(f"{url} refused the request: {_plain(doc.get('reason'), 200)}")
    if error == "too_large":
        return ServerError(f"{url} refused the request: the body is too large")
    if error == "internal":
        return ServerError(f"{url} failed (an internal error; the operator sees its kind)")
    return ServerError(f"{url} answered with HTTP status {status}")
