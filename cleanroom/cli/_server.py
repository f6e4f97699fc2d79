"""CLI of the clean room as a server: `keys identity`, `serve`, `upload`, `policy put`,
`console-link`. The engine commands reach a server through `_remote`."""

from __future__ import annotations

import re
from pathlib import Path

import click

import protocols
from cleanroom.server import (
    DEFAULT_HOST,
    DEFAULT_MAX_UPLOAD,
    DEFAULT_PORT,
    DEFAULT_WORKERS,
    LINK_TTL,
    ServerState,
    build_app,
    check_url,
    is_loopback,
    run_server,
)

from ._output import emit, emit_json
from ._params import COLLAB_PATH
from ._remote import Server, connect, server_options

_SIZE = re.compile(r"(\d+)\s*(B|KB|MB|GB|TB)?", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


class SizeParam(click.ParamType):  # type: ignore[type-arg]  # generic in some click versions
    """A size in bytes: 500MB, 4GB, 1048576."""

    name = "SIZE"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        m = _SIZE.fullmatch(str(value).strip())
        if m is None or int(m[1]) == 0:
            self.fail(f"{value!r} is not a size such as 500MB or 4GB", param, ctx)
        return int(m[1]) * _UNITS[(m[2] or "B").upper()]


class ServerUrlParam(click.ParamType):  # type: ignore[type-arg]  # generic in some click versions
    """The URL of a clean-room server."""

    name = "URL"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> Server:
        if isinstance(value, Server):
            return value
        try:
            return Server(check_url(str(value)))
        except protocols.ServerError as exc:
            self.fail(str(exc), param, ctx)


URL = ServerUrlParam()


@click.command("identity")
@click.option("--out", "prefix", required=True, metavar="PREFIX",
              help="Writes PREFIX.key (private, mode 0600) and PREFIX.pub (public).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def keys_identity(prefix: str, force: bool, as_json: bool) -> None:
    """Write an Ed25519 identity key pair: how a member, an auditor or the operator is known
    to a clean-room server. Keep PREFIX.key; PREFIX.pub goes into collaboration.toml
    (`identity = "PREFIX.pub"`, or its one line pasted inline)."""
    key_path, pub_path = protocols.write_identity(prefix, force=force)
    fp = protocols.identity_fingerprint(protocols.load_identity_public(pub_path))
    emit({"private_key_file": str(key_path), "public_key_file": str(pub_path),
          "fingerprint": fp}, as_json,
         f"wrote {key_path} (private, mode 0600; keep it) and {pub_path} (public; it goes "
         f"into collaboration.toml), fingerprint {fp}")


@click.command("serve")
@click.argument("collab", type=COLLAB_PATH)
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on; anything but loopback needs TLS.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on (0: any free port; the ready line says which).")
@click.option("--tls-cert", "tls_cert", default=None, metavar="PEM",
              type=click.Path(exists=True, dir_okay=False),
              help="The server's TLS certificate (chain), PEM.")
@click.option("--tls-key", "tls_key", default=None, metavar="PEM",
              type=click.Path(exists=True, dir_okay=False), help="Its private key, PEM.")
@click.option("--identity", "identity", default=None, metavar="KEYFILE",
              envvar="CLEANROOM_IDENTITY",
              help="The operator's identity key (the one `[operator] identity` names); or set "
                   "CLEANROOM_IDENTITY.")
@click.option("--workers", type=click.IntRange(1, 64), default=DEFAULT_WORKERS,
              show_default=True, help="Queries run at the same time (one DuckDB connection "
              "each); more wait their turn.")
@click.option("--max-upload", "max_upload", type=SizeParam(), default=DEFAULT_MAX_UPLOAD,
              show_default="4GB", help="Largest token file accepted.")
@click.option("--memory-limit", default=None, metavar="SIZE",
              help="DuckDB memory limit per connection, e.g. 2GB.")
def serve(collab: Path, host: str, port: int, tls_cert: str | None, tls_key: str | None,
          identity: str | None, workers: int, max_upload: int,
          memory_limit: str | None) -> None:
    """Run the clean room of COLLAB as a server for its members.

    Members reach it with their own identity keys (`[members.NAME] identity` in COLLAB) and
    never see a token file or another party's rows; owners upload their token files and
    policies; auditors read the policies and the audit log, which the operator's key signs.
    Token files may be absent at start. Prints one line with the URL once ready; stops
    gracefully on SIGTERM or Ctrl+C. Without TLS it only listens on a loopback address.
    """
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("TLS needs both --tls-cert and --tls-key")
    if tls_cert is None and not is_loopback(host):
        raise click.UsageError(f"refusing to serve on {host} without TLS: give --tls-cert and "
                               "--tls-key, or use --host 127.0.0.1")
    if not identity:
        raise click.UsageError("the operator's identity key is needed: --identity "
                               "operator.key (or CLEANROOM_IDENTITY)")
    state = ServerState(collab, protocols.load_identity_private(identity), workers=workers,
                        memory_limit=memory_limit)
    app = build_app(state, max_upload=max_upload, secure_cookies=tls_cert is not None)
    missing = state.missing()
    ready = len(state.roster.tables) - len(missing)

    def announce(url: str) -> None:
        click.echo(f"cleanroom: serving {state.roster.name!r} at {url} ({ready} of "
                   f"{len(state.roster.tables)} tables ready; Ctrl+C or SIGTERM stops)")

    try:
        run_server(app, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key,
                   on_ready=announce)
    finally:
        state.close()
    click.echo("cleanroom: stopped", err=True)


@click.command("upload")
@click.argument("url", type=URL)
@click.argument("table")
@click.argument("tokens", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@server_options
def upload(url: Server, table: str, tokens: str, as_json: bool, identity: str | None,
           ca_cert: str | None) -> None:
    """Send TOKENS, your token file, to the server as TABLE (a table you own).

    The server checks it against the collaboration (id, protocol, key fingerprint, your party
    name, your policy) before it replaces the previous version; the upload is audited with
    the file's SHA-256.
    """
    with connect(url, identity, ca_cert) as client:
        doc = client.upload(table, tokens)
    emit(doc, as_json, f"uploaded {tokens} as table {doc.get('table')}: {doc.get('rows')} "
         f"rows, sha256 {doc.get('sha256')} (replaces the previous version)")


@click.command("put")
@click.argument("url", type=URL)
@click.argument("table")
@click.argument("policy_file", metavar="POLICY", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@server_options
def policy_put(url: Server, table: str, policy_file: str, as_json: bool, identity: str | None,
               ca_cert: str | None) -> None:
    """Put POLICY (TOML) in force on TABLE, a table you own, on the server at URL.

    The server validates it, keeps it as the next version and audits the change; later
    queries use it.
    """
    with connect(url, identity, ca_cert) as client:
        doc = client.put_policy(table, policy_file)
    emit(doc, as_json, f"policy of table {doc.get('table')} is now version "
         f"{doc.get('version')} (sha256 {doc.get('sha256')})")


@click.command("console-link")
@click.argument("url", type=URL)
@click.option("--page", type=click.Choice(["overview", "policies", "audit", "report"]),
              default="overview", show_default=True, help="The page the link opens.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@server_options
def console_link(url: Server, page: str, as_json: bool, identity: str | None,
                 ca_cert: str | None) -> None:
    """Print a one-time link that opens the server's web console in a browser.

    The link works once, for a few minutes, and signs the browser in as your identity (an
    HttpOnly session cookie); treat it like a password until it is used.
    """
    with connect(url, identity, ca_cert) as client:
        link = client.console_link("" if page == "overview" else page)
    if as_json:
        emit_json({"url": link, "expires_in_seconds": int(LINK_TTL)})
    else:
        click.echo(link)
