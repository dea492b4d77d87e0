"""Fixtures for the malformed-input tests: the project folder (the shared ``workdir``; ``cli`` comes
from tests/conftest.py too) and a loopback server that answers HTML.  The snapshot that proves
nothing was damaged is ``tests/support/snapshots.py``."""

from __future__ import annotations

import http.server
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def project(workdir: Path) -> Path:
    """The shared ``workdir``: the demo manifests in a temporary folder (the working directory),
    pointed at the served sandbox's demo business."""
    return workdir


class _HTMLHandler(http.server.BaseHTTPRequestHandler):
    """Answers everything with an HTML page, as a proxy or a login wall would."""

    status = 200

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Please sign in</h1>"
                + b"<p>" + b"lorem ipsum " * 2000 + b"</p></body></html>")
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _QuietServer(socketserver.ThreadingTCPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early is not news


@pytest.fixture(params=[200, 502], ids=["html-200", "html-502"])
def html_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A loopback server that answers every request with an HTML page (status 200 or 502)."""
    handler = type("Handler", (_HTMLHandler,), {"status": request.param})
    server = _QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
