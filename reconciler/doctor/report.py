"""``diagnose``: probe a target and say what works, what does not, and what would fix it.

The report holds, for every route of the route table, what each configured door answered with
each usable token (reads only: writes are never tried), which door and token a run would end up
using (:func:`probe.runtime_path`), the tokens' validity, kind and business, the
``booking_packages`` feature gate, the clock, latency and rate-limit headers — and the exact
``reconciler.toml`` lines (route pins, a fallback URL, a missing token variable) that would make
the failing routes work.  A fallback URL is only proposed after it answered: when a gateway-only
target is refused, the usual fallback beside the gateway (``…/apigw`` → ``…/api2``, the same
host) is probed.  Library code: it returns a :class:`Report`, it never prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reconciler.core.errors import ConfigError
from reconciler.doctor.probe import (
    READ_ROUTES,
    Outcome,
    Path_,
    clock_check,
    first_id,
    latency,
    probe,
    runtime_path,
)
from reconciler.remote.client import VcitaClient
from reconciler.remote.routes import UNVERIFIED, Door, Route, RoutePin, TokenKind
from reconciler.remote.target import ENV_FALLBACK, Target

OpenClient = Callable[[Target], AbstractAsyncContextManager[VcitaClient]]
GATED = ("list_catalog_packages", "get_catalog_package")


@dataclass
class RouteReport:
    """One route: its probes per door, and what a run would do."""

    route: Route
    outcomes: list[Outcome] = field(default_factory=list)
    path: Path_ | None = None  # reads
    uses: tuple[str, str] | None = None  # writes: the door and token a run would start with
    works: bool = False
    why: str = ""

    @property
    def read(self) -> bool:
        return self.route.name in READ_ROUTES

    def as_json(self) -> dict[str, Any]:
        r = self.route
        out: dict[str, Any] = {"route": r.name, "method": r.method, "path": r.template, "read": self.read,
                               "works": self.works, "why": self.why,
                               "probes": [o.as_json() for o in self.outcomes]}
        if self.path is not None:
            out["tries"] = [{"door": d, "token": t, "status": s} for d, t, s in self.path.tries]
            out["via"] = dict(zip(("door", "token"), self.path.via, strict=True)) if self.path.via else None
        if self.uses is not None:
            out["uses"] = {"door": self.uses[0], "token": self.uses[1]}
        return out


@dataclass
class Report:
    target: Target
    routes: list[RouteReport]
    tokens: list[dict[str, Any]]
    feature: str
    clock: dict[str, Any]
    latency: dict[str, dict[str, float | int]]
    rate_headers: dict[str, str]
    failures: list[str]
    fix_toml: list[str] = field(default_factory=list)
    fix_env: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    candidate: dict[str, Any] | None = None
    #: writes this target would send that no verified recipe tried (routes.UNVERIFIED)
    unverified: list[str] = field(default_factory=list)
    #: whether client packages can be found through payment requests (doctor/second_memory.py)
    second_memory: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, Any]:
        t = self.target
        return {
            "ok": self.ok,
            "target": {"name": t.name, "gateway_url": t.gateway_url, "fallback_url": t.fallback_url,
                       "business_id": t.business_id,
                       "tokens": [str(k) for k in TokenKind if t.token(k) is not None],
                       "route_pins": {n: p.toml() for n, p in t.route_pins}},
            "tokens": self.tokens, "feature_booking_packages": self.feature, "clock": self.clock,
            "latency": self.latency, "rate_limit_headers": self.rate_headers,
            "routes": [r.as_json() for r in self.routes], "failures": self.failures,
            "fix": {"reconciler_toml": self.fix_toml, "environment": self.fix_env, "notes": self.notes},
            "fallback_candidate": self.candidate, "unverified": self.unverified,
            "second_memory": self.second_memory,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2) + "\n"


def _unverified(api: VcitaClient) -> list[str]:
    """The writes a run would send that no verified recipe tried, as this target would send them."""
    out = []
    for name, why in UNVERIFIED.items():
        token = api.dispatcher.token_for(api.routes[name])
        if token is None:
            continue
        if name == "reorder_packages" and token is TokenKind.DIRECTORY:
            continue  # the verified recipe: directory token + X-On-Behalf-Of, fallback
        out.append(f"{name} ({token} token): {why}")
    return out


def _doors(target: Target) -> list[Door]:
    return [Door.GATEWAY] + ([Door.FALLBACK] if target.fallback_url else [])


def _tokens_for(target: Target, route: Route) -> list[TokenKind]:
    kinds = [route.token] if route.token_pinned else [route.token, *([route.alt] if route.alt else [])]
    return [k for k in dict.fromkeys(kinds) if target.token(k) is not None]


async def _probe_reads(api: VcitaClient, names: tuple[str, ...] = READ_ROUTES) -> dict[str, list[Outcome]]:
    found: dict[str, list[Outcome]] = {}
    package_id: str | None = None
    for name in names:
        route = api.routes[name]
        object_id = package_id if name == "get_catalog_package" else None
        outs = [await probe(api, route, door, token, object_id=object_id)
                for door in _doors(api.target) for token in _tokens_for(api.target, route)]
        found[name] = outs
        if name == "list_catalog_packages":
            package_id = next((i for o in outs if (i := first_id(o, route.data_key))), None)
    return found


def _route_report(api: VcitaClient, route: Route, outs: list[Outcome]) -> RouteReport:
    rr = RouteReport(route, outs)
    rr.path = runtime_path(api, route, {(o.door, o.token): o for o in outs})
    rr.works = rr.path.works
    if rr.works and rr.path.via:
        door, token = rr.path.via
        extra = len(rr.path.tries) - 1
        rr.why = f"a run uses the {door} door with the {token} token" + (
            f" (after {extra} refused request{'s' if extra > 1 else ''}, once per run)" if extra else "")
    else:
        rr.why = rr.path.why
    return rr


def check_remote(target: Target) -> None:
    """ConfigError for the embedded sandbox: there is nothing remote to check."""
    if target.embedded:
        raise ConfigError("doctor checks a remote target; this one is the embedded sandbox, which needs no check",
                          hint="Point it at vcita (VCITA_* variables or reconciler.toml), or at a served sandbox "
                               "('reconciler sandbox serve').")


async def diagnose(api: VcitaClient, open_client: OpenClient | None = None) -> Report:
    """Probe ``api``'s target (read-only) and build the report; ``open_client`` opens a client for
    a candidate target (a guessed fallback URL) and defaults to ``VcitaClient`` with ``api``'s settings."""
    target = api.target
    check_remote(target)
    outcomes = await _probe_reads(api)
    routes = [_route_report(api, api.routes[name], outcomes[name]) for name in READ_ROUTES]
    from reconciler.doctor import second_memory

    for route in api.routes:
        if route.name in READ_ROUTES or route.name in second_memory.ROUTES:
            continue
        token = api.dispatcher.token_for(route)
        rr = RouteReport(route, uses=(str(api.dispatcher.door_for(route)), str(token)) if token else None)
        rr.works = token is not None
        rr.why = ("not tried: doctor never writes; a run starts on the "
                  f"{rr.uses[0]} door with the {rr.uses[1]} token" if rr.uses else
                  f"not available: vcita accepts only the {route.token} token here, and the target has none")
        routes.append(rr)
    every = [o for outs in outcomes.values() for o in outs]
    tokens = [_token_report(target, kind, every) for kind in TokenKind]
    report = Report(
        target=target, routes=routes, tokens=tokens, feature=_feature(every), clock=clock_check(every),
        latency=latency(every), rate_headers={k: v for o in every for k, v in o.rate_headers.items()},
        failures=[f"{r.route.name}: {r.why}" for r in routes if not r.works],
    )
    report.failures += [f"{t['kind']} token: {t['detail']}" for t in tokens if t["status"] == "wrong business"]
    report.unverified = _unverified(api)
    await _fixes(report, api, open_client)
    report.second_memory = await second_memory.check(api)
    return report


