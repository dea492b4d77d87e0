"""The declarative route table: which door, token and envelope each API operation uses.

vcita is reached through two doors (API-NOTES §3): the main API gateway and the fallback API.
Some routes are refused by the gateway although the fallback serves them; the flags below are the
currently verified ones (seeds 000, 001, 003; workflows ``useFallbackApi``), and
:func:`gateway_refusal` recognises a gateway answer that *proves* the request was not executed,
so the dispatcher may repeat it once on the fallback and remember that for the rest of the run.
A target without a fallback URL sends every route to the gateway.

Tokens (API-NOTES §4, §9.4): every route prefers the staff token; ``alt`` names the directory
token (sent with ``X-On-Behalf-Of``) where vcita accepts one.  On the package list, a refused
staff token (:func:`token_refusal`) is repeated once with the directory token, and the route keeps
it for the rest of the run (the verified list recipe: "Staff returns 422 Unauthorized"); a target
with only a directory token uses it where ``alt`` allows and cannot run the other routes.

    operation               method  path                                          door      alt
    list_catalog_packages   GET     /platform/v1/payment/packages                 fallback  directory (also when refused)
    get_catalog_package     GET     /platform/v1/payment/packages/{package_id}    gateway   -
    create_catalog_package  POST    /platform/v1/payment/packages                 gateway   directory
    update_catalog_package  PUT     /platform/v1/payment/packages/{package_id}    gateway   directory
    reorder_packages        PUT     /business/payments/v1/packages/reorder        fallback  staff (directory first)
    create_client_package   POST    /platform/v1/payment/client_packages          gateway   -
    get_client_package      GET     /business/payments/v1/client_packages/{uid}   fallback  -
    update_client_package   PUT     /business/payments/v1/client_packages/{uid}   fallback  -
    list_payment_requests   GET     /business/payments/v1/payment_requests        fallback  directory
    get_payment_request     GET     /business/payments/v1/payment_requests/{uid}  fallback  -
    list_clients            GET     /platform/v1/clients                          gateway   directory
    list_services           GET     /platform/v1/services                         gateway   -

A target may pin a route to a door and/or a token (:class:`RoutePin`, ``[targets.X.routes]``):
a pinned door or token is never switched.  :func:`next_try` is the one rule for what to try
after a refusal; the dispatcher follows it, and ``reconciler doctor`` predicts with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any
from urllib.parse import quote


class Door(str, Enum):
    GATEWAY = "gateway"
    FALLBACK = "fallback"

    def __str__(self) -> str:
        return self.value


class Envelope(str, Enum):
    #: ``{"status":"OK","data":{...}}`` / ``{"status":"Error","error":"..."}`` (/platform/v1/*)
    PLATFORM = "platform"
    #: ``{"success":true,"data":{...}}`` / ``{"success":false,"errors":[...]}`` (/business/payments/v1/*)
    BUSINESS = "business"


class TokenKind(str, Enum):
    STAFF = "staff"
    #: sent with ``X-On-Behalf-Of: <business id>``
    DIRECTORY = "directory"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RoutePin:
    """A target's choice for one route: a door, a token, or both (``None``: not pinned)."""

    door: Door | None = None
    token: TokenKind | None = None

    def toml(self) -> str:
        """The inline-table value of ``[targets.X.routes]`` for this pin."""
        parts = [f'{k} = "{v}"' for k, v in (("door", self.door), ("token", self.token)) if v is not None]
        return "{ " + ", ".join(parts) + " }"


#: Documented paths that do not exist, and the path that serves them (seed 000).
LEGACY_REWRITES: Mapping[str, str] = {
    "/business/payments/platform/v1/payment/client_packages": "/platform/v1/payment/client_packages",
}


