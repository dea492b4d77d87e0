"""Runtime tables of a sandbox app: injected faults, the gateway failure table, request stats.

They live in the app's memory (not in SQLite): a restart brings back the configured gateway table
and no faults, and `POST /_sandbox/reset` restores them too.

Paths are globs (`fnmatch`: `*` also crosses `/`) on the API path after the door, without the
query string, e.g. `/business/payments/v1/client_packages/*`.

A fault fires on a matching request with probability `rate`, at most `times` times when given.
Each firing fault adds its `latency_ms` (a round trip: half before the request executes, half
before its answer leaves; all of it first when a status answers); the first firing fault with a
`status` answers it at once
(nothing executes; `Retry-After` when `retry_after` is set; body: `body` or an error of the path's
envelope family); a firing fault with `drop_after_commit` lets the request execute and commit, then
the response is never delivered (see `app.ResponseDropped`); a firing fault with `strip_fields`
(a list of names) lets the request execute, then removes those fields from each object of a
success answer's `data` (an answer of unexpected shape for a request that was executed).

The gateway table is consulted only on the gateway door, after faults and before anything else:
a matching entry answers its `status` and `body` (a JSON value, or a string sent as text/plain)
without executing anything. `DEFAULT_GATEWAY_ROUTES` is the documented staging behaviour: 401 on
`/business/payments/v1/*` with the "token accepted, business context wrong" body (the tokens are
valid, as the fallback door shows, and it is the layer that refuses valid tokens for a context
reason; the Doorkeeper body would claim the token is invalid), and 422
`{"status":"Error","error":"Unauthorized"}` on GET /platform/v1/payment/packages.
"""

from __future__ import annotations

import fnmatch
import itertools
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from .envelopes import CONTEXT_401, GATEWAY_UNAUTHORIZED_422, error_body, family_of

DEFAULT_GATEWAY_ROUTES: list[dict[str, Any]] = [
    {"method": "*", "path": "/business/payments/v1/*", "status": 401, "body": CONTEXT_401},
    {"method": "GET", "path": "/platform/v1/payment/packages", "status": 422,
     "body": GATEWAY_UNAUTHORIZED_422},
]

DOORS = ("gateway", "fallback")


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def _method_ok(wanted: str, method: str) -> bool:
    return wanted == "*" or wanted.upper() == method


