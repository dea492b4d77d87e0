"""The ASGI application: two doors over one store, and the operator API when enabled.

`/apigw/...` is the gateway door and `/api2/...` the fallback door; both serve the same routes
(`routes.ROUTES`) from the same SQLite store. A request through a door goes:

1. stats count (door, method, route template);
2. injected faults (`faults.FaultTable`): latency, then maybe an immediate status.  Latency is
   a network round trip: half of it passes before the request is executed, half after (before
   the answer leaves).  A request that has arrived is executed even if its client gives up
   meanwhile, as a real server would: a timed-out write is done, with no answer.
   (All of it before, as first built, also synchronised
   the requests woken by one timer tick into bursts on the single handler thread: a refresh
   at 32 in flight ran 1.26x its bound instead of 1.13x.)  A fault that answers with a status
   waits all of it first;
3. gateway door only: the gateway failure table may refuse it without executing anything;
4. route match (404 in the path's envelope family when none), authentication and feature gate
   (`auth`), the package list refusing staff tokens on the doors the operator chose
   (`behaviour`), the handler (`catalog`, `client_packages`, `clients`; the list lags behind
   creation when the operator set a lag);
5. a `drop_after_commit` fault: the answer's status line and headers (with its Content-Length) are
   sent, then `ResponseDropped` is raised so the body never follows. Served by uvicorn, the
   connection is closed and the client sees a transport error (`httpx.RemoteProtocolError`).
   In-process through `httpx.ASGITransport` (which re-raises app exceptions by default), the
   caller gets `ResponseDropped` itself; with `raise_app_exceptions=False` it would instead get a
   response with an empty body, so in-process tests of lost answers should expect the exception.

`SandboxApp` hands door requests straight to the doors, ahead of Starlette's middleware and
router (the doors are raw ASGI apps that handle their own errors); everything else, the operator
API and lifespan included, is plain Starlette.

Handlers are synchronous and run on the event loop thread: each is a few SQLite statements, and a
thread hop would cost more than the work (see bench/bench_sandbox.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from .envelopes import content_type, encode
from .instance import Sandbox

log = logging.getLogger("reconciler.sandbox")


class ResponseDropped(Exception):
    """The request executed and committed, and its answer was deliberately never delivered
    (an injected `drop_after_commit` fault: the lost-response case)."""


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _start(status: int, body: bytes, kind: bytes, extra: dict[str, str]) -> dict[str, Any]:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _respond(send: Send, status: int, payload: Any, extra: dict[str, str]) -> None:
    body = encode(payload)
    await send(_start(status, body, content_type(payload), extra))
    await send({"type": "http.response.body", "body": body})


class Door:
    """One front door (`gateway` or `fallback`) as a raw ASGI app mounted under its prefix."""

    def __init__(self, sandbox: Sandbox, name: str) -> None:
        self.sandbox = sandbox
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        sandbox = self.sandbox
        root = scope.get("root_path", "")
        path = scope["path"].removeprefix(root)
        method = scope["method"]
        route, params, template = sandbox.routes.match(method, path)
        sandbox.stats.hit(self.name, method, template)
        # The whole request has arrived: a client that gives up from now on does not take it
        # back (it is executed after the injected latency all the same, as a server would).
        body = await _read_body(receive)
        decision = sandbox.faults.decide(self.name, method, path)
        on_the_way_back = 0.0
        if decision is not None:
            if decision.latency:
                if decision.status is None:
                    on_the_way_back = decision.latency / 2
                answer_at = time.monotonic() + decision.latency
                await asyncio.sleep(decision.latency - on_the_way_back)
            if decision.status is not None:
                await _respond(send, decision.status, decision.body, decision.headers)
                return
        if self.name == "gateway":
            refusal = sandbox.gateway.refusal(method, path)
            if refusal is not None:
                await _respond(send, refusal["status"], refusal["body"], {})
                return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_query = scope.get("query_string", b"")
        query = dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)) if raw_query else {}
        status, payload, extra = sandbox.execute(route, params, path, query, headers, body, self.name)
        if on_the_way_back:
            # to the round trip's end, counted from the request's arrival: the event loop's
            # timers overshoot by up to a millisecond each, and two sleeps of half the latency
            # made a 20 ms round trip take ~21.7 ms (bench/bench_apply.py measures it)
            await asyncio.sleep(max(0.0, answer_at - time.monotonic()))
        if decision is not None and decision.strip and 200 <= status < 300:
            _strip(payload, decision.strip)
        if decision is not None and decision.drop:
            data = encode(payload)
            await send(_start(status, data, content_type(payload), extra))
            raise ResponseDropped(f"{method} {path} committed with {status}; answer dropped")
        await _respond(send, status, payload, extra)


def _strip(payload: Any, names: tuple[str, ...]) -> None:
    """Remove ``names`` from each object of a success answer's ``data`` (a fault's doing)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    for value in (data.values() if isinstance(data, dict) else ()):
        if isinstance(value, dict):
            for name in names:
                value.pop(name, None)


class SandboxApp(Starlette):
    """Starlette, with the doors dispatched before its middleware and router: they are raw ASGI
    apps that handle their own errors, and the API is the hot path (bench/bench_sandbox.py)."""

    doors: dict[str, Door]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            prefix = path[:path.find("/", 1) + 1] if path.count("/") > 1 else ""
            door = self.doors.get(prefix)
            if door is not None and not scope.get("root_path"):
                await door({**scope, "root_path": prefix[:-1]}, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(db_path: str | Path, *, operator: bool = False,
               gateway_failures: list[dict[str, Any]] | None = None,
               seed_demo: bool = True, behaviour: dict[str, Any] | None = None) -> Starlette:
    """The sandbox app on the SQLite file `db_path` (created and seeded with the demo business
    when new, unless `seed_demo` is off). `operator` mounts `/_sandbox/...`.
    `gateway_failures` replaces the default gateway failure table (`[]`: a fixed gateway);
    `behaviour` sets the default imitation settings (`behaviour.py`: list lag, staff refusals)."""
    sandbox = Sandbox(db_path, gateway_failures, operator=operator, seed_demo=seed_demo,
                      behaviour=behaviour)
    routes: list[Any] = [
        Mount("/apigw", app=Door(sandbox, "gateway")),
        Mount("/api2", app=Door(sandbox, "fallback")),
    ]
    if operator:
        from .operator_api import operator_routes

        routes.append(Mount("/_sandbox", routes=operator_routes(sandbox)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        sandbox.store.close()

    app = SandboxApp(routes=routes, lifespan=lifespan)
    app.doors = {"/apigw/": routes[0].app, "/api2/": routes[1].app}
    app.state.sandbox = sandbox
    return app
