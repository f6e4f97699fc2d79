"""A server URL in place of COLLAB: the engine commands reach a clean-room server instead of
the files, with the same flags, the same JSON and the same exit statuses.

    cleanroom overlap https://room.example:8765 --identity airline.key --ca-cert ca.pem --json

`COLLAB_OR_URL` turns an http(s) URL into a `Server` and anything else into a collaboration
path; `server_options` adds `--identity KEYFILE` (or CLEANROOM_IDENTITY) and `--ca-cert PEM`;
`connect` opens the signed client. With a URL `--as` is optional (the identity says who asks);
with a file it is required, as before (`local_member`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from cleanroom.config import Collaboration, Roster, read_toml
from cleanroom.engine import AuditLog, VerifyResult
from cleanroom.server import ServerClient, check_url, verify_head
from protocols import ServerError, identity_fingerprint

from ._params import COLLAB_PATH

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Server:
    """A clean-room server named on the command line."""

    url: str

    def __str__(self) -> str:
        return self.url


class CollabOrUrlParam(click.ParamType):  # type: ignore[type-arg]  # generic in some click versions
    """A collaboration file, or the URL of a clean-room server (http:// or https://)."""

    name = "COLLAB|URL"

    def __init__(self, path: click.Path = COLLAB_PATH) -> None:
        self.path = path

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Path | Server:
        if isinstance(value, Path | Server):
            return value
        text = str(value)
        if text.startswith(("http://", "https://")):
            try:
                return Server(check_url(text))
            except ServerError as exc:
                self.fail(str(exc), param, ctx)
        return Path(os.fsdecode(self.path.convert(value, param, ctx)))


COLLAB_OR_URL = CollabOrUrlParam()


def server_options(f: F) -> F:
    """`--identity KEYFILE` (env CLEANROOM_IDENTITY) and `--ca-cert PEM`, for a server URL."""
    f = click.option("--ca-cert", "ca_cert", default=None, metavar="PEM",
                     type=click.Path(exists=True, dir_okay=False),
                     help="With a server URL: trust this certificate authority (a private "
                          "CA's certificate, PEM).")(f)
    f = click.option("--identity", "identity", default=None, metavar="KEYFILE",
                     envvar="CLEANROOM_IDENTITY",
                     help="With a server URL: your identity key (from `cleanroom keys "
                          "identity`); or set CLEANROOM_IDENTITY.")(f)
    return f


def connect(server: Server, identity: str | None, ca_cert: str | None) -> ServerClient:
    """A signed client for `server` as the identity in `identity`."""
    if not identity:
        raise click.UsageError("a server URL needs --identity KEYFILE (or CLEANROOM_IDENTITY)")
    return ServerClient(server.url, identity, ca_cert=ca_cert)


def local_member(as_member: str | None) -> str:
    """`--as` with a collaboration file: required, exactly as before."""
    if as_member is None:
        ctx = click.get_current_context()
        param = next(p for p in ctx.command.params if "--as" in getattr(p, "opts", ()))
        raise click.MissingParameter(ctx=ctx, param=param)
    return as_member


def verify_local_log(collab: Path) -> tuple[list[dict[str, Any]], VerifyResult, str | None]:
    """A local audit log, verified; with an `[operator] identity` in the collaboration, every
    entry must carry the operator's signature. Returns entries, result, signer fingerprint."""
    log = AuditLog(Collaboration.audit_log_path(collab))
    operator = (Roster.from_path(collab).operator
                if "operator" in read_toml(os.fspath(collab)) else None)
    if operator is None:
        return log.entries(), log.verify(), None
    key = operator

    def check(head: str, count: int, signature: str) -> bool:
        return verify_head(key, head, count, signature)

    return log.entries(check=check), log.verify(check=check), identity_fingerprint(operator)