@dataclass(frozen=True)
class Route:
    """One API operation: how to address it and how safe it is to repeat."""

    name: str
    method: str
    template: str
    envelope: Envelope
    door: Door
    token: TokenKind = TokenKind.STAFF
    #: the other token vcita accepts here (used when the target lacks ``token``)
    alt: TokenKind | None = None
    #: a read whose ``token`` is refused is repeated with ``alt`` (kept for the run)
    alt_on_refusal: bool = False
    #: pinned by the target's configuration: never switched at run time
    door_pinned: bool = False
    token_pinned: bool = False
    #: repeating it cannot change the outcome (GET, and PUT of absolute values)
    idempotent: bool = True
    #: the key under ``data`` that holds the resource
    data_key: str = ""
    #: walk ``page``/``per_page`` until a short page
    paginated: bool = False

    def path(self, **params: str) -> str:
        """The concrete path, with each ``{name}`` filled in (URL-quoted)."""
        def fill(match: re.Match[str]) -> str:
            value = params.get(match.group(1))
            if value is None or value == "":
                raise ValueError(f"route {self.name}: missing path parameter {match.group(1)!r}")
            return quote(str(value), safe="")

        return rewrite_legacy(re.sub(r"\{(\w+)\}", fill, self.template))


def rewrite_legacy(path: str) -> str:
    """Replace a documented-but-absent legacy path by the one that serves it."""
    for old, new in LEGACY_REWRITES.items():
        if path == old or path.startswith(old + "/"):
            return new + path[len(old):]
    return path


class RouteTable:
    """The operations by name; immutable, with :meth:`with_doors` to derive variants."""

    def __init__(self, routes: list[Route]) -> None:
        self._routes = {r.name: r for r in routes}

    def __getitem__(self, name: str) -> Route:
        return self._routes[name]

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)

    def with_doors(self, door: Door | Mapping[str, Door]) -> RouteTable:
        """A copy with every route (a Door) or the named routes (a mapping) sent to another door."""
        if isinstance(door, Door):
            return RouteTable([replace(r, door=door) for r in self])
        return RouteTable([replace(r, door=door.get(r.name, r.door)) for r in self])

    def with_pins(self, pins: Mapping[str, RoutePin]) -> RouteTable:
        """A copy with each pinned route fixed to its pinned door and/or token."""
        def pinned(r: Route) -> Route:
            pin = pins.get(r.name)
            if pin is None:
                return r
            if pin.door is not None:
                r = replace(r, door=pin.door, door_pinned=True)
            if pin.token is not None:
                r = replace(r, token=pin.token, token_pinned=True)
            return r

        return RouteTable([pinned(r) for r in self]) if pins else self

    def match(self, method: str, path: str) -> Route | None:
        """The route whose template matches a concrete path (after the legacy rewrite)."""
        path = rewrite_legacy(path.split("?", 1)[0])
        for route in self:
            pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(route.template)) + "$"
            if route.method == method.upper() and re.match(pattern, path):
                return route
        return None


_P, _B = Envelope.PLATFORM, Envelope.BUSINESS
_GW, _FB = Door.GATEWAY, Door.FALLBACK
_DIR = TokenKind.DIRECTORY

DEFAULT_ROUTES = RouteTable([
    Route("list_catalog_packages", "GET", "/platform/v1/payment/packages", _P, _FB, alt=_DIR,
          alt_on_refusal=True, data_key="packages", paginated=True),
    Route("get_catalog_package", "GET", "/platform/v1/payment/packages/{package_id}", _P, _GW,
          data_key="package"),
    Route("create_catalog_package", "POST", "/platform/v1/payment/packages", _P, _GW, alt=_DIR,
          idempotent=False, data_key="package"),
    Route("update_catalog_package", "PUT", "/platform/v1/payment/packages/{package_id}", _P, _GW,
          alt=_DIR, data_key="package"),
    # Verified with a directory token + X-On-Behalf-Of through the fallback (API-NOTES §2 row 5);
    # the spec also names staff tokens, which no recipe tried: the directory token goes first.
    Route("reorder_packages", "PUT", "/business/payments/v1/packages/reorder", _B, _FB,
          token=_DIR, alt=TokenKind.STAFF),
    Route("create_client_package", "POST", "/platform/v1/payment/client_packages", _P, _GW,
          idempotent=False, data_key="client_package"),
    Route("get_client_package", "GET", "/business/payments/v1/client_packages/{uid}", _B, _FB,
          data_key="client_package"),
    Route("update_client_package", "PUT", "/business/payments/v1/client_packages/{uid}", _B, _FB,
          data_key="client_package"),
    # API-NOTES §11 (spec only, no recipe): the gateway refuses /business/payments/v1/* on staging.
    Route("list_payment_requests", "GET", "/business/payments/v1/payment_requests", _B, _FB, alt=_DIR,
          data_key="payment_requests", paginated=True),
    Route("get_payment_request", "GET", "/business/payments/v1/payment_requests/{uid}", _B, _FB,
          data_key="payment_request"),
    Route("list_clients", "GET", "/platform/v1/clients", _P, _GW, alt=_DIR, data_key="clients",
          paginated=True),
    Route("list_services", "GET", "/platform/v1/services", _P, _GW, data_key="services",
          paginated=True),
])


