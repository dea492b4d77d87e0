"""Probing a target, read-only: each read route on each configured door with each usable token.

A probe is one GET sent exactly as asked (``Dispatcher.send_once``: no fallback, no token switch,
nothing remembered), repeated only on 429 / 5xx / a failed connection, like any read.  Routes
addressing one object are probed with a made-up id when there is no real one: an answer "not
found" proves the route is reachable and the token accepted (vcita authenticates, and its
gateway routes, before it looks the object up).  Nothing is ever created or changed, and no file
is written.

:func:`classify` turns an answer into an :class:`Outcome`; :func:`runtime_path` predicts, with
the same rule the dispatcher follows (:func:`routes.next_try`), which door and token a run would
end up using from those answers.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler.remote.client import VcitaClient
from reconciler.remote.envelope import messages, parse_json
from reconciler.remote.routes import Door, Route, TokenKind, Try, gateway_refusal, next_try, token_refusal

#: the routes a run reads (every one must work); the writes are never tried
READ_ROUTES = ("list_catalog_packages", "get_catalog_package", "get_client_package", "list_clients",
               "list_services")
#: an id no vcita object has (16 characters, like vcita's UIDs, but with a dash no UID contains)
PROBE_ID = "reconciler-probe"
_MAX_DETAIL = 120
_RETRYABLE = (429, 500, 503, 504)


def printable(text: str, limit: int = _MAX_DETAIL) -> str:
    """Server text made safe for a terminal: control characters escaped, length bounded."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[:limit - 3] + "..."


@dataclass
class Outcome:
    """One probe: a route on a door with a token, and what came back."""

    route: str
    door: str
    token: str
    #: ok | door_refused | token_refused | feature_off | not_found | error | unreachable | unsupported
    status: str
    http_status: int | None = None
    detail: str = ""
    elapsed_ms: float = 0.0
    business_ids: set[str] = field(default_factory=set)
    date_header: str | None = None
    rate_headers: dict[str, str] = field(default_factory=dict)
    #: the answer itself, for runtime_path (never shown)
    body: Any = field(default=None, repr=False)
    content: bytes = field(default=b"", repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_json(self) -> dict[str, Any]:
        return {"route": self.route, "door": self.door, "token": self.token, "status": self.status,
                "http_status": self.http_status, "detail": self.detail,
                "elapsed_ms": round(self.elapsed_ms, 1)}


def _summary(body: Any, content: bytes) -> str:
    found = messages(body)
    if found:
        return "; ".join(m["message"] for m in found if m["message"])
    return " ".join(content.decode("utf-8", "replace").split())


def classify(route: Route, door: Door, token: TokenKind, status: int, body: Any, content: bytes,
             *, probe_id: bool) -> tuple[str, str]:
    """(status, detail) of one answer to a probe."""
    said = printable(_summary(body, content) or "empty body", 80)
    if 200 <= status < 300:
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, dict) and route.data_key in data:
            return "ok", "answered"
        return "error", f"{status}, but not a vcita answer ({said})"
    if status == 403 and isinstance(body, dict) and body.get("status") == "module_permission_missing":
        return "feature_off", "the business has the booking_packages feature turned off"
    if door is Door.GATEWAY and status < 500:
        reason = gateway_refusal(route, route.template, status, body, content)
        if reason is not None:
            return "door_refused", f"{reason}: {said}"
    if token_refusal(status, body) is not None:
        return "token_refused", f"the {token} token was refused ({status}: {said})"
    lowered = said.lower()
    if probe_id and ((status == 404 and body is not None) or (status == 422 and "not found" in lowered)):
        return "ok", f"reachable: the made-up id {PROBE_ID} was not found, as expected ({status})"
    if status == 404 and body is None:
        return "error", "404 with a non-JSON body: is the URL a vcita API door?"
    return "error", f"{status}: {said}"


async def probe(api: VcitaClient, route: Route, door: Door, token: TokenKind, *,
                object_id: str | None = None) -> Outcome:
    """Send one read as asked and classify its answer (429/5xx and failed connections retried)."""
    params: dict[str, Any] = {}
    if "{" in route.template:
        path = route.path(**{name: object_id or PROBE_ID for name in ("package_id", "uid")
                             if "{" + name + "}" in route.template})
    else:
        path = route.path()
        params = {"page": 1, "per_page": 1}
        if route.name == "list_services":
            params["business_id"] = api.target.business_id
    dispatcher = api.dispatcher
    elapsed = 0.0
    for attempt in range(1, dispatcher.policy.max_attempts + 1):
        response, failure, seconds = await dispatcher.send_once(route, path, door=door, token=token,
                                                                params=params)
        elapsed += seconds
        if response is not None and response.status_code not in _RETRYABLE:
            break
        if attempt < dispatcher.policy.max_attempts:
            await asyncio.sleep(dispatcher.policy.backoff(attempt))
    out = Outcome(route.name, str(door), str(token), "unreachable", elapsed_ms=elapsed * 1000)
    if response is None:
        out.detail = printable(f"no answer ({type(failure).__name__}{f': {failure}' if str(failure) else ''})")
        return out
    body = parse_json(response.content)
    out.http_status, out.body, out.content = response.status_code, body, response.content[:4096]
    out.status, out.detail = classify(route, door, token, response.status_code, body, response.content,
                                      probe_id="{" in route.template and object_id is None)
    out.business_ids = _business_ids(body, route.data_key) if out.ok else set()
    out.date_header = response.headers.get("date")
    out.rate_headers = {printable(k.lower(), 60): printable(v, 80) for k, v in response.headers.items()
                        if "ratelimit" in k.lower() or "rate-limit" in k.lower() or k.lower() == "retry-after"}
    return out


