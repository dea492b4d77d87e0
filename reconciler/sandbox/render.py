"""API representations of stored documents, with the real API's quirks.

Shapes follow the examples and schemas of the official specs (legacy_v1_sales.json, payments.json,
legacy_v1_clients.json): catalog packages print `price`, `total_price`, `discount_amount` as
decimal strings, `total_bookings` as a number but `items[].total_bookings` as a string, enum units in
lower case, item services with their names; client packages print `active` as the string
`"true"`/`"false"`, `total_bookings` and `bookings_usage` as strings, `amount` as a number, and
`credit_items[].bookings_usage` as a number. Renderers accept loosely typed documents (an operator
may overwrite `price` with `99` or `"99"`), so they normalise on the way out.

Client-package `active` is computed as the spec's field description says: within
`valid_from..valid_until` (inclusive, UTC days) and some credit has `total_bookings >
bookings_usage` (and the record itself not switched off).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .values import count_text, money, parse_date, parse_int, plain_number


def truthy(value: Any) -> bool:
    """JSON booleans and their string forms (`"true"`, `"1"`) as bool."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def service_ids(item: dict[str, Any]) -> list[str]:
    """The service UIDs of a package item (stored as `[{"id": ...}]`, tolerated as plain ids)."""
    out = []
    for service in item.get("services") or []:
        out.append(service.get("id") if isinstance(service, dict) else service)
    return [str(sid) for sid in out if sid is not None]


def package(doc: dict[str, Any], services: dict[str, dict[str, Any]],
            products: dict[str, dict[str, Any]], *, with_items: bool) -> dict[str, Any]:
    """A catalog package as `data.package` / `data.packages[]` show it."""
    items = doc.get("items") or []
    total = sum(parse_int(item.get("total_bookings")) or 0 for item in items)
    out: dict[str, Any] = {
        "id": doc["id"],
        "name": doc.get("name", ""),
        "currency": doc.get("currency", ""),
        "price": money(doc.get("price")),
        "total_price": money(doc.get("price")),
        "taxes": [],
        "expiration": plain_number(doc.get("expiration")),
        "expiration_unit": str(doc.get("expiration_unit") or "").lower(),
        "description": doc.get("description") or "",
        "image_path": doc.get("image_path"),
        "online_payment_enabled": truthy(doc.get("online_payment_enabled", False)),
        "discount_amount": money(doc.get("discount_amount")),
        "discount_unit": str(doc.get("discount_unit") or "f").lower(),
        "active": truthy(doc.get("active", True)),
        "order": plain_number(doc.get("order", 0)),
        "created_at": doc.get("created_at"),
        "updated_at": doc.get("updated_at"),
        "business_uid": doc.get("business_id"),
        "deleted_at": doc.get("deleted_at"),
        "total_bookings": total,
        "products": [
            {"id": p["id"], "name": products.get(p["id"], {}).get("name", p.get("name", "")),
             "quantity": plain_number(p.get("quantity", 1))}
            for p in doc.get("products") or []
        ],
    }
    if with_items:
        out["items"] = [
            {"total_bookings": count_text(item.get("total_bookings")),
             "services": [{"id": sid, "name": services.get(sid, {}).get("name", "")}
                          for sid in service_ids(item)]}
            for item in items
        ]
    return out


def _credit(credit: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": credit["id"],
        "total_bookings": count_text(credit.get("total_bookings")),
        "bookings_usage": count_text(credit.get("bookings_usage")),
        "credit_items": [
            {"item_id": ci.get("item_id"), "item_type": ci.get("item_type", "SERVICE"),
             "bookings_usage": parse_int(ci.get("bookings_usage")) or 0}
            for ci in credit.get("credit_items") or []
        ],
    }


def client_package_active(doc: dict[str, Any], today: dt.date) -> bool:
    """Within its validity days and with a credit left (spec: GET client package, `active`)."""
    start, end = parse_date(doc.get("valid_from")), parse_date(doc.get("valid_until"))
    if not truthy(doc.get("active", True)) or start is None or end is None:
        return False
    if not start <= today <= end:
        return False
    return any((parse_int(c.get("total_bookings")) or 0) > (parse_int(c.get("bookings_usage")) or 0)
               for c in doc.get("booking_credits") or [])


def client_package(doc: dict[str, Any], today: dt.date) -> dict[str, Any]:
    """A client package as `data.client_package` shows it (POST, GET and PUT alike)."""
    credits = [_credit(c) for c in doc.get("booking_credits") or []]
    total = sum(int(c["total_bookings"]) for c in credits)
    usage = sum(int(c["bookings_usage"]) for c in credits)
    return {
        "id": doc["id"],
        "active": "true" if client_package_active(doc, today) else "false",
        "amount": plain_number(doc.get("amount")),
        "booking_credits": credits,
        "bookings_usage": str(usage),
        "business_id": doc.get("business_id"),
        "client_id": doc.get("client_id"),
        "conversation_id": doc.get("conversation_id"),
        "created_at": doc.get("created_at"),
        "currency": doc.get("currency", ""),
        "image_path": doc.get("image_path") or "",
        "name": doc.get("name", ""),
        "package_id": doc.get("package_id"),
        "payment_request_id": doc.get("payment_request_id"),
        "payment_request_state": doc.get("payment_request_state"),
        "products": [
            {"id": p.get("id"), "name": p.get("name", ""),
             "quantity": plain_number(p.get("quantity", 1))}
            for p in doc.get("products") or []
        ],
        "source": dict(doc.get("source") or {}),
        "staff_id": doc.get("staff_id"),
        "total_bookings": str(total),
        "valid_from": doc.get("valid_from"),
        "valid_until": doc.get("valid_until"),
    }


def client(doc: dict[str, Any], business_id: str) -> dict[str, Any]:
    """A client as `GET /platform/v1/clients` lists it."""
    return {
        "address": doc.get("address") or "",
        "business_uid": business_id,
        "campaign": doc.get("campaign") or "",
        "channel": doc.get("channel") or "",
        "created_at": doc.get("created_at"),
        "custom_field1": doc.get("custom_field1") or "",
        "custom_field2": doc.get("custom_field2") or "",
        "custom_field3": doc.get("custom_field3") or "",
        "customer_status": doc.get("customer_status") or "customer",
        "email": doc.get("email") or "",
        "first_name": doc.get("first_name") or "",
        "id": doc["id"],
        "last_name": doc.get("last_name") or "",
        "mobile_phone": doc.get("mobile_phone") or "",
        "normalized_phone": doc.get("normalized_phone"),
        "opt_in": "1" if truthy(doc.get("opt_in", False)) else "0",
        "source": doc.get("source") or "",
        "source_url": doc.get("source_url") or "",
        "tags": list(doc.get("tags") or []),
        "updated_at": doc.get("updated_at"),
    }


def service(doc: dict[str, Any]) -> dict[str, Any]:
    """A service as `GET /platform/v1/services` lists it."""
    price = plain_number(doc.get("price"))
    return {
        "id": doc["id"],
        "type": doc.get("type") or "AppointmentService",
        "name": doc.get("name", ""),
        "charge_type": doc.get("charge_type") or ("paid" if price else "no_price"),
        "price": price,
        "currency": doc.get("currency") or "USD",
        "duration": plain_number(doc.get("duration", 60)),
        "interaction_type": doc.get("interaction_type") or "default_business_location",
        "image_path": doc.get("image_path") or "",
        "photo_path": doc.get("photo_path"),
        "description": doc.get("description") or "",
        "approval_mode": doc.get("approval_mode") or "immediate",
        "staff_settings": {"random_selection": False, "joint_availability": None},
    }