#: What reconciler sends that no verified recipe has tried (API-NOTES §1, §2 row 5, §6.2), by route:
#: ``reconciler doctor`` lists them; the README says the same.
UNVERIFIED: Mapping[str, str] = {
    "update_catalog_package": "active: false (deactivating a catalog package) is documented in the update "
                              "route's prose only, not in its schema, and no verified recipe tried it",
    "reorder_packages": "verified with a directory token + X-On-Behalf-Of through the fallback only; with a "
                        "staff token (the spec says it is accepted) it is unverified",
}


def gateway_refusal(route: Route, path: str, status: int, body: Any, content: bytes) -> str | None:
    """Why a *gateway* answer proves the request was not executed, or None if it does not.

    ``body`` is the parsed JSON (or None), ``content`` the raw body.  The proofs (API-NOTES §3, §5):
    401 on ``/business/payments/v1/*``; 422 ``{"status":"Error","error":"Unauthorized"}``; 404
    whose body says "bad gateway"; 502 for an idempotent request (for a POST a 502 proves nothing).
    """
    if status == 401 and path.startswith("/business/payments/v1/"):
        return "the gateway answers 401 on /business/payments/v1/*"
    if (
        status == 422 and isinstance(body, dict) and body.get("status") == "Error"
        and body.get("error") == "Unauthorized"
    ):
        return 'the gateway answered 422 "Unauthorized" (a routing refusal)'
    if status == 404 and b"bad gateway" in content.lower():
        return 'the gateway answered 404 "bad gateway"'
    if status == 502 and route.idempotent:
        return "the gateway answered 502 (bad gateway)"
    return None


def token_refusal(status: int, body: Any) -> str | None:
    """Why an answer shows the token was refused before anything ran, or None.

    401 (any of its bodies, API-NOTES §5) or 422 ``{"status":"Error","error":"Unauthorized"}``
    (the list recipe's "Staff returns 422 Unauthorized").  Authentication comes before any
    execution, so such an answer also proves the request was not executed.
    """
    if status == 401:
        return "the token was refused (401)"
    if (
        status == 422 and isinstance(body, dict) and body.get("status") == "Error"
        and body.get("error") == "Unauthorized"
    ):
        return 'the token was refused (422 "Unauthorized")'
    return None


@dataclass(frozen=True)
class Try:
    """One door and token to send a route's request with, and why it is being tried."""

    door: Door
    token: TokenKind
    why: str = ""


def next_try(
    route: Route, tried: Try, *, status: int, body: Any, content: bytes, has_fallback: bool,
    has_alt_token: bool, fell_back: bool, switched_token: bool,
) -> Try | None:
    """What to send next after the refusal ``status``/``body`` of ``tried``, or None (give up).

    1. From the gateway, to the fallback door, once, when the answer proves the gateway refused
       it (:func:`gateway_refusal`) and a fallback is configured and the door is not pinned.
    2. Else, for a read (GET) marked ``alt_on_refusal``, to the route's other token, once, when the
       answer is a token refusal (:func:`token_refusal`), the target has that token and the token
       is not pinned.
    """
    if tried.door is Door.GATEWAY and has_fallback and not fell_back and not route.door_pinned:
        reason = gateway_refusal(route, route.template, status, body, content)
        if reason is not None:
            return Try(Door.FALLBACK, tried.token, reason)
    if (
        route.method == "GET" and route.alt_on_refusal and route.alt is not None and has_alt_token
        and not switched_token and not route.token_pinned and tried.token is not route.alt
    ):
        reason = token_refusal(status, body)
        if reason is not None:
            return Try(tried.door, route.alt, f"{reason}: trying the {route.alt} token")
    return None
