"""The one place a request is sent: door choice, fallback, retries, limits, logging.

:class:`Dispatcher` sends one route's request through the rate limiter and the AIMD concurrency
limit to the route's door, repeats it on the fallback door once when the gateway's answer proves
it was not executed (and remembers that route for the rest of the run), retries what the
:class:`RetryPolicy` allows, and returns the success envelope's ``data`` with a :class:`Served`
record (door, status, attempts, elapsed).  Every other outcome becomes one error of
``reconciler.core.errors``; a write that may have happened becomes ``OutcomeUnknownError``.

Door and token follow :func:`routes.next_try`: a target without a fallback URL sends everything
to the gateway (a refusal the fallback would have avoided is a ``DoorRefusedError`` naming the
setting); a read whose staff token is refused is repeated with the directory token and the route
keeps that token for the run (:attr:`Dispatcher.token_switched`); pinned routes never switch.

Requests are logged at DEBUG under ``reconciler.remote`` (method, path, door, status, elapsed);
headers, and so tokens, are never logged or put into an error.

Over 400 lines on purpose: one request's whole way through doors, fallback, tokens, retries, limits
and the record of how it was served is one state machine, read in one place.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx

from reconciler.core import jsontext
from reconciler.core.errors import (
    AuthError,
    DoorRefusedError,
    NotSentError,
    OutcomeUnknownError,
    ProtocolError,
    RemoteError,
    RequestInfo,
    SendWindowPassed,
    UnavailableError,
    UnsupportedRouteError,
)
from reconciler.remote.envelope import Answer, error_for, parse_json, unwrap
from reconciler.remote.retry import (
    CertificateRefused,
    ProxyRefused,
    RetryPolicy,
    parse_retry_after,
)
from reconciler.remote.routes import (
    Door,
    Route,
    RouteTable,
    TokenKind,
    Try,
    gateway_refusal,
    next_try,
    token_refusal,
)
from reconciler.remote.target import Target
from reconciler.remote.throttle import AdaptiveConcurrency, RateLimiter

log = logging.getLogger("reconciler.remote")
USER_AGENT = "reconciler/0.1 (+httpx)"

Sleep = Callable[[float], Awaitable[None]]
#: ``HttpTransport.exchange``: (method, URL text, headers, body, timeouts) -> the whole answer
Exchange = Callable[[str, str, Mapping[str, str], "bytes | None", "dict[str, float | None]"], Awaitable["Answer"]]


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
    token: str = "staff"  # noqa: S105 - the kind of token that was sent, not a token


#: The Served record of the calling task's most recent request (a ContextVar, so concurrent
#: tasks each see their own).
last_served: ContextVar[Served | None] = ContextVar("reconciler_remote_last_served", default=None)
#: The calling task's send window (``time.monotonic()`` deadline, or None): no attempt of its
#: request leaves after it (``SendWindowPassed``, a "not sent").  The applier sets it around each
#: create, so that a create leaves within ``create_send_window_seconds`` of its pending record
#: (``reconciler.core.listlag``); a retry after a 429 is held to it too.
send_by: ContextVar[float | None] = ContextVar("reconciler_remote_send_by", default=None)


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
        self._inner_exchange: Exchange | None = getattr(inner, "exchange", None) if deadline is None else None
        #: the inner transport's ``exchange`` (``HttpTransport``: a request without httpx's request
        #: and response objects), guarded like a request; None when it has none
        self.exchange: Exchange | None = self._guarded_exchange if self._inner_exchange is not None else None

    async def _guarded_exchange(self, method: str, url: str, headers: Mapping[str, str], content: bytes | None,
                                timeouts: dict[str, float | None]) -> Answer:
        assert self._inner_exchange is not None
        try:
            return await self._inner_exchange(method, url, headers, content, timeouts)
        except httpx.HTTPError:
            raise
        except Exception as exc:  # noqa: BLE001 - as handle_async_request
            raise InProcessCrash(f"the transport raised {type(exc).__name__}") from None

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
    return jsontext.dumps(body, sort_keys=True, default=_json_default)  # json.dumps's very bytes


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
        #: routes whose staff token was refused during this run; they now use their other token
        self.token_switched: set[str] = set()
        self._transport = transport
        self._sleep: Sleep = sleep or asyncio.sleep
        self._bases = {Door.GATEWAY: target.gateway_url, Door.FALLBACK: target.fallback_url}
        self._extensions = {"timeout": httpx.Timeout(settings.timeout).as_dict()}
        self._headers = {kind: self._headers_for(kind) for kind in TokenKind if target.token(kind) is not None}
        # Parsed URLs of parameterless requests (a run sends its creates to one URL per door;
        # parsing it again cost a tenth of a request's CPU); bounded, as paths carry ids.
        self._urls: dict[tuple[Door, str], httpx.URL] = {}
        self._url_texts: dict[tuple[Door, str], str] = {}
        # The network transport's own exchange, when it has one: it sends without httpx's request
        # and response objects, which cost about a fifth of a create's CPU (bench/bench_apply.py).
        self._exchange: Exchange | None = getattr(transport, "exchange", None)
        #: why no request may leave any more ("" while they may): see halt()
        self.halted = ""

    def halt(self, why: str) -> None:
        """Send no request from now on: those waiting for a slot or the rate limiter raise
        NotSentError; those already sent finish as usual."""
        self.halted = self.halted or why

    def door_for(self, route: Route) -> Door:
        """The door this route uses now: its table entry (or pin), unless the run learnt otherwise;
        always the gateway for a target without a fallback door."""
        if self.target.fallback_url is None:
            return Door.GATEWAY
        if route.door_pinned:
            return route.door
        return Door.FALLBACK if route.name in self.rerouted else route.door

    def token_for(self, route: Route) -> TokenKind | None:
        """The token this route uses now (None: the target has none vcita accepts there)."""
        has = self.target.token
        if route.token_pinned:
            return route.token if has(route.token) is not None else None
        if route.alt is not None and route.name in self.token_switched:
            return route.alt
        if has(route.token) is not None:
            return route.token
        if route.alt is not None and has(route.alt) is not None:
            return route.alt
        return None

    def can_send(self, route: Route) -> bool:
        """Whether this target has a token vcita accepts on ``route``."""
        return self.token_for(route) is not None

    def _headers_for(self, kind: TokenKind) -> dict[str, str]:
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate",
                   "Content-Type": "application/json", "User-Agent": USER_AGENT}
        secret = self.target.token(kind)
        assert secret is not None
        headers["Authorization"] = f"Bearer {secret.reveal()}"
        if kind is TokenKind.DIRECTORY:
            headers["X-On-Behalf-Of"] = self.target.business_id
        return headers

    def _unsupported(self, route: Route, path: str) -> UnsupportedRouteError:
        info = RequestInfo(route.method, path, "", extra={"operation": route.name})
        have = " and ".join(str(k) for k in TokenKind if self.target.token(k) is not None)
        wants = f"the {route.token} token" + (f" or the {route.alt} token"
                                              if route.alt not in (None, route.token) else "")
        pinned = " (as pinned in the target's routes)" if route.token_pinned else ""
        return UnsupportedRouteError(
            f"{info.describe()}: not sent: vcita accepts {wants} there{pinned}, and target "
            f"{self.target.name} has only a {have} token", request=info,
            hint="Add a staff token to the target (VCITA_STAFF_TOKEN, --token-file, or token_env in "
                 "reconciler.toml); 'reconciler doctor' shows what each token can do.")

    async def send(
        self, route: Route, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Reply:
        """Send one request (with fallback and retries) and return the unwrapped success data."""
        content = None if body is None else encode_body(body)
        digest = body_digest(content)
        door = self.door_for(route)
        token = self.token_for(route)
        if token is None:
            raise self._unsupported(route, path)
        attempts, retries_used, fell_back, waited_out_pause, switched = 0, 0, False, False, False
        refusals: list[str] = []
        started = time.perf_counter()
        while True:
            attempts += 1
            retries_used += 1
            info = RequestInfo(route.method, path, str(door), body_digest=digest,
                               extra={"operation": route.name, "attempt": attempts, "token": str(token)})
            sent = route if token is route.token else replace(route, token=token)
            response, failure = await self._attempt(sent, door, path, params, content, info,
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
            if status >= 400:
                step = next_try(route, Try(door, token), status=status, body=parsed, content=response.content,
                                has_fallback=self.target.fallback_url is not None,
                                has_alt_token=route.alt is not None and self.target.token(route.alt) is not None,
                                fell_back=fell_back, switched_token=switched)
                if step is not None:
                    refusals.append(f"{door} with the {token} token: {status}")
                    if step.door is not door:
                        self.rerouted.add(route.name)
                        log.info("%s %s: %s; repeating it on the fallback door, and sending %s there for "
                                 "the rest of this run", route.method, path, step.why, route.name)
                        fell_back = True
                    else:
                        self.token_switched.add(route.name)
                        switched = True
                        log.info("%s %s via %s: %s, and keeping it for %s for the rest of this run",
                                 route.method, path, door, step.why, route.name)
                    door, token, retries_used = step.door, step.token, retries_used - 1
                    continue
            if 200 <= status < 300:
                try:
                    data = unwrap(parsed, info)
                except ProtocolError as exc:
                    if not route.idempotent:  # it was executed, but we cannot tell what it made
                        raise self._unknown(info, f"the server answered {status} with an unreadable body") from exc
                    raise
                served = Served(route.name, route.method, path, str(door), status, attempts,
                                time.perf_counter() - started, fell_back, str(token))
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
                                       time.perf_counter() - started, fell_back, str(token)))
            raise self._refined(error_for(status, parsed, response.text, info,
                                          fallback_configured=self.target.fallback_url is not None),
                                route, path, door, token, status, parsed, response.content, refusals)

    def _refined(self, err: RemoteError, route: Route, path: str, door: Door, token: TokenKind, status: int,
                 body: Any, content: bytes, refusals: list[str]) -> RemoteError:
        """The error of a final refusal, saying what was tried and which setting would help."""
        before = f" (before: {'; '.join(refusals)})" if refusals else ""
        reason = gateway_refusal(route, path, status, body, content) if door is Door.GATEWAY else None
        if reason is not None and status < 500 and route.door_pinned and self.target.fallback_url is not None:
            err.message += before
            err.hint = (f"{route.name} is pinned to the gateway in the target's routes, and the gateway refused it "
                        f"({reason}): pin it to the fallback door, or remove the pin. 'reconciler doctor' "
                        "checks every route on each door.")
            return err
        if reason is not None and status < 500 and self.target.fallback_url is None:
            return DoorRefusedError(
                f"{err.request.describe() if err.request else path}: {reason}, as vcita's gateway refuses "
                f"routes that its fallback door serves; nothing was executed, and target "
                f"{self.target.name} has no fallback URL to repeat it on{before}",
                request=err.request, status=status)
        if isinstance(err, AuthError) and token_refusal(status, body) is not None:
            if token is TokenKind.DIRECTORY:
                err.message += f"{before}; the directory token was sent, with X-On-Behalf-Of {self.target.business_id}"
                err.hint = ("Check the directory token (VCITA_DIRECTORY_TOKEN, --directory-token-file or "
                            "directory_token_env) and that its directory owns this business id.")
            elif route.alt_on_refusal and route.alt is not None and self.target.token(route.alt) is None:
                err.message += before
                err.hint = (f"Check the staff token; vcita's list recipe refuses staff tokens on this route and "
                            f"uses a {route.alt} token with X-On-Behalf-Of: set VCITA_DIRECTORY_TOKEN (or "
                            "directory_token_env) and reconciler switches to it. 'reconciler doctor' checks both.")
            elif refusals:
                err.message += before
        return err

    async def _attempt(
        self, route: Route, door: Door, path: str, params: Mapping[str, Any] | None,
        content: bytes | None, info: RequestInfo, *, skip_pause: bool,
    ) -> tuple[Answer | None, Exception | None]:
        await self.rate.acquire(skip_pause=skip_pause)
        async with self.concurrency.slot() as ticket:
            if self.halted:  # checked after the waits: a request that has not left yet never will
                raise NotSentError(f"{info.describe()}: not sent ({self.halted})", request=info)
            deadline = send_by.get()
            if deadline is not None and time.monotonic() > deadline:
                raise SendWindowPassed(f"{info.describe()}: not sent: its send window passed while it waited",
                                       request=info)
            t0 = time.perf_counter()
            try:
                if self._exchange is not None:
                    response = await self._exchange(route.method, self._url_text(door, path, params),
                                                    self._headers[route.token], content, self._extensions["timeout"])
                else:
                    request = httpx.Request(route.method, self._url(door, path, params), params=params,
                                            content=content, headers=self._headers[route.token],
                                            extensions=self._extensions)
                    read = await self._transport.handle_async_request(request)
                    try:
                        await read.aread()
                    finally:
                        await read.aclose()
                    response = Answer.of(read)
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

    async def send_once(
        self, route: Route, path: str, *, door: Door, token: TokenKind, params: Mapping[str, Any] | None = None,
    ) -> tuple[Answer | None, Exception | None, float]:
        """One request exactly as given (door, token): no fallback, retry or memory, for probes
        (``reconciler doctor``).  Returns (response or None, transport failure or None, seconds)."""
        if self.target.token(token) is None or (door is Door.FALLBACK and self.target.fallback_url is None):
            raise self._unsupported(replace(route, token=token, alt=None, token_pinned=True), path)
        info = RequestInfo(route.method, path, str(door), extra={"operation": route.name, "attempt": 1})
        t0 = time.perf_counter()
        response, failure = await self._attempt(replace(route, token=token), door, path, params, None, info,
                                                skip_pause=False)
        return response, failure, time.perf_counter() - t0

    def _url(self, door: Door, path: str, params: Mapping[str, Any] | None) -> httpx.URL | str:
        if params:
            return f"{self._bases[door]}{path}"
        url = self._urls.get((door, path))
        if url is None:
            if len(self._urls) >= 256:
                self._urls.clear()
            url = self._urls[(door, path)] = httpx.URL(f"{self._bases[door]}{path}")
        return url

    def _url_text(self, door: Door, path: str, params: Mapping[str, Any] | None) -> str:
        """The request's URL as text, percent-encoded as httpx encodes it (for ``exchange``)."""
        if params:
            return str(httpx.URL(f"{self._bases[door]}{path}", params=params))
        text = self._url_texts.get((door, path))
        if text is None:
            if len(self._url_texts) >= 256:
                self._url_texts.clear()
            text = self._url_texts[(door, path)] = str(httpx.URL(f"{self._bases[door]}{path}"))
        return text

    def _unknown(self, info: RequestInfo, why: str) -> OutcomeUnknownError:
        log.warning("%s: outcome unknown: %s", info.describe(), why)
        return OutcomeUnknownError(
            f"{info.describe()}: {why}; it may or may not have been executed", request=info,
        )
