"""Each planned operation as the API call that carries it out, and its description for a plan.

This is where the wire format of every write lives: which route, which path parameters, the
envelopes (``{"package": ...}``, ``{"client_package": ...}``), the body's field names and the
forms of its values (API-NOTES §6).  :func:`calls` maps an operation of
``reconciler.plan.operations`` to :class:`Call` records; :func:`describe` turns them into the
:class:`~reconciler.plan.operations.Request` records a plan shows, and ``VcitaClient.execute`` sends
the very same calls, so the request in a plan is byte for byte the request apply sends (values
known only after apply aside, shown as ``(known after apply)`` until the applier binds them).

The typed methods of ``VcitaClient`` (``create_catalog_package(body)`` ...) build their calls
with the same builders below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache, singledispatch
from typing import Any
from urllib.parse import quote

from reconciler.model.manifest import CatalogPackageSpec
from reconciler.plan.operations import (
    KNOWN_AFTER_APPLY,
    AdoptCatalogPackage,
    CreateCatalogPackage,
    CreateClientPackage,
    CreditIdOf,
    IdOf,
    Operation,
    ReorderCatalogPackage,
    Request,
    SetBookingCredits,
    UpdateCatalogPackage,
    UpdateClientPackage,
)
from reconciler.remote.dispatch import _json_default, encode_body
from reconciler.remote.routes import Route, RouteTable, rewrite_legacy

_REFS = (IdOf, CreditIdOf)


@dataclass(frozen=True)
class Call:
    """One request of the route table: the route's name, its path parameters and its body."""

    route: str
    params: Mapping[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    def unbound(self) -> bool:
        """Whether a value of it is still a reference (known only after apply)."""
        return any(isinstance(v, _REFS) for v in self.params.values()) or _has_ref(self.body)


# --- the builders (the typed client methods use them too) ---------------------------------------


def catalog_body(spec: CatalogPackageSpec) -> dict[str, Any]:
    """A catalog package as the API's package body (API-NOTES §6.1).

    Optional fields left out of the manifest are left out; an empty description or image path
    is sent as null (the API's "no value"); services of an item in sorted order.
    """
    body: dict[str, Any] = {
        "name": spec.name,
        "price": spec.price,
        "currency": spec.currency,
        "expiration": spec.expiration,
        "expiration_unit": spec.expiration_unit,
        "items": [{"total_bookings": i.total_bookings, "services": [{"id": s} for s in sorted(i.services)]}
                  for i in spec.items],
        "products": [{"id": p.id, "quantity": p.quantity} for p in spec.products],
    }
    for key in ("description", "image_path"):
        if getattr(spec, key) is not None:
            body[key] = getattr(spec, key) or None
    for key in ("discount_amount", "discount_unit", "online_payment_enabled", "active"):
        if getattr(spec, key) is not None:
            body[key] = getattr(spec, key)
    return body


def create_catalog_package(body: Mapping[str, Any]) -> Call:
    """POST a flat create body; ``products`` is sent as ``[]`` when absent (API-NOTES §9.2)."""
    payload = dict(body)
    if payload.get("products") is None:
        payload["products"] = []
    # The create route documents no `active` (a new package is active): `active: false` is sent
    # by the update that follows the create (API-NOTES §6.1, §6.2).
    payload.pop("active", None)
    return Call("create_catalog_package", {}, payload)


def reorder_packages(orders: list[tuple[str | IdOf, int]]) -> Call:
    """PUT the display positions of some packages (the others keep theirs), as
    ``{"packages": [{"id": ..., "order": ...}]}`` (API-NOTES §2 row 5)."""
    return Call("reorder_packages", {}, {"packages": [{"id": pid, "order": n} for pid, n in orders]})


def update_catalog_package(package_id: str | IdOf, body: Mapping[str, Any]) -> Call:
    """PUT the given fields, wrapped as ``{"package": {...}}`` (``items`` replaces the list)."""
    payload = dict(body) if set(body) == {"package"} else {"package": dict(body)}
    return Call("update_catalog_package", {"package_id": package_id}, payload)


def create_client_package(body: Mapping[str, Any]) -> Call:
    """Assign a package to a client.  A ``conversation_id`` is sent as ``matter_uid``, the name the
    controller reads (it answers 500 to conversation_id, API-NOTES §9.6)."""
    payload = dict(body)
    if "conversation_id" in payload:
        matter = payload.pop("conversation_id")
        payload.setdefault("matter_uid", matter)
    return Call("create_client_package", {}, payload)


def update_client_package(uid: str | IdOf, valid_until: date | str | None = None,
                          credits: list[tuple[Any, int]] | None = None) -> Call:
    """Change ``valid_until`` and/or credits' ``total_bookings``, wrapped as ``{"client_package": ...}``."""
    inner: dict[str, Any] = {}
    if valid_until is not None:
        inner["valid_until"] = valid_until
    if credits is not None:
        inner["booking_credits"] = [{"id": cid, "total_bookings": int(total)} for cid, total in credits]
    return Call("update_client_package", {"uid": uid}, {"client_package": inner})


# --- operations -> calls ------------------------------------------------------------------------


@singledispatch
def calls(op: Operation) -> tuple[Call, ...]:
    """The writes that carry out ``op`` (none for operations on the state alone)."""
    return ()


@calls.register
def _(op: CreateCatalogPackage) -> tuple[Call, ...]:
    return (create_catalog_package(catalog_body(op.spec)),)


def _catalog_update(remote_id: str | IdOf, spec: CatalogPackageSpec, fields: tuple[str, ...]) -> Call:
    body = catalog_body(spec)
    return update_catalog_package(remote_id, {k: v for k, v in body.items() if k in fields})


@calls.register
def _(op: UpdateCatalogPackage) -> tuple[Call, ...]:
    return (_catalog_update(op.remote_id, op.spec, op.fields),)


@calls.register
def _(op: ReorderCatalogPackage) -> tuple[Call, ...]:
    return (reorder_packages([(op.remote_id, op.order)]),)


@calls.register
def _(op: AdoptCatalogPackage) -> tuple[Call, ...]:
    return (_catalog_update(op.remote_id, op.spec, op.fields),) if op.fields else ()


@calls.register
def _(op: CreateClientPackage) -> tuple[Call, ...]:
    body: dict[str, Any] = {"client_id": op.client_id, "package_id": op.package_id}
    for key in ("valid_from", "valid_until", "price", "tax_uids", "matter_uid"):
        value = getattr(op, key)
        if value is not None:
            body[key] = list(value) if key == "tax_uids" else value
    return (create_client_package(body),)


@calls.register
def _(op: UpdateClientPackage) -> tuple[Call, ...]:
    credits = [(c.credit_id, c.total_bookings) for c in op.credits] or None
    return (update_client_package(op.remote_id, op.valid_until, credits),)


@calls.register
def _(op: SetBookingCredits) -> tuple[Call, ...]:
    return calls(op.as_update())


# --- descriptions -------------------------------------------------------------------------------


def describe(op: Operation, routes: RouteTable, door_for: Callable[[Route], Any] | None = None) -> tuple[Request, ...]:
    """How ``op`` is sent: method, path, door (when ``door_for`` is given) and the exact JSON body."""
    out = []
    for call in calls(op):
        route = routes[call.route]
        door = "" if door_for is None else str(getattr(chosen := door_for(route), "value", chosen))
        out.append(Request(operation=route.name, method=route.method, path=path_of(route, call.params),
                           door=door, body=_described_body(call)))
    return tuple(out)


def unlike(op: Operation, routes: RouteTable, planned: Sequence[Request]) -> bool:
    """Whether ``planned`` (a plan's requests for ``op``) is not what :func:`describe` gives for
    ``op`` now, doors aside: the same operation, method, path and body, each built as
    :func:`describe` builds it, compared without building the descriptions (apply checks every
    operation this way before sending it)."""
    found = calls(op)
    if len(found) != len(planned):
        return True
    for call, r in zip(found, planned, strict=True):
        route = routes[call.route]
        if (r.operation, r.method, r.path, r.body) != (route.name, route.method, path_of(route, call.params),
                                                       _described_body(call)):
            return True
    return False


def _described_body(call: Call) -> dict[str, Any] | None:
    """The body as JSON decodes it once encoded for sending (Decimals as numbers, dates as ISO
    text), references shown as such: ``json.loads(encode_body(_shown(body)))``, built directly
    when the body holds only the usual types (apply checks every operation's body this way)."""
    if call.body is None:
        return None
    direct = _as_decoded(call.body)
    if direct is not _OTHER:
        return direct  # type: ignore[no-any-return]
    return json.loads(encode_body(_shown(call.body)))  # type: ignore[no-any-return]


_OTHER = object()  # a value _as_decoded leaves to the encoder itself
#: types that JSON gives back as they are (a float's text is its repr, read back exactly; a NaN,
#: equal to nothing, is left to the encoder, so that it is a new object as decoding makes it)
_AS_THEY_ARE = frozenset({str, int, bool, type(None)})


def _as_decoded(value: Any) -> Any:
    """What ``json.loads(encode_body(_shown(value)))`` gives (keys in the same order, as a plan
    shows them), for exact built-in types, Decimals, dates and references; :data:`_OTHER` as
    soon as it meets anything else (a subclass, a set, a datetime, a key that is not a str), for
    the encoder to decide.  Checked against the encoder in tests/remote/test_planned_check.py."""
    kind = type(value)
    if kind in _AS_THEY_ARE or (kind is float and value == value):
        return value
    if kind is dict:
        for k in value:
            if type(k) is not str:
                return _OTHER
        out: dict[str, Any] = {}
        for k in sorted(value):  # in the encoder's order (sort_keys), which decoding keeps
            if (v := _as_decoded(value[k])) is _OTHER:
                return _OTHER
            out[k] = v
        return out
    if kind is list or kind is tuple:
        items = []
        for v in value:
            if (v := _as_decoded(v)) is _OTHER:
                return _OTHER
            items.append(v)
        return items
    if kind is IdOf or kind is CreditIdOf:
        return KNOWN_AFTER_APPLY
    if kind is Decimal:
        return _json_default(value)  # an int or a float, as the encoder writes it
    if kind is date:
        return _json_default(value)  # its ISO text
    return _OTHER


class Offline:
    """The planner's remote side without a client (tests, benchmarks): descriptions from the route
    table alone (with no door unless ``door_for`` is given), and every request sendable."""

    def __init__(self, routes: RouteTable, door_for: Callable[[Route], Any] | None = None) -> None:
        self.routes = routes
        self.door_for = door_for

    def describe(self, op: Operation) -> tuple[Request, ...]:
        return describe(op, self.routes, self.door_for)

    def refusal(self, op: Operation, requests: tuple[Request, ...]) -> None:
        return None


def path_of(route: Route, params: Mapping[str, Any]) -> str:
    """The concrete path of ``route``; a parameter known only after apply reads as such."""
    if not params:
        return fixed_path(route)
    if not any(isinstance(v, _REFS) for v in params.values()):
        return route.path(**params)

    def fill(match: re.Match[str]) -> str:
        value = params.get(match.group(1))
        return KNOWN_AFTER_APPLY if isinstance(value, _REFS) else quote(str(value), safe="")

    return rewrite_legacy(re.sub(r"\{(\w+)\}", fill, route.template))


@lru_cache(maxsize=256)
def fixed_path(route: Route) -> str:
    """``route.path()``, computed once per route: the path of a route without parameters (a
    create's) is the same for every request.  A route whose template has parameters raises
    ValueError as ``route.path()`` does, every time (exceptions are not cached)."""
    return route.path()


def _shown(value: Any) -> Any:
    if isinstance(value, _REFS):
        return KNOWN_AFTER_APPLY
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    return value


def _has_ref(value: Any) -> bool:
    if isinstance(value, _REFS):
        return True
    if isinstance(value, dict):
        return any(_has_ref(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_ref(v) for v in value)
    return False
