"""Serving the sandbox with uvicorn on loopback: in a background thread, or in the foreground.

`serve_in_thread(db_path)` is a context manager for tests and the CLI: it binds a socket on
127.0.0.1 (port 0 = a free port), runs uvicorn in a daemon thread, waits until it accepts
connections, yields a `ServedSandbox` (`base_url`, `gateway_url`, `fallback_url`,
`operator_url`), and on exit asks uvicorn to stop and joins the thread.

Only loopback hosts are accepted (`127.0.0.0/8`, `::1`, `localhost`): the sandbox has fixed,
published tokens and must never listen on a network interface.

uvicorn picks httptools and uvloop when they are installed (they roughly halve the latency; see
bench/bench_sandbox.py). The traceback uvicorn logs for an intentionally dropped answer
(`ResponseDropped`) is filtered out of its error log.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .app import ResponseDropped, create_app


class NotLoopback(ValueError):
    """A host that is not a loopback address was asked for."""


class _DropFilter(logging.Filter):
    """Hide uvicorn's error records for answers the sandbox dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ResponseDropped)


_filter = _DropFilter()
logging.getLogger("uvicorn.error").addFilter(_filter)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on a loopback `host` (NotLoopback otherwise)."""
    if not is_loopback(host):
        raise NotLoopback(f"refusing to listen on {host!r}: the sandbox serves loopback only "
                          "(use 127.0.0.1, ::1 or localhost)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it Nagle + delayed ACK add ~40 ms to every answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1" if host == "localhost" else host.strip("[]"), port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def base_url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app: Starlette, *, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for `app` that leaves the process's logging configuration alone.

    No proxy-header rewriting (`X-Forwarded-*`): nothing stands in front of a loopback sandbox,
    and it reads neither the client's address nor the scheme."""
    config = uvicorn.Config(app, log_config=None, log_level=log_level, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=2, proxy_headers=False)
    return uvicorn.Server(config)


class SandboxURLs:
    """The URLs of a sandbox served at `base_url` (`http://host:port`): its two doors and the
    operator API (shared with the benchmarks' sandbox in a child process)."""

    base_url: str

    @property
    def gateway_url(self) -> str:
        return self.base_url + "/apigw"

    @property
    def fallback_url(self) -> str:
        return self.base_url + "/api2"

    @property
    def operator_url(self) -> str:
        return self.base_url + "/_sandbox"


@dataclass
class ServedSandbox(SandboxURLs):
    """A running sandbox: its URLs, and the app (for `app.state.sandbox` in tests)."""

    base_url: str
    app: Starlette


@contextmanager
def serve_in_thread(db_path: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                    operator: bool = True, **app_options: Any) -> Iterator[ServedSandbox]:
    """Run the sandbox on `db_path` under uvicorn in a background thread while the block runs.

    Extra keyword arguments go to `create_app` (`gateway_failures`, `seed_demo`)."""
    sock = bind(host, port)
    app = create_app(db_path, operator=operator, **app_options)
    server = make_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="reconciler-sandbox", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.005)
        yield ServedSandbox(base_url_of(sock), app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
