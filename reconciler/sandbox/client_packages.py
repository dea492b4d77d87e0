"""Client packages: create (`POST /platform/v1/payment/client_packages`), show and update
(`GET/PUT /business/payments/v1/client_packages/{uid}`), redeem (`.../update_usage`).

Create (201, `{"status":"OK","data":{"client_package":...}}`): `client_id` and `package_id` of
this business are required, and the package must be active (else 422). `valid_from` defaults to
today (UTC), `valid_until` to `valid_from` + the package's expiration; past dates are accepted on
create (seed 000 creates a 2024 package and expects 201), but `valid_until` before `valid_from` is
422. `price` overrides the catalog price (numeric strings accepted: seed 000 echoes the list's
`"25.0"`). One booking credit per package item, with `credit_items` = that item's services; a
payment request in state `"overdue"` (KB), linked both ways (`payment_requests.py`; none for a
price-0 package when the operator says so); the answer also carries `payment_status_uid` (KB: the
create decorator exposes it) with the payment request's UID. The matter is `matter_uid` when sent
(what the controller reads, KB) or the client's default matter. Sending `conversation_id` answers
500 "unknown attribute", as the KB update_usage recipe observed (API-NOTES §9.6).

Update: `{"client_package": {"valid_until", "booking_credits": [{"id", "total_bookings"}]}}`; other
fields are ignored. 422 (business envelope, with `field`) when `valid_until` is not a date, in the
past, or before `valid_from`; when a credit id is unknown; when `total_bookings` is not a whole
number or below that credit's `bookings_usage`. All-or-nothing. Older KB bodies wrote arrays as
`{"0": {...}}` objects; they are accepted too. Unknown uid or another business's → 404.

update_usage: needs a payment status made by the operator (`POST /_sandbox/payment_statuses`);
an unknown one answers the 500 the KB saw (the broken rescue block).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from . import payment_requests, render
from .context import Ctx, Reply
from .envelopes import ApiError, ok
from .store import Store
from .values import Clock, add_period, new_uid, parse_date, parse_decimal, parse_int

UPDATE_USAGE_500 = {
    "status": "Error",
    "error": "undefined local variable or method `exception' for "
             "Components::Payments::ClientPackagesAPI:Module",
}


def _booking_credits(package: dict[str, Any]) -> list[dict[str, Any]]:
    credits = []
    for item in package.get("items") or []:
        credits.append({
            "id": new_uid(),
            "total_bookings": parse_int(item.get("total_bookings")) or 0,
            "bookings_usage": 0,
            "credit_items": [{"item_id": sid, "item_type": "SERVICE", "bookings_usage": 0}
                             for sid in render.service_ids(item)],
        })
    return credits


def new_client_package_doc(store: Store, clock: Clock, business: dict[str, Any],
                           client: dict[str, Any], package: dict[str, Any], *,
                           valid_from: dt.date, valid_until: dt.date, amount: Any,
                           matter_uid: str | None = None,
                           products: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The stored document of a new client package (shared with the operator's bulk insert,
    which passes the business's `products` once instead of reading them per package)."""
    if products is None:  # read only when needed (most packages have none)
        products = ({p["id"]: p for p in store.all("product", business["id"])}
                    if package.get("products") else {})
    stamp = clock.stamp_ms()
    return {
        "id": new_uid(), "business_id": business["id"], "client_id": client["id"],
        "package_id": package["id"], "staff_id": business.get("staff_id"),
        "conversation_id": matter_uid or client.get("matter_uid"),
        "name": package.get("name", ""), "currency": package.get("currency", ""),
        "amount": str(amount), "image_path": package.get("image_path") or "",
        "products": [{"id": p["id"], "name": products.get(p["id"], {}).get("name", ""),
                      "quantity": p.get("quantity", 1)} for p in package.get("products") or []],
        "booking_credits": _booking_credits(package),
        "valid_from": valid_from.isoformat(), "valid_until": valid_until.isoformat(),
        "payment_request_id": None, "payment_request_state": None,
        "source": {"campaign": None, "channel": "", "name": "business_api", "website_url": None},
        "active": True, "created_at": stamp, "updated_at": stamp,
    }


