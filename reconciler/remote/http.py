"""The client's HTTP stack: aiohttp behind httpx's transport seam, bounded and kept in step.

Why aiohttp: measured with the dispatcher in front (``bench/bench_transport.py``: 2,000 GETs at
20 ms latency, 32 in flight), httpx's own transport spends ~4 ms of CPU per request (httpcore's
pool re-examines every connection, with a ``poll`` system call each, on every event: no pool
setting avoids it) and a pool of httpcore connections without that scan still ~0.7 ms; aiohttp,
whose HTTP parser is llhttp in C and which reads without anyio's cancel scopes, ~0.4 ms.  It
brings what a user's network needs: keep-alive pools, TLS with SNI, HTTP proxies (``CONNECT``
tunnels for https), gzip/deflate/brotli decoding in bounded steps, and limits on the answer's head.

What this module adds on top, and nothing more:

* **Exact failure classes** (one translation, :func:`_translated`): nothing could be sent
  (``ConnectError``, ``ConnectTimeout``; :class:`CertificateRefused`, :class:`ProxyRefused`)
  versus sent and not (properly) answered (``ReadTimeout``, ``RemoteProtocolError``,
  ``ReadError``); the dispatcher's retry rules depend on it (``retry.py``).
* **Answers in step with requests.**  aiohttp queues any complete answer it parses, so one that
  arrives on an idle kept-alive connection, or a second answer in the segment of the first,
  would be read as the answer of the next request sent on that connection.  Here the
  connection's protocol (``instep.py``) refuses bytes nobody asked for: the connection is
  dropped, never reused, and an answer that came with extra bytes is refused
  (:class:`OutOfStep`, "sent, not properly answered": a create ends as outcome unknown).
  A connection taken from the pool is also checked for bytes waiting in the kernel that the
  event loop has not delivered yet (or the server's close): such a connection is never used.
  What no check can catch is a stray answer that arrives *after* the next request on the
  connection was written (nothing in HTTP/1.1 tells it from that request's answer: a late 429
  would make a create look refused, and be sent again).
* **The connection policy of creates** (any method but GET, HEAD, PUT, DELETE, OPTIONS: a POST
  bills a client).  Creates have a pool of their own, never shared with reads or updates, and a
  create reuses one of its kept-alive connections only when it has been quiet for at least
  :data:`CREATE_QUIET` (0.1 s: whatever a server sends with or shortly after an answer, a second
  answer or a late 429, has arrived by then and dropped the connection) and idle for less than
  :data:`CREATE_IDLE_LIMIT` (1 s: servers do not close or time out an idle connection that soon,
  nginx after 75 s, Node.js 5 s, an AWS ALB 60 s, so no idle-timeout ``408`` or close can race
  the create's write).  Otherwise the create opens a new connection.  Should the server close a
  reused connection as the create is written or answered all the same, aiohttp does not repeat
  a POST, and the failure is "sent, not answered" (``RemoteProtocolError``/``ReadError``): the
  create's outcome is unknown, it stays pending and is never sent again on its own
  (``retry.py``).  What remains is a server that sends an answer nobody asked for more than
  0.1 s after its last one, at the very moment the next create is written on that connection.
  A new connection per create cost about a quarter of an apply's client CPU (a connect, and on
  a real API a TLS handshake, each).
* **Bounds:** header lines of at most ``MAX_LINE`` bytes, at most ``MAX_HEADERS`` of them, a body
  of at most ``max_body`` bytes *after decoding*, read as it streams in and stopped at the limit,
  and the whole exchange within connect + read timeout even when bytes trickle in.
* Request heads with a line break or NUL in a header are refused before anything is sent.

The dispatcher sends through :meth:`HttpTransport.exchange` (the same exchange, answered as an
``envelope.Answer``, without httpx's request and response objects); ``handle_async_request``
keeps the httpx seam for every other caller.  Proxies and certificates come from the environment
(``netenv.py``); the transport takes the resolved choices.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import httpx
from yarl import URL

from reconciler.core.safetext import printable
from reconciler.remote.envelope import Answer
from reconciler.remote.inline import REQUEST_CLASS
from reconciler.remote.instep import CarriedResponse, InStepConnector
from reconciler.remote.netenv import ProxyChoice
from reconciler.remote.retry import (
    AnswerTooLarge,
    CertificateRefused,
    OutOfStep,
    ProxyRefused,
)

#: Largest answer body held in memory, counted after decoding (an API page is ~100 KiB).
MAX_BODY = 16 << 20
#: Longest status or header line, and most header lines, of an answer.
MAX_LINE = 8190
MAX_HEADERS = 100
_BREAKS = re.compile(r"[\r\n\0]")
#: Methods sent through the shared pool; any other (POST: a create) goes through the creates' pool.
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Seconds a connection of the creates' pool may have been idle and still carry a create: far
#: below any common server idle timeout (nginx 75 s, Node.js 5 s, AWS ALB 60 s), so that no
#: server-side close or idle ``408`` can race the create's write (see the module docstring).
CREATE_IDLE_LIMIT = 1.0
#: Seconds a connection of the creates' pool must have been idle before it carries a create: any
#: bytes a server sent with or shortly after its last answer (a second answer, a late 429) have
#: arrived by then and put the connection out of step (see the module docstring).
CREATE_QUIET = 0.1
#: Encodings advertised: those decoded here in bounded steps.
try:
    import brotli  # noqa: F401 - aiohttp decodes "br" when it is installed

    ACCEPT_ENCODING = "gzip, deflate, br"
except ImportError:  # pragma: no cover - brotli is a dependency; without it "br" is not asked for
    ACCEPT_ENCODING = "gzip, deflate"


class HttpTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive connections through aiohttp, at most ``max_connections`` at once.

    ``verify`` is the TLS context for https (``netenv.ssl_context()``), built by the caller so
    that a bad ``SSL_CERT_FILE`` is refused before anything is sent; ``proxy_for`` maps a URL to
    its :class:`ProxyChoice` (None: direct).
    """

    def __init__(self, *, max_connections: int = 32, keepalive_expiry: float = 4.0,
                 verify: ssl.SSLContext | None = None,
                 proxy_for: Callable[[object], ProxyChoice | None] | None = None,
                 max_body: int = MAX_BODY, create_idle_limit: float = CREATE_IDLE_LIMIT,
                 create_quiet: float = CREATE_QUIET) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.create_idle_limit = min(create_idle_limit, keepalive_expiry)
        self.create_quiet = create_quiet
        self.max_body = max_body
        self._ssl = verify
        self._proxy_for = proxy_for
        self._session: aiohttp.ClientSession | None = None
        self._connector: InStepConnector | None = None
        self._create_session: aiohttp.ClientSession | None = None
        self._create_connector: InStepConnector | None = None
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}
        # exchange()'s parsed URLs and their proxies, by the URL's text
        self._urls: dict[str, tuple[URL, ProxyChoice | None]] = {}

    @property
    def connections_made(self) -> int:
        """Connections opened so far (each TLS tunnel through a proxy counts twice)."""
        return sum(c.connections_made for c in (self._connector, self._create_connector) if c is not None)

    def _open(self, *, creates: bool) -> aiohttp.ClientSession:
        # creates: the pool of creates alone, whose connections are reused only while idle for
        # less than create_idle_limit (aiohttp closes older ones; see the module docstring)
        connector = InStepConnector(limit=self.max_connections, quiet=self.create_quiet if creates else 0.0,
                                     keepalive_timeout=self.create_idle_limit if creates else self.keepalive_expiry,
                                     ssl=self._ssl if self._ssl is not None else True)
        session = aiohttp.ClientSession(
            connector=connector, request_class=REQUEST_CLASS, response_class=CarriedResponse, trust_env=False,
            auto_decompress=True, max_line_size=MAX_LINE, max_field_size=MAX_LINE, max_headers=MAX_HEADERS,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar())
        if creates:
            self._create_session, self._create_connector = session, connector
        else:
            self._session, self._connector = session, connector
        return session

    def _timeout(self, timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeouts.get("connect"), timeouts.get("read"), timeouts.get("pool"))
        found = self._timeouts.get(key)
        if found is None:
            connect, read, pool = key
            # connect: a pool slot and the connection (with TLS and any proxy tunnel) together;
            # total: the whole exchange, even one whose bytes trickle in (each read is quick)
            whole = None if connect is None and pool is None else (connect or 0) + (pool or 0)
            total = None if read is None else read + (whole or 0)
            found = self._timeouts[key] = aiohttp.ClientTimeout(total=total, connect=whole, sock_connect=connect,
                                                               sock_read=read)
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The httpx seam: one request, its answer read whole (see :meth:`exchange`)."""
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"the URL's scheme is not http or https: {url}", request=request)
        try:
            content: bytes | None = request.content
        except httpx.RequestNotRead:
            content = await request.aread()
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw]
        parsed = URL(str(url), encoded=True)
        answer = await self._exchange(request.method, parsed, self._proxy(parsed), headers, content,
                                      request.extensions.get("timeout", {}), request)
        decoded = "Content-Encoding" in answer.headers  # decoded here: encoding and length no longer apply
        answer_headers = [(name.encode("utf-8", "surrogateescape"), value.encode("utf-8", "surrogateescape"))
                          for name, value in answer.headers.items()
                          if not decoded or name.lower() not in ("content-encoding", "content-length")]
        return httpx.Response(
            answer.status_code, headers=answer_headers, stream=httpx.ByteStream(answer.content), request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason.encode("latin-1", "replace")})

    async def exchange(self, method: str, url: str, headers: Mapping[str, str], content: bytes | None,
                       timeouts: dict[str, float | None]) -> Answer:
        """One request and its whole answer, without httpx's request and response objects (the
        dispatcher's path: building and reading them cost about a fifth of a create's CPU).

        ``url`` is percent-encoded already (``str(httpx.URL(...))``); failures are raised as the
        same httpx exceptions as :meth:`handle_async_request` raises, made without a request.
        """
        found = self._urls.get(url)
        if found is None:
            parsed = URL(url, encoded=True)
            if parsed.scheme not in ("http", "https"):
                raise httpx.UnsupportedProtocol(f"the URL's scheme is not http or https: {printable(url, limit=200)}")
            if len(self._urls) >= 256:  # paths carry ids: bounded
                self._urls.clear()
            found = self._urls[url] = (parsed, self._proxy(parsed))
        return await self._exchange(method, found[0], found[1], list(headers.items()), content, timeouts, None)

    def _proxy(self, url: URL) -> ProxyChoice | None:
        return self._proxy_for(url) if self._proxy_for is not None else None

    async def _exchange(self, method: str, url: URL, proxy: ProxyChoice | None, headers: list[tuple[str, str]],
                        content: bytes | None, timeouts: dict[str, float | None],
                        request: httpx.Request | None) -> Answer:
        if _BREAKS.search("\x01".join([value for _, value in headers])):
            # a line break inside a header would start a header (or a request) of its own
            raise httpx.LocalProtocolError("a request header holds a line break or NUL; nothing was sent",
                                           request=request)
        if not any(name.lower() == "accept-encoding" for name, _ in headers):
            headers.append(("Accept-Encoding", ACCEPT_ENCODING))
        if method in _IDEMPOTENT:
            session = self._session or self._open(creates=False)
        else:  # a create: a connection that only creates used, idle for less than create_idle_limit
            session = self._create_session or self._open(creates=True)
        with _translated(url, request):  # the whole exchange is bounded by aiohttp's total (_timeout)
            response = await session.request(
                method, url, headers=headers, data=content or None, allow_redirects=False,
                timeout=self._timeout(timeouts), proxy=proxy.url if proxy else None,
                proxy_headers=proxy.headers if proxy else None)
            try:
                body = await self._read(response)
            finally:
                response.release()
            assert isinstance(response, CarriedResponse)
            if response.carrier is not None and response.carrier.out_of_step:
                raise OutOfStep("the server sent more than one answer for one request (or bytes nobody "
                                "asked for); the answer cannot be trusted", request=request)
        return Answer(response.status, response.headers, body, response.reason or "")

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The decoded body, read as it arrives and refused past ``max_body``."""
        declared = response.content_length
        if declared is not None and declared > self.max_body and "Content-Encoding" not in response.headers:
            response.close()
            raise AnswerTooLarge(f"the answer announces {declared} bytes, more than the "
                                 f"{self.max_body >> 20} MiB accepted")
        stream = response.content
        if declared is not None and "Content-Encoding" not in response.headers:
            return await stream.readexactly(declared) if declared else b""  # the common case: one read
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await stream.readany()
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_body:
                response.close()  # the connection goes too: the rest is never read
                raise AnswerTooLarge(f"the answer is larger than {self.max_body >> 20} MiB "
                                     f"(counted after decoding); it was not read further")
            chunks.append(chunk)

    async def aclose(self) -> None:
        for session in (self._session, self._create_session):
            if session is not None:
                await session.close()
        self._session = self._create_session = None


