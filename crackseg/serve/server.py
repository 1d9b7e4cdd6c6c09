"""Running the app with uvicorn on a socket bound first (so a busy port is a clear error, and port 0
picks a free one): in the foreground for `crackseg serve`, or in a background thread (`running`)
for tests and notebooks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from crackseg.errors import CrackSegError


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on (host, port); CrackSegError if that address is unusable."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as err:
        sock.close()
        reason = getattr(err, "strerror", None) or str(err)
        raise CrackSegError(
            f"--host {host} --port {port}: cannot listen there ({reason}). "
            "Choose another port with --port, or --port 0 for any free one."
        ) from None
    sock.set_inheritable(True)
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def server(app, *, log_level: str = "info", access_log: bool = True) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=access_log))


@contextmanager
def running(app, host: str = "127.0.0.1", port: int = 0, timeout: float = 20.0) -> Iterator[str]:
    """Serve `app` from a background thread for the duration of the block; yields its base URL."""
    sock = bind(host, port)
    srv = server(app, log_level="warning", access_log=False)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not srv.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {url(sock)}")
            time.sleep(0.02)
        yield url(sock)
    finally:
        srv.should_exit = True
        thread.join(timeout)
        sock.close()