def default_body(path: str, status: int) -> Any:
    """An error body of the path's envelope family for an injected status."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if status == 429:
        phrase = "Rate limit exceeded for this business"
    return error_body(family_of(path), phrase, code=phrase.lower().replace(" ", "_"))


@dataclass
class Fault:
    id: int
    method: str = "*"
    path: str = "*"
    door: str = "*"
    latency_ms: float = 0.0
    status: int | None = None
    rate: float = 1.0
    retry_after: float | None = None
    drop_after_commit: bool = False
    times: int | None = None
    body: Any = None
    strip_fields: tuple[str, ...] = ()
    regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.regex = _glob(self.path)

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "id", "method", "path", "door", "latency_ms", "status", "rate", "retry_after",
            "drop_after_commit", "times", "body", "strip_fields")}


@dataclass
class Decision:
    """What the faults decided for one request."""

    latency: float = 0.0
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    strip: tuple[str, ...] = ()


def parse_fault(spec: dict[str, Any], fault_id: int) -> Fault:
    """A `Fault` from an operator request; ValueError on a bad field."""
    allowed = {"method", "path", "door", "latency_ms", "status", "rate", "retry_after",
               "drop_after_commit", "times", "body", "strip_fields"}
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    fault = Fault(
        id=fault_id, method=str(spec.get("method", "*")).upper(), path=str(spec.get("path", "*")),
        door=str(spec.get("door", "*")), latency_ms=float(spec.get("latency_ms") or 0),
        status=None if spec.get("status") is None else int(spec["status"]),
        rate=float(spec.get("rate", 1.0)),
        retry_after=None if spec.get("retry_after") is None else float(spec["retry_after"]),
        drop_after_commit=bool(spec.get("drop_after_commit", False)),
        times=None if spec.get("times") is None else int(spec["times"]), body=spec.get("body"),
        strip_fields=_names(spec.get("strip_fields", [])),
    )
    if fault.door not in (*DOORS, "*"):
        raise ValueError("door must be gateway, fallback or *")
    if fault.status is not None and not 100 <= fault.status <= 599:
        raise ValueError("status must be an HTTP status code")
    if not 0.0 <= fault.rate <= 1.0:
        raise ValueError("rate must be between 0 and 1")
    if fault.latency_ms < 0 or (fault.times is not None and fault.times < 1):
        raise ValueError("latency_ms must be >= 0 and times >= 1")
    if fault.status is None and not fault.drop_after_commit and not fault.latency_ms and not fault.strip_fields:
        raise ValueError("a fault needs latency_ms, status, drop_after_commit or strip_fields")
    return fault


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("strip_fields must be a list of field names")
    return tuple(value)


class FaultTable:
    """Injected faults, in the order they were added."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._random = random.Random()  # noqa: S311 - chance of an injected fault, not a secret

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = parse_fault(spec, next(self._ids))
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def remove(self, fault_id: int) -> bool:
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def decide(self, door: str, method: str, path: str) -> Decision | None:
        """The combined effect of the faults firing on this request (None: none fired)."""
        if not self.faults:
            return None
        decision: Decision | None = None
        for fault in list(self.faults):
            if fault.door not in ("*", door) or not _method_ok(fault.method, method):
                continue
            if not fault.regex.match(path):
                continue
            if fault.rate < 1.0 and self._random.random() >= fault.rate:
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
            decision = decision or Decision()
            decision.latency += fault.latency_ms / 1000.0
            if fault.status is not None and decision.status is None:
                decision.status = fault.status
                decision.body = (fault.body if fault.body is not None
                                 else default_body(path, fault.status))
                if fault.retry_after is not None:
                    retry = fault.retry_after
                    decision.headers["retry-after"] = str(int(retry) if retry == int(retry)
                                                          else retry)
            decision.drop = decision.drop or fault.drop_after_commit
            decision.strip += fault.strip_fields
        return decision


class GatewayTable:
    """Routes the gateway door refuses, and how."""

    def __init__(self, routes: list[dict[str, Any]] | None = None) -> None:
        self.default = [dict(r) for r in (DEFAULT_GATEWAY_ROUTES if routes is None else routes)]
        self.routes: list[dict[str, Any]] = []
        self._compiled: list[tuple[re.Pattern[str], dict[str, Any]]] = []
        self.replace(self.default)

    def replace(self, routes: list[dict[str, Any]]) -> None:
        """Replace the table; TypeError/ValueError on a malformed entry."""
        compiled = []
        for entry in routes:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                raise TypeError("each gateway route needs a path")
            status = int(entry.get("status", 502))
            if not 100 <= status <= 599:
                raise ValueError("status must be an HTTP status code")
            clean = {"method": str(entry.get("method", "*")).upper(), "path": entry["path"],
                     "status": status, "body": entry.get("body", "Bad Gateway")}
            compiled.append((_glob(clean["path"]), clean))
        self._compiled = compiled
        self.routes = [c for _, c in compiled]

    def restore(self) -> None:
        self.replace(self.default)

    def refusal(self, method: str, path: str) -> dict[str, Any] | None:
        for regex, entry in self._compiled:
            if _method_ok(entry["method"], method) and regex.match(path):
                return entry
        return None


class Stats:
    """Request counts by door, method and route template."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def hit(self, door: str, method: str, template: str) -> None:
        self.counts[(door, method, template)] += 1

    def as_json(self) -> dict[str, Any]:
        rows = [{"door": d, "method": m, "route": t, "count": n}
                for (d, m, t), n in sorted(self.counts.items())]
        return {"total": sum(self.counts.values()), "requests": rows}
