"""The one place a request is sent: door choice, fallback, retries, limits, logging.

:class:`Dispatcher` sends one route's request through the rate limiter and the AIMD concurrency
limit to the route's door, repeats it on the fallback door once when the gateway's answer proves
it was not executed (and remembers that route for the rest of the run), retries what the
:class:`RetryPolicy` allows, and returns the success envelope's ``data`` with a :class:`Served`
record (door, status, attempts, elapsed).  Every other outcome becomes one error of
``reconciler.errors``; a write that may have happened becomes ``OutcomeUnknownError``.

Requests are logged at DEBUG under ``reconciler.remote`` (method, path, door, status, elapsed);
headers, and so tokens, are never logged or put into an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx

from reconciler.errors import (
    OutcomeUnknownError,
    ProtocolError,
    RequestInfo,
    UnavailableError,
)
from reconciler.remote.envelope import error_for, parse_json, unwrap
from reconciler.remote.retry import (
    CertificateRefused,
    ProxyRefused,
    RetryPolicy,
    parse_retry_after,
)
from reconciler.remote.routes import Door, Route, RouteTable, TokenKind, gateway_refusal
from reconciler.remote.target import Target
from reconciler.remote.throttle import AdaptiveConcurrency, RateLimiter

log = logging.getLogger("reconciler.remote")
USER_AGENT = "reconciler/0.1 (+httpx)"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Served:
    """Which door answered a request, with what, after how many attempts and how long."""

    operation: str
    method: str
    path: str
    door: str
    status: int
    attempts: int
    elapsed: float  # seconds from the call to the final answer (queueing and retry waits included)
    fell_back: bool = False


#: The Served record of the calling task's most recent request (a ContextVar, so concurrent
#: tasks each see their own).
last_served: ContextVar[Served | None] = ContextVar("reconciler_remote_last_served", default=None)


@dataclass(frozen=True)
class ClientSettings:
    """Throughput and patience. Defaults are safe for a SaaS API; the embedded sandbox goes faster."""

    concurrency: int = 8
    rate: float | None = 20.0  # request starts per second; None = unlimited
    burst: float | None = None  # token-bucket size; default = rate
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    increase_every: int = 20  # AIMD: +1 concurrency per this many successes
    per_page: int = 100  # the API's maximum page size

    @classmethod
    def for_target(cls, target: Target, **overrides: Any) -> ClientSettings:
        """Defaults for a target: a local sandbox (embedded or on loopback) at concurrency 32 and
        no rate limit, a remote API at SaaS-safe limits; ``None`` overrides are ignored."""
        base: dict[str, Any] = {"concurrency": 32, "rate": None} if target.local else {}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


class InProcessCrash(httpx.RemoteProtocolError):
    """The in-process (ASGI) server raised instead of answering: for the client, a dropped connection."""


class GuardedTransport(httpx.AsyncBaseTransport):
    """Translates any foreign exception of the wrapped transport into an httpx transport error, once.

    ``deadline`` (seconds) bounds each request for transports without timeouts of their own
    (``httpx.ASGITransport``), so the in-process sandbox times out like a served one.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *, deadline: float | None = None) -> None:
        self.inner = inner
        self.deadline = deadline

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            if self.deadline is None:
                return await self.inner.handle_async_request(request)
            async with asyncio.timeout(self.deadline):
                return await self.inner.handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout("the in-process server did not answer in time", request=request) from None
        except httpx.HTTPError:
            raise
        except Exception as exc:  # noqa: BLE001 - an ASGI app's exception reaches us as it is
            raise InProcessCrash(f"the in-process server raised {type(exc).__name__}", request=request) from None

    async def aclose(self) -> None:
        await self.inner.aclose()


def _why(failure: Exception) -> str:
    """A transport failure in one printable line: its type, and its text when it has one."""
    text = " ".join(str(failure).split())[:200]
    text = "".join(c if c.isprintable() else "?" for c in text)
    return f"{type(failure).__name__}: {text}" if text else type(failure).__name__


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # exact for every decimal of up to 15 significant digits (prices, amounts)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


def encode_body(body: Any) -> bytes:
    """JSON bytes of a request body; Decimals become JSON numbers, dates ISO strings."""
    return json.dumps(body, default=_json_default, separators=(",", ":"), sort_keys=True).encode()


