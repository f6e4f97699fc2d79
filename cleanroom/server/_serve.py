"""Run the server: bind, say the URL once ready, stop gracefully on SIGTERM or SIGINT.

`run_server` binds the socket itself (so `port=0` picks a free port and the ready line says
which), refuses a non-loopback address without TLS, and serves with uvicorn without an access
log (a console login link travels in a URL and must not land in a log file). A signal stops
accepting connections, lets the requests in flight finish (up to `grace` seconds), then
returns; state lives in files, so a restarted server carries on where this one stopped.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from protocols import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """True for a loopback address (127.0.0.0/8, ::1) or the name `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_url(host: str, port: int, *, tls: bool) -> str:
    """The base URL members use for `host` and `port`."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free port."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ConfigError(f"cannot resolve host {host!r}") from None
    family, _, _, _, address = infos[0]
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP; without it a response's body waits for the client's delayed ACK (about 40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(128)
    return sock


class _Server(uvicorn.Server):
    """uvicorn, announcing readiness once, and stopping on a signal without re-raising it."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready
        self.signalled: int | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(sig: int, frame: FrameType | None) -> None:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True
            self.signalled = sig

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def run_server(app: ASGIApp, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
               tls_cert: str | Path | None = None, tls_key: str | Path | None = None,
               on_ready: Callable[[str], None] = print, grace: float = 10.0) -> int | None:
    """Serve `app` until a signal; return the signal that stopped it (None otherwise).

    `on_ready(url)` is called once the server accepts connections.
    """
    tls = tls_cert is not None
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
    if not tls and not is_loopback(host):
        raise ConfigError(f"refusing to serve on {host} without TLS: members' answers would "
                          "cross the network in clear (give --tls-cert and --tls-key, or use "
                          "--host 127.0.0.1)")
    sock = bind(host, port)
    url = server_url(host, sock.getsockname()[1], tls=tls)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", server_header=False,
        proxy_headers=False, timeout_graceful_shutdown=int(grace),
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None)
    try:
        config.load()
    except (OSError, ValueError) as exc:
        sock.close()
        raise ConfigError(f"cannot use the TLS certificate or key ({type(exc).__name__})"
                          ) from None
    server = _Server(config, lambda: on_ready(url))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return server.signalled


@contextlib.contextmanager
def serving(app: ASGIApp, *, host: str = DEFAULT_HOST, port: int = 0,
            start_timeout: float = 30.0) -> Iterator[str]:
    """Serve `app` on a loopback address from a background thread (the demo, tests); yield
    its URL once it accepts connections; stop it (gracefully) on exit."""
    if not is_loopback(host):
        raise ConfigError("a background server only listens on a loopback address")
    sock = bind(host, port)
    url = server_url(host, sock.getsockname()[1], tls=False)
    ready = threading.Event()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            server_header=False, proxy_headers=False,
                            timeout_graceful_shutdown=5)
    server = _Server(config, ready.set)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not ready.wait(0.05):
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("the background server did not start")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