class _translated:
    """Translate aiohttp's exceptions into httpx's, once, keeping "not sent" apart from "sent"."""

    def __init__(self, url: URL, request: httpx.Request | None) -> None:
        self.url = url
        self.request = request

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, (httpx.HTTPError, asyncio.CancelledError)) \
                or not isinstance(exc, Exception):
            if isinstance(exc, httpx.RequestError) and self.request is not None:
                try:
                    exc.request  # noqa: B018 - raises when the error was made without one
                except RuntimeError:
                    exc.request = self.request
            return
        raise _translate(exc, self.url, self.request) from None


def _translate(exc: Exception, url: URL, request: httpx.Request | None) -> httpx.HTTPError:
    where = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
    # -- nothing was sent ------------------------------------------------------------------------
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        verify = getattr(exc.certificate_error, "verify_message", None) or str(exc.certificate_error)
        return CertificateRefused(f"TLS with {where} failed (its certificate was refused: "
                                  f"{printable(verify, limit=200)})", request=request)
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return httpx.ConnectError(f"TLS with {where} failed ({_reason(exc.os_error)})", request=request)
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return ProxyRefused(f"cannot connect to the proxy ({_reason(exc.os_error)})", request=request)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return ProxyRefused(f"the proxy refused to open a tunnel to {where} (it answered {exc.status})",
                            request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(f"cannot connect to {where} ({_reason(exc.os_error)})", request=request)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(f"connecting to {where} timed out", request=request)
    if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        return httpx.UnsupportedProtocol(f"the URL cannot be used: {printable(str(exc), limit=200)}",
                                         request=request)
    # -- sent (or perhaps sent): the answer is missing or unusable ---------------------------------
    if isinstance(exc, (aiohttp.ServerTimeoutError, TimeoutError)):
        return httpx.ReadTimeout(f"no complete answer from {where} in time", request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(f"{where} closed the connection without a complete answer",
                                         request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # the head could not be parsed, or was too large
        return httpx.RemoteProtocolError(f"malformed HTTP answer from {where} "
                                         f"({printable(exc.message, limit=200)})", request=request)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(f"the answer's body from {where} is broken "
                                         f"({printable(str(exc), limit=200)})", request=request)
    if isinstance(exc, OSError):
        return httpx.ReadError(f"the connection to {where} failed ({_reason(exc)})", request=request)
    return httpx.RemoteProtocolError(f"the exchange with {where} failed ({type(exc).__name__})",
                                     request=request)


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, ssl.SSLError):
        return printable(exc.reason or type(exc).__name__, limit=200)
    if isinstance(exc, socket.gaierror):
        return f"name not found: {exc.strerror}"
    if isinstance(exc, OSError):
        if exc.errno and exc.errno > 0:
            return os.strerror(exc.errno)
        return exc.strerror or type(exc).__name__
    return type(exc).__name__ if exc is not None else "unknown reason"