def body_digest(content: bytes | None) -> str:
    return "" if content is None else "sha256:" + hashlib.sha256(content).hexdigest()[:16]


@dataclass
class Reply:
    data: dict[str, Any]
    served: Served


class Dispatcher:
    """Sends route requests for one target through one httpx transport.

    It drives the transport directly (``handle_async_request``) rather than through an
    ``httpx.AsyncClient``: the client's per-request layers (cookie jar, auth flow, redirects, URL
    merging) are all unused here and cost about a quarter of the CPU of a request, which at a
    refresh's concurrency is the difference between meeting the API's pace and lagging it.
    """

    def __init__(
        self, target: Target, transport: httpx.AsyncBaseTransport, *, routes: RouteTable,
        settings: ClientSettings, sleep: Sleep | None = None,
    ) -> None:
        self.target = target
        self.routes = routes
        self.settings = settings
        self.policy = settings.retry
        self.concurrency = AdaptiveConcurrency(settings.concurrency, increase_every=settings.increase_every)
        self.rate = RateLimiter(settings.rate, settings.burst)
        self.history: list[Served] = []
        #: routes the gateway refused during this run; they now go straight to the fallback
        self.rerouted: set[str] = set()
        self._transport = transport
        self._sleep: Sleep = sleep or asyncio.sleep
        self._bases = {Door.GATEWAY: target.gateway_url, Door.FALLBACK: target.fallback_url}
        self._extensions = {"timeout": httpx.Timeout(settings.timeout).as_dict()}
        self._headers = {kind: self._headers_for(kind) for kind in TokenKind}
        # Parsed URLs of parameterless requests (a run sends its creates to one URL per door;
        # parsing it again cost a tenth of a request's CPU); bounded, as paths carry ids.
        self._urls: dict[tuple[Door, str], httpx.URL] = {}

    def door_for(self, route: Route) -> Door:
        """The door this route uses now: its table entry, unless the run learnt otherwise."""
        if self.target.fallback_url is None:
            return Door.GATEWAY
        return Door.FALLBACK if route.name in self.rerouted else route.door

    def _headers_for(self, kind: TokenKind) -> dict[str, str]:
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate",
                   "Content-Type": "application/json", "User-Agent": USER_AGENT}
        if kind is TokenKind.DIRECTORY and self.target.directory_token is not None:
            headers["Authorization"] = f"Bearer {self.target.directory_token.reveal()}"
            headers["X-On-Behalf-Of"] = self.target.business_id
        else:
            headers["Authorization"] = f"Bearer {self.target.staff_token.reveal()}"
        return headers

    async def send(
        self, route: Route, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Reply:
        """Send one request (with fallback and retries) and return the unwrapped success data."""
        content = None if body is None else encode_body(body)
        digest = body_digest(content)
        door = self.door_for(route)
        attempts, retries_used, fell_back, waited_out_pause = 0, 0, False, False
        started = time.perf_counter()
        while True:
            attempts += 1
            retries_used += 1
            info = RequestInfo(route.method, path, str(door), body_digest=digest,
                               extra={"operation": route.name, "attempt": attempts})
            response, failure = await self._attempt(route, door, path, params, content, info,
                                                    skip_pause=waited_out_pause)
            waited_out_pause = False
            if failure is not None:
                if isinstance(failure, CertificateRefused):
                    raise UnavailableError(
                        f"{info.describe()}: {failure}", request=info,
                        hint="Nothing was sent. Check the target URL; behind a proxy that inspects TLS, point "
                             "SSL_CERT_FILE at a bundle that includes its authority.")
                if not self.policy.can_retry_exception(failure, idempotent=route.idempotent):
                    if route.idempotent:  # a read: nothing changed, but repeating it cannot help
                        raise ProtocolError(f"{info.describe()}: {failure}", request=info)
                    raise self._unknown(info, f"the connection failed after the request was sent "
                                              f"({_why(failure)})")
                if retries_used >= self.policy.max_attempts:
                    raise UnavailableError(
                        f"{info.describe()}: no answer after {attempts} attempts "
                        f"({type(failure).__name__}{f': {failure}' if str(failure) else ''})",
                        request=info,
                        hint=("Nothing was sent. Check the proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY); "
                              "run with -v to see how each door is reached.")
                        if isinstance(failure, ProxyRefused) else None)
                await self._sleep(self.policy.backoff(retries_used))
                continue
            assert response is not None
            status = response.status_code
            info.status = status
            parsed = parse_json(response.content)
            reason = None
            if door is Door.GATEWAY and not fell_back and self.target.fallback_url is not None:
                reason = gateway_refusal(route, path, status, parsed, response.content)
            if reason is not None:
                self.rerouted.add(route.name)
                log.info("%s %s: %s; repeating it on the fallback door, and sending %s there for "
                         "the rest of this run", route.method, path, reason, route.name)
                door, fell_back, retries_used = Door.FALLBACK, True, retries_used - 1
                continue
            if 200 <= status < 300:
                try:
                    data = unwrap(parsed, info)
                except ProtocolError:
                    if not route.idempotent:  # it was executed, but we cannot tell what it made
                        raise self._unknown(info, f"the server answered {status} with an unreadable body")
                    raise
                served = Served(route.name, route.method, path, str(door), status, attempts,
                                time.perf_counter() - started, fell_back)
                self.history.append(served)
                last_served.set(served)
                return Reply(data, served)
            if status == 429 or status >= 500:
                if self.policy.can_retry_status(status, idempotent=route.idempotent) \
                        and retries_used < self.policy.max_attempts:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    wait = self.policy.wait_for(retries_used, retry_after if status in (429, 503) else None)
                    if status == 429 and retry_after is not None:
                        self.rate.pause_for(wait)  # every request waits, not only this one
                        waited_out_pause = True
                    await self._sleep(wait)
                    continue
                if status >= 500 and not route.idempotent:
                    raise self._unknown(info, f"the server answered {status} after receiving it")
            self.history.append(Served(route.name, route.method, path, str(door), status, attempts,
                                       time.perf_counter() - started, fell_back))
            raise error_for(status, parsed, response.text, info,
                            fallback_configured=self.target.fallback_url is not None)

    async def _attempt(
        self, route: Route, door: Door, path: str, params: Mapping[str, Any] | None,
        content: bytes | None, info: RequestInfo, *, skip_pause: bool,
    ) -> tuple[httpx.Response | None, Exception | None]:
        await self.rate.acquire(skip_pause=skip_pause)
        async with self.concurrency.slot() as ticket:
            t0 = time.perf_counter()
            try:
                request = httpx.Request(route.method, self._url(door, path, params), params=params,
                                        content=content, headers=self._headers[route.token],
                                        extensions=self._extensions)
                response = await self._transport.handle_async_request(request)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
            except httpx.RequestError as exc:
                elapsed = (time.perf_counter() - t0) * 1000
                log.debug("%s %s via %s -> %s after %.1f ms (attempt %d)", route.method, path, door,
                          type(exc).__name__, elapsed, info.extra["attempt"])
                if not isinstance(exc, httpx.TransportError):  # e.g. an undecodable body
                    if route.idempotent:
                        raise ProtocolError(f"{info.describe()}: unreadable answer ({type(exc).__name__})",
                                            request=info) from None
                    raise self._unknown(info, f"the answer could not be read ({type(exc).__name__})") from None
                return None, exc
            elapsed = (time.perf_counter() - t0) * 1000
            log.debug("%s %s via %s -> %d in %.1f ms (attempt %d)", route.method, path, door,
                      response.status_code, elapsed, info.extra["attempt"])
            if response.status_code == 429:
                self.concurrency.on_throttled(ticket)
                log.info("%s %s: rate limited (429); concurrency now %d", route.method, path,
                         self.concurrency.limit)
            elif response.status_code < 400:
                self.concurrency.on_success(ticket)
            return response, None

    def _url(self, door: Door, path: str, params: Mapping[str, Any] | None) -> httpx.URL | str:
        if params:
            return f"{self._bases[door]}{path}"
        url = self._urls.get((door, path))
        if url is None:
            if len(self._urls) >= 256:
                self._urls.clear()
            url = self._urls[(door, path)] = httpx.URL(f"{self._bases[door]}{path}")
        return url

    def _unknown(self, info: RequestInfo, why: str) -> OutcomeUnknownError:
        log.warning("%s: outcome unknown: %s", info.describe(), why)
        return OutcomeUnknownError(
            f"{info.describe()}: {why}; it may or may not have been executed", request=info,
        )
