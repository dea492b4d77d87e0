"""The declarative route table: which door, token and envelope each API operation uses.

vcita is reached through two doors (API-NOTES §3): the main API gateway and the fallback API.
Some routes are refused by the gateway although the fallback serves them; the flags below are the
currently verified ones (seeds 000, 001, 003; workflows ``useFallbackApi``), and
:func:`gateway_refusal` recognises a gateway answer that *proves* the request was not executed,
so the dispatcher may repeat it once on the fallback and remember that for the rest of the run.

    operation               method  path                                              door
    list_catalog_packages   GET     /platform/v1/payment/packages                     fallback
    get_catalog_package     GET     /platform/v1/payment/packages/{package_id}        gateway
    create_catalog_package  POST    /platform/v1/payment/packages                     gateway
    update_catalog_package  PUT     /platform/v1/payment/packages/{package_id}        gateway
    create_client_package   POST    /platform/v1/payment/client_packages              gateway
    get_client_package      GET     /business/payments/v1/client_packages/{uid}       fallback
    update_client_package   PUT     /business/payments/v1/client_packages/{uid}       fallback
    list_clients            GET     /platform/v1/clients                              gateway
    list_services           GET     /platform/v1/services                             gateway
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

DEFAULT_ROUTES = RouteTable([
    Route("list_catalog_packages", "GET", "/platform/v1/payment/packages", _P, _FB,
          data_key="packages", paginated=True),
    Route("get_catalog_package", "GET", "/platform/v1/payment/packages/{package_id}", _P, _GW,
          data_key="package"),
    Route("create_catalog_package", "POST", "/platform/v1/payment/packages", _P, _GW,
          idempotent=False, data_key="package"),
    Route("update_catalog_package", "PUT", "/platform/v1/payment/packages/{package_id}", _P, _GW,
          data_key="package"),
    Route("create_client_package", "POST", "/platform/v1/payment/client_packages", _P, _GW,
          idempotent=False, data_key="client_package"),
    Route("get_client_package", "GET", "/business/payments/v1/client_packages/{uid}", _B, _FB,
          data_key="client_package"),
    Route("update_client_package", "PUT", "/business/payments/v1/client_packages/{uid}", _B, _FB,
          data_key="client_package"),
    Route("list_clients", "GET", "/platform/v1/clients", _P, _GW, data_key="clients", paginated=True),
    Route("list_services", "GET", "/platform/v1/services", _P, _GW, data_key="services",
          paginated=True),
])


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