def default_valid_until(package: dict[str, Any], valid_from: dt.date) -> dt.date:
    """`valid_from` plus the package's expiration (its default validity)."""
    return add_period(valid_from, parse_int(package.get("expiration")) or 0,
                      str(package.get("expiration_unit") or "m"))


def create_client_package(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    if "conversation_id" in body:
        raise ApiError(500, {"status": "Error",
                             "error": "unknown attribute 'conversation_id' for ClientPackage."})
    for name in ("client_id", "package_id"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise ctx.error(422, f"param is missing or the value is empty: {name}")
    # The reads are made in the write's transaction: one transaction per create instead of one
    # per statement (a refusal rolls back a transaction that wrote nothing).
    today = ctx.clock.today()
    with ctx.store.write() as tx:
        doc = _validated_doc(ctx, body, today)
        request = (payment_requests.open_for(tx, ctx.clock, doc, ctx.business_id)
                   if payment_requests.opens_request(ctx.behaviour, doc["amount"]) else None)
        tx.insert("client_package", doc, business_id=ctx.business_id)
    if request is not None:
        ctx.behaviour.note_opened(request["id"])
    shown = render.client_package(doc, today)
    shown["payment_status_uid"] = doc["payment_request_id"]
    return 201, ok("platform", {"client_package": shown})


def _validated_doc(ctx: Ctx, body: dict[str, Any], today: dt.date) -> dict[str, Any]:
    """The document of the client package ``body`` asks for (``valid_from`` defaults to ``today``),
    or the API's refusal."""
    # from the connection's cache of decoded documents (read only below): most creates name a
    # client and a package an earlier create read
    client = ctx.store.cached_in("client", body["client_id"], ctx.business_id)
    if client is None:
        raise ctx.error(422, "Client not found")
    package = ctx.store.cached_in("package", body["package_id"], ctx.business_id)
    if package is None:
        raise ctx.error(422, "Package not found")
    if not render.truthy(package.get("active", True)) or package.get("deleted_at"):
        raise ctx.error(422, "Package is not active")
    valid_from = today
    if body.get("valid_from") is not None:
        parsed = parse_date(body["valid_from"])
        if parsed is None:
            raise ctx.error(422, "Valid from is not a valid date (YYYY-MM-DD)")
        valid_from = parsed
    if body.get("valid_until") is not None:
        valid_until = parse_date(body["valid_until"])
        if valid_until is None:
            raise ctx.error(422, "Valid until is not a valid date (YYYY-MM-DD)")
    else:
        valid_until = default_valid_until(package, valid_from)
    if valid_until < valid_from:
        raise ctx.error(422, "Valid until must be equal or greater than valid from")
    amount = package.get("price")
    if body.get("price") is not None:
        price = parse_decimal(body["price"])
        if price is None or price < 0:
            raise ctx.error(422, "Price is not a number")
        amount = str(price)
    tax_uids = body.get("tax_uids", [])
    if not isinstance(tax_uids, list) or not all(isinstance(t, str) for t in tax_uids):
        raise ctx.error(422, "Tax uids must be an array of strings")
    return new_client_package_doc(ctx.store, ctx.clock, ctx.business, client, package,
                                  valid_from=valid_from, valid_until=valid_until, amount=amount,
                                  matter_uid=body.get("matter_uid"))


def _not_found(ctx: Ctx) -> ApiError:
    return ctx.error(404, "Client package not found", code="not_found")


def get_client_package(ctx: Ctx) -> Reply:
    doc = ctx.store.get_in("client_package", ctx.params["uid"], ctx.business_id)
    if doc is None:
        raise _not_found(ctx)
    return 200, ok("business", {"client_package": render.client_package(doc, ctx.clock.today())})


def _credit_changes(ctx: Ctx, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):  # older KB bodies: {"0": {...}, "1": {...}}
        value = [value[key] for key in sorted(value, key=lambda k: parse_int(k) or 0)]
    if not isinstance(value, list):
        raise ctx.error(422, "Booking credits must be an array", field="booking_credits")
    changes = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ctx.error(422, "Booking credit id is missing", field="booking_credits")
        total = parse_int(entry.get("total_bookings"))
        if total is None or total < 0:
            raise ctx.error(422, "Total bookings must be a whole number", field="total_bookings")
        changes.append({"id": entry["id"], "total_bookings": total})
    return changes


def update_client_package(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    changes = body.get("client_package")
    if not isinstance(changes, dict):
        raise ctx.error(422, "param is missing or the value is empty: client_package",
                        field="client_package")
    credit_changes = (_credit_changes(ctx, changes["booking_credits"])
                      if "booking_credits" in changes else [])
    today = ctx.clock.today()
    with ctx.store.write() as tx:
        doc = tx.get("client_package", ctx.params["uid"])
        if doc is None or doc.get("business_id") != ctx.business_id:
            raise _not_found(ctx)
        if "valid_until" in changes:
            valid_until = parse_date(changes["valid_until"])
            if valid_until is None:
                raise ctx.error(422, "Valid until is not a valid date", field="valid_until")
            if valid_until < today:
                raise ctx.error(422, "Valid until must be in the future", field="valid_until")
            valid_from = parse_date(doc.get("valid_from"))
            if valid_from is not None and valid_until < valid_from:
                raise ctx.error(422, "Valid until must be equal or greater than valid from",
                                field="valid_until")
            doc["valid_until"] = valid_until.isoformat()
        credits = {c["id"]: c for c in doc.get("booking_credits") or []}
        for change in credit_changes:
            credit = credits.get(change["id"])
            if credit is None:
                raise ctx.error(422, f"Booking credit {change['id']} not found",
                                field="booking_credits")
            usage = parse_int(credit.get("bookings_usage")) or 0
            if change["total_bookings"] < usage:
                raise ctx.error(422, "Total bookings must be equal or greater than the bookings "
                                f"usage ({usage})", field="total_bookings")
            credit["total_bookings"] = change["total_bookings"]
        doc["updated_at"] = ctx.clock.stamp_ms()
        tx.update("client_package", doc)
    return 200, ok("business", {"client_package": render.client_package(doc, today)})


def update_usage(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    status_uid = body.get("payment_status_uid") or body.get("payment_status_id")
    if not isinstance(status_uid, str) or not status_uid:
        raise ctx.error(422, "param is missing or the value is empty: payment_status_uid")
    today = ctx.clock.today()
    with ctx.store.write() as tx:
        status = tx.get("payment_status", status_uid)
        if status is None or status.get("business_id") != ctx.business_id:
            raise ApiError(500, UPDATE_USAGE_500)
        if status.get("state") == "paid":
            raise ctx.error(422, "Payment status is already paid")
        client = tx.get("client", status["client_id"]) or {}
        matter = body.get("matter_uid") or client.get("matter_uid")
        candidates = []
        for doc in ctx.store.all("client_package", ctx.business_id):
            if doc.get("client_id") != status["client_id"] or doc.get("conversation_id") != matter:
                continue
            if not render.client_package_active(doc, today):
                continue
            for credit in doc.get("booking_credits") or []:
                left = (parse_int(credit.get("total_bookings")) or 0) - (
                    parse_int(credit.get("bookings_usage")) or 0)
                items = [ci for ci in credit.get("credit_items") or []
                         if ci.get("item_id") == status.get("service_id")]
                if left > 0 and items:
                    candidates.append((doc["valid_until"], doc, credit, items[0]))
                    break
        if not candidates:
            raise ctx.error(422, "There is no package to use")
        _, doc, credit, item = min(candidates, key=lambda c: c[0])
        credit["bookings_usage"] = (parse_int(credit.get("bookings_usage")) or 0) + 1
        item["bookings_usage"] = (parse_int(item.get("bookings_usage")) or 0) + 1
        doc["updated_at"] = ctx.clock.stamp_ms()
        tx.update("client_package", doc)
        status.update(state="paid", price="0.0", client_package_id=doc["id"])
        tx.update("payment_status", status)
    return 200, ok("platform", {"package_name": doc.get("name", "")})