def _business_ids(body: Any, key: str) -> set[str]:
    data = body.get("data", {}) if isinstance(body, dict) else {}
    found = data.get(key) if isinstance(data, dict) else None
    rows = found if isinstance(found, list) else [found] if isinstance(found, dict) else []
    return {str(r.get("business_uid") or r.get("business_id")) for r in rows
            if isinstance(r, dict) and (r.get("business_uid") or r.get("business_id"))}


def first_id(outcome: Outcome | None, key: str) -> str | None:
    """The id of the first object of an ok list answer (to read one real object by id)."""
    if outcome is None or not outcome.ok or not isinstance(outcome.body, dict):
        return None
    rows = (outcome.body.get("data") or {}).get(key)
    if isinstance(rows, list) and rows and isinstance(rows[0], dict) and isinstance(rows[0].get("id"), str):
        return str(rows[0]["id"])
    return None


@dataclass
class Path_:
    """What a run would do for one route, predicted from the probes."""

    works: bool
    tries: list[tuple[str, str, str]]  # (door, token, status) in order
    via: tuple[str, str] | None = None
    why: str = ""


def runtime_path(api: VcitaClient, route: Route, probes: Mapping[tuple[str, str], Outcome]) -> Path_:
    """Follow the dispatcher's rule (:func:`next_try`) through the probes' answers."""
    dispatcher = api.dispatcher
    door, token = dispatcher.door_for(route), dispatcher.token_for(route)
    if token is None:
        have = " and ".join(str(k) for k in TokenKind if api.target.token(k) is not None)
        return Path_(False, [], why=f"not available: vcita accepts only the {route.token} token here, and the "
                                    f"target has only a {have} token")
    tries: list[tuple[str, str, str]] = []
    fell_back = switched = False
    has_alt = route.alt is not None and api.target.token(route.alt) is not None
    while True:
        got = probes.get((str(door), str(token)))
        if got is None:
            return Path_(False, tries, why=f"{door} with the {token} token was not probed")
        tries.append((str(door), str(token), got.status))
        if got.ok:
            return Path_(True, tries, via=(str(door), str(token)))
        if got.http_status is None:
            return Path_(False, tries, why=got.detail)
        step = next_try(route, Try(door, token), status=got.http_status, body=got.body, content=got.content,
                        has_fallback=api.target.fallback_url is not None, has_alt_token=has_alt,
                        fell_back=fell_back, switched_token=switched)
        if step is None:
            why = got.detail
            if got.status == "door_refused" and api.target.fallback_url is None:
                why += "; the target has no fallback door to send it to"
            return Path_(False, tries, why=why)
        fell_back = fell_back or step.door is not door
        switched = switched or step.token is not token
        door, token = step.door, step.token


def clock_check(outcomes: list[Outcome]) -> dict[str, Any]:
    """The local clock against the server's ``Date`` header (valid_until rules use today's date)."""
    local = datetime.now(UTC)
    dates = [o.date_header for o in outcomes if o.date_header]
    result: dict[str, Any] = {"local": local.strftime("%Y-%m-%dT%H:%M:%SZ"), "server": None,
                              "skew_seconds": None, "status": "unknown",
                              "detail": "the server sent no Date header"}
    if not dates:
        return result
    try:
        server = email.utils.parsedate_to_datetime(dates[-1])
    except (TypeError, ValueError):
        result["detail"] = f"the server's Date header cannot be read ({printable(dates[-1], 60)})"
        return result
    if server.tzinfo is None:
        server = server.replace(tzinfo=UTC)
    skew = (server - local).total_seconds()
    result.update(server=server.strftime("%Y-%m-%dT%H:%M:%SZ"), skew_seconds=round(skew, 1))
    if server.date() != local.date() or abs(skew) > 300:
        result.update(status="warning", detail=(
            f"this machine's clock is {abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} the server's; "
            "valid_until checks use today's date: fix the clock (NTP)"))
    else:
        result.update(status="ok", detail=f"within {max(abs(skew), 1):.0f} s of the server's (Date header)")
    return result


def latency(outcomes: list[Outcome]) -> dict[str, dict[str, float | int]]:
    """Per door: the median and largest time of the probes that got an answer (ms)."""
    out: dict[str, dict[str, float | int]] = {}
    for door in sorted({o.door for o in outcomes}, key=lambda d: d != "gateway"):
        times = sorted(o.elapsed_ms for o in outcomes if o.door == door and o.http_status is not None)
        if times:
            mid = len(times) // 2
            median = times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2
            out[door] = {"median_ms": round(median, 1), "max_ms": round(times[-1], 1), "requests": len(times)}
    return out
