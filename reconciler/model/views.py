"""Normalised views: desired and remote objects in one comparable shape.

A *view* is a plain JSON-safe dict with canonical values: money as a canonical decimal string
(``"540"``, ``"99.99"``), enums upper-case, dates ISO, lists keyed (items by their sorted service
set, products by id, booking credits by their sorted service set) so that order never shows up as
a difference.  Empty strings are absent values.  Desired views hold only the fields the manifest
manages; remote views hold every field, and comparison looks only at the managed ones.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from reconciler.model.manifest import CatalogPackageSpec, ClientPackageSpec, credit_key
from reconciler.model.remote import RemoteCatalogPackage, RemoteClientPackage

#: Client-package fields the API cannot change in place (API-NOTES §1, §6.5).
REPLACE_FIELDS = ("client_id", "package_id", "price", "valid_from", "matter_uid")


def money(d: Decimal | None) -> str | None:
    """Canonical decimal text: 540, 99.99, 0 (no exponent, no trailing zeros)."""
    if d is None:
        return None
    d = Decimal(d)
    if d == d.to_integral_value():
        return str(d.quantize(Decimal(1)))
    return format(d.normalize(), "f")


def _text(s: str | None) -> str | None:
    return s if s else None


def catalog_desired(spec: CatalogPackageSpec) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": spec.name,
        "price": money(spec.price),
        "currency": spec.currency,
        "expiration": spec.expiration,
        "expiration_unit": spec.expiration_unit,
        "items": {credit_key(i.services): i.total_bookings for i in spec.items},
        "products": {p.id: p.quantity for p in spec.products},
    }
    optional = {
        "description": _text(spec.description) if spec.description is not None else None,
        "image_path": _text(spec.image_path) if spec.image_path is not None else None,
        "discount_amount": money(spec.discount_amount),
        "discount_unit": spec.discount_unit,
        "online_payment_enabled": spec.online_payment_enabled,
        "active": spec.active,
        "order": spec.order,
    }
    for k, v in optional.items():
        if getattr(spec, k) is not None:
            view[k] = v
    return view


def catalog_remote(r: RemoteCatalogPackage) -> dict[str, Any]:
    return {
        "name": r.name,
        "price": money(r.price),
        "currency": r.currency.upper(),
        "expiration": r.expiration,
        "expiration_unit": r.expiration_unit,
        "items": {credit_key(i.services): i.total_bookings for i in (r.items or ())},
        "products": {p.id: p.quantity for p in r.products},
        "description": _text(r.description),
        "image_path": _text(r.image_path),
        "discount_amount": money(r.discount_amount),
        "discount_unit": r.discount_unit,
        "online_payment_enabled": r.online_payment_enabled,
        "active": bool(r.active and not r.deleted_at),
        "order": r.order,
    }


def client_desired(spec: ClientPackageSpec, client_id: str | None, package_id: str | None) -> dict[str, Any]:
    view: dict[str, Any] = {"client_id": client_id, "package_id": package_id}
    if spec.price is not None:
        view["price"] = money(spec.price)
    if spec.valid_from is not None:
        view["valid_from"] = spec.valid_from.isoformat()
    if spec.valid_until is not None:
        view["valid_until"] = spec.valid_until.isoformat()
    if spec.matter_uid is not None:
        view["matter_uid"] = spec.matter_uid
    if spec.booking_credits is not None:
        view["booking_credits"] = {credit_key(c.services): c.total_bookings for c in spec.booking_credits}
    return view


def client_remote(r: RemoteClientPackage) -> dict[str, Any]:
    """The full view of a client package; bookings_usage is left out (it moves with every booking)."""
    return {
        "client_id": r.client_id,
        "package_id": r.package_id,
        "price": money(r.price),
        "valid_from": r.valid_from.isoformat() if r.valid_from else None,
        "valid_until": r.valid_until.isoformat() if r.valid_until else None,
        "matter_uid": r.matter_uid,
        "booking_credits": {credit_key(c.services): c.total_bookings for c in r.booking_credits},
    }


def client_usage(r: RemoteClientPackage) -> dict[str, int]:
    return {credit_key(c.services): c.bookings_usage for c in r.booking_credits}


def client_credit_ids(r: RemoteClientPackage) -> dict[str, str]:
    return {credit_key(c.services): c.id for c in r.booking_credits}


def managed_part(remote_view: dict[str, Any], desired_view: dict[str, Any]) -> dict[str, Any]:
    """The remote values of exactly the fields (and credit keys) the desired view manages."""
    out: dict[str, Any] = {}
    for k, want in desired_view.items():
        have = remote_view.get(k)
        if k == "booking_credits" and isinstance(want, dict):
            have = {ck: (have or {}).get(ck) for ck in want}
        out[k] = have
    return out


def number(text: str | None) -> int | float | None:
    """A canonical money string as the JSON number the API expects."""
    if text is None:
        return None
    d = Decimal(text)
    return int(d) if d == d.to_integral_value() else float(d)