def _feature(outcomes: list[Outcome]) -> str:
    if any(o.status == "feature_off" for o in outcomes):
        return "off"
    return "on" if any(o.ok and o.route in GATED for o in outcomes) else "unknown"


def _token_report(target: Target, kind: TokenKind, outcomes: list[Outcome]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": str(kind)}
    if target.token(kind) is None:
        return {**out, "status": "not configured", "detail": ""}
    mine = [o for o in outcomes if o.token == str(kind)]
    good = [o for o in mine if o.ok]
    if good:
        seen = set().union(*(o.business_ids for o in good))
        others = seen - {target.business_id}
        if others:
            return {**out, "status": "wrong business", "detail": (
                f"it reads business {', '.join(sorted(others))}, not {target.business_id}: the business id and "
                f"the {kind} token do not belong together"), "business": sorted(seen)}
        which = ("business-bound: answers without X-On-Behalf-Of (a staff token)" if kind is TokenKind.STAFF
                 else f"accepted with X-On-Behalf-Of {target.business_id}")
        where = "confirmed by the objects it read" if seen else "not confirmed: nothing to read yet"
        return {**out, "status": "valid", "detail": f"{which}; business {target.business_id} {where}",
                "business": sorted(seen)}
    refused = [o for o in mine if o.status == "token_refused"]
    texts = " ".join(o.detail for o in refused)
    if not refused:
        return {**out, "status": "not confirmed", "detail": "no route answered with this token"}
    if "401 Unauthorized" in texts:
        detail = "refused as missing, unknown or expired (401 Unauthorized)"
        status = "invalid"
    elif kind is TokenKind.DIRECTORY and any(o.http_status == 401 for o in refused):
        detail = f"refused for business {target.business_id}: does its directory own this business?"
        status = "refused"
    elif kind is TokenKind.STAFF and all(o.http_status == 401 for o in refused):
        detail = "accepted but without a business: a directory or app token? (put it in VCITA_DIRECTORY_TOKEN)"
        status = "refused"
    else:
        detail = f"refused wherever it was tried ({refused[0].detail})"
        status = "refused"
    return {**out, "status": status, "detail": detail}


def _candidate_url(gateway: str) -> str | None:
    """The fallback usually beside a gateway: ``…/apigw`` → ``…/api2`` on the same host."""
    parts = urlsplit(gateway)
    path = parts.path.rstrip("/")
    if not path.endswith("/apigw"):
        return None
    return urlunsplit(parts._replace(path=path[: -len("apigw")] + "api2"))


async def _fixes(report: Report, api: VcitaClient, open_client: OpenClient | None) -> None:
    target = report.target
    toml: list[str] = []
    pins: dict[str, RoutePin] = {}
    unfixable: list[str] = []
    failing = [r for r in report.routes if not r.works]
    if not failing:
        return
    refused_door = [r for r in failing if r.read and any(o.status == "door_refused" for o in r.outcomes)]
    if target.fallback_url is None and refused_door:
        await _try_candidate(report, api, open_client, [r.route.name for r in refused_door], toml, pins)
    for r in failing:
        if r.route.name in pins or (report.candidate and r.route.name in report.candidate["serves"]):
            continue
        good = [o for o in r.outcomes if o.ok]
        if good:
            best = sorted(good, key=lambda o: (o.door != str(r.route.door), o.token != TokenKind.STAFF))[0]
            pins[r.route.name] = RoutePin(Door(best.door), TokenKind(best.token))
        elif target.fallback_url is None and any(o.status == "door_refused" for o in r.outcomes):
            continue  # the note about the fallback URL says what to do
        elif any(o.status == "feature_off" for o in r.outcomes):
            _note(report, "Turn the booking_packages feature on for this business in vcita: every package route "
                          "answers 403 module_permission_missing, whatever the door or token.")
        elif r.route.alt is not None and target.token(r.route.alt) is None and any(
                o.status == "token_refused" for o in r.outcomes):
            toml.append(f'directory_token_env = "{_env_name(target, "DIRECTORY_TOKEN")}"')
            _note(report, f"{r.route.name}: the staff token is refused; vcita's recipe uses a directory token with "
                          f"X-On-Behalf-Of there: put the business's directory token in "
                          f"{_env_name(target, 'DIRECTORY_TOKEN')} (not verified: run doctor again).")
        elif target.staff_token is None:
            toml.append(f'token_env = "{_env_name(target, "STAFF_TOKEN")}"')
            _note(report, "The routes marked FAILS or NOT AVAILABLE need a staff token (vcita refuses directory "
                          f"tokens there): put this business's staff token in {_env_name(target, 'STAFF_TOKEN')}.")
        else:
            unfixable.append(r.route.name)
    if unfixable:
        _note(report, f"No door and token worked for {', '.join(unfixable)} (the answers are above), and nothing "
                      "in reconciler.toml can change that: check the URLs are vcita API doors, and the tokens.")
    name = target.name if target.name not in ("env", "") else "vcita"
    lines = list(dict.fromkeys(toml))
    if lines or pins:
        if target.name in ("env", ""):
            report.fix_toml.append(f'default_target = "{name}"   # VCITA_* variables still win for what they set')
        report.fix_toml.append(f"[targets.{name}]")
        report.fix_toml.extend(lines)
    if pins:
        report.fix_toml.append(f"[targets.{name}.routes]")
        report.fix_toml.extend(f"{n} = {p.toml()}" for n, p in sorted(pins.items()))


def _note(report: Report, text: str) -> None:
    if text not in report.notes:
        report.notes.append(text)


def _env_name(target: Target, what: str) -> str:
    if target.name in ("env", ""):
        return f"VCITA_{what}"
    return "".join(c if c.isalnum() else "_" for c in target.name).upper() + f"_{what}"


async def _try_candidate(report: Report, api: VcitaClient, open_client: OpenClient | None, names: list[str],
                         toml: list[str], pins: dict[str, RoutePin]) -> None:
    url = _candidate_url(report.target.gateway_url)
    if url is None:
        _note(report, "The gateway refused routes that vcita serves through its fallback door, and no fallback "
                      "URL is configured: set fallback_url (or VCITA_FALLBACK_URL) to vcita's fallback API "
                      "(ask vcita for it; staging's is https://app.meet2know.com/api2).")
        return
    candidate = replace(report.target, fallback_url=url, route_pins=())
    opener = open_client or (lambda t: VcitaClient(t, settings=api.settings, embedded=api.embedded))
    async with opener(candidate) as other:
        outcomes = await _probe_reads(other, tuple(n for n in READ_ROUTES if n in names))
        serves = []
        for name in names:
            rr = _route_report(other, other.routes[name], outcomes[name])
            if rr.works:
                serves.append(name)
            elif any(o.ok for o in rr.outcomes):
                best = next(o for o in rr.outcomes if o.ok)
                pins[name] = RoutePin(Door(best.door), TokenKind(best.token))
                serves.append(name)
    report.candidate = {"fallback_url": url, "serves": serves,
                        "probes": [o.as_json() for outs in outcomes.values() for o in outs]}
    if serves:
        toml.append(f"fallback_url = {json.dumps(url)}")
        report.fix_env.append(f"{ENV_FALLBACK}={url}")
        _note(report, f"The fallback door {url} (guessed from the gateway URL) answered "
                      f"{', '.join(serves)}: configure it.")
    else:
        _note(report, f"The usual fallback beside the gateway ({url}) does not serve the refused routes either: "
                      "ask vcita for its fallback API URL and set fallback_url.")
