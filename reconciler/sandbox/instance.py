"""One sandbox instance: the store, the clock and the runtime tables (faults, gateway failures,
behaviour, stats), and the execution of one API request against them.

Shared by the doors (``app``) and the operator API (``operator_api``), which therefore import
this module and not each other.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from . import seed
from .auth import authenticate
from .behaviour import Behaviour
from .context import Ctx, Route
from .envelopes import GATEWAY_UNAUTHORIZED_422, ApiError, error_body, family_of
from .faults import FaultTable, GatewayTable, Stats
from .routes import RouteTable
from .store import Store
from .values import Clock

log = logging.getLogger("reconciler.sandbox")


class Sandbox:
    """Everything one app instance holds: the store, the clock and the runtime tables."""

    def __init__(self, db_path: str | Path, gateway_failures: list[dict[str, Any]] | None,
                 *, operator: bool, seed_demo: bool, behaviour: dict[str, Any] | None = None) -> None:
        self.db_path = str(db_path)
        self.store = Store(db_path)
        self.clock = Clock()
        self.faults = FaultTable()
        self.gateway = GatewayTable(gateway_failures)
        self.behaviour = Behaviour(behaviour)
        self.stats = Stats()
        self.routes = RouteTable()
        self.operator = operator
        self.seed_demo = seed_demo
        if seed_demo:
            seed.seed_demo(self.store, self.clock)

    def reset(self) -> None:
        """Wipe and reseed the data; clear faults and stats; restore the gateway table and clock."""
        seed.reset(self.store, self.clock, seed=True)
        self.faults.clear()
        self.stats = Stats()
        self.gateway.restore()
        self.behaviour.clear()
        self.clock.frozen_today = None

    def execute(self, route: Route | None, params: dict[str, str], path: str,
                query: dict[str, str], headers: dict[str, str], body: bytes, door: str = "fallback",
                ) -> tuple[int, Any, dict[str, str]]:
        """Run one API request that came through `door`; (status, body, extra headers)."""
        if route is None:
            return 404, error_body(family_of(path), "Not Found", code="not_found"), {}
        try:
            # one transaction per request (Store.request): committed before the answer is built
            with self.store.request(write=route.method != "GET"):
                principal, business = authenticate(self.store, headers, route)
                if principal.kind == "staff" and self.behaviour.refuses_staff(door, route.method, route.template):
                    raise ApiError(422, GATEWAY_UNAUTHORIZED_422)
                ctx = Ctx(self.store, self.clock, route, params, query, body, principal, business,
                          self.behaviour)
                status, payload = route.handler(ctx)
            return status, payload, {}
        except ApiError as exc:
            return exc.status, exc.body, exc.headers
        except Exception:  # a sandbox bug: answer like core's rescue_from would, and log it
            log.exception("sandbox handler failed: %s %s", route.method, path)
            return 500, error_body(route.family, "Internal Server Error", code="unexpected"), {}
