"""Catalog packages: `GET/POST /platform/v1/payment/packages`, `GET/PUT .../packages/{package_id}`.

Validation follows the create schema of legacy_v1_sales.json: `name`, `price`, `currency`,
`items`, `expiration`, `expiration_unit` required; `expiration_unit` in D/W/M/Y (either case, as
verified requests used both); `items[]` = `{total_bookings, services:[{id}]}` with services of this
business (extra keys inside services are tolerated, as AT sends them); `products` must be an array
(null or omitted → 422, per the spec's bold warning), at most 3 products, quantity 1..5; `price`
may be a numeric string (the KB recipe sends `"25.0"`). Errors: 422 `{"status":"Error",...}`.

PUT takes `{"package": {...}}` with every field optional; `items` replaces the whole list;
`active: false` deactivates (true reactivates), leaving `deleted_at` null (deactivated, not
deleted). Client packages already sold keep their own copy (no retroactive change).
A package of another business, or an unknown id, is 422 "Package not found" (the spec documents
only 422 for this operation).

Pagination of the list (the spec is silent): `page` (default 1) and `per_page` (default 100,
values above 100 are cut to 100), oldest package first (by creation), no metadata in the answer,
like the clients list. `active_only=true` filters before paging; `include_items=true` adds items.
A package created less than the operator's `list_lag_seconds` ago is not listed yet (filtered
before paging, as an index that has not caught up would be); GET by id shows it at once.
"""

from __future__ import annotations

from typing import Any

from . import render
from .context import Ctx, Reply
from .envelopes import ok
from .values import new_uid, parse_decimal, parse_int

REQUIRED = ("name", "price", "currency", "items", "expiration", "expiration_unit")
UNITS = ("d", "w", "m", "y")


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _items(ctx: Ctx, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ctx.error(422, "Items must be an array")
    known = {s["id"] for s in ctx.store.all("service", ctx.business_id)}
    items = []
    for item in value:
        if not isinstance(item, dict):
            raise ctx.error(422, "Items must be objects with total_bookings and services")
        total = parse_int(item.get("total_bookings"))
        if total is None or total < 1:
            raise ctx.error(422, "Items total bookings must be a positive integer")
        services = item.get("services")
        if not isinstance(services, list) or not services:
            raise ctx.error(422, "Items services can't be blank")
        ids = []
        for service in services:
            sid = service.get("id") if isinstance(service, dict) else None
            if not isinstance(sid, str) or sid not in known:
                raise ctx.error(422, f"Service {sid} not found")
            ids.append({"id": sid})
        items.append({"total_bookings": total, "services": ids})
    return items


def _products(ctx: Ctx, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ctx.error(422, "Products must be an array (use [] for none)")
    if len(value) > 3:
        raise ctx.error(422, "Up to 3 different products are allowed")
    known = {p["id"]: p for p in ctx.store.all("product", ctx.business_id)}
    products = []
    for product in value:
        pid = product.get("id") if isinstance(product, dict) else None
        if not isinstance(pid, str) or pid not in known:
            raise ctx.error(422, f"Product {pid} not found")
        quantity = parse_int(product.get("quantity"))
        if quantity is None or not 1 <= quantity <= 5:
            raise ctx.error(422, "Product quantity must be between 1 and 5")
        products.append({"id": pid, "quantity": quantity})
    return products


def _fields(ctx: Ctx, body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """Validated, normalised fields of a create (all required) or update (all optional) body."""
    if not partial:
        for name in REQUIRED:
            if body.get(name) in (None, ""):
                raise ctx.error(422, f"{name.capitalize().replace('_', ' ')} can't be blank")
        if "products" not in body:
            raise ctx.error(422, "Products must be an array (use [] for none)")
    out: dict[str, Any] = {}
    if "name" in body:
        if not isinstance(body["name"], str) or not body["name"].strip():
            raise ctx.error(422, "Name can't be blank")
        out["name"] = body["name"]
    if "price" in body:
        price = parse_decimal(body["price"])
        if price is None or price < 0:
            raise ctx.error(422, "Price is not a number")
        out["price"] = str(price)
    if "currency" in body:
        currency = body["currency"]
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            raise ctx.error(422, "Currency is not a valid ISO 4217 code")
        out["currency"] = currency.upper()
    if "expiration" in body:
        expiration = parse_int(body["expiration"])
        if expiration is None or expiration < 1:
            raise ctx.error(422, "Expiration is not a number")
        out["expiration"] = expiration
    if "expiration_unit" in body:
        unit = body["expiration_unit"]
        if not isinstance(unit, str) or unit.lower() not in UNITS:
            raise ctx.error(422, "Expiration unit is not included in the list")
        out["expiration_unit"] = unit.lower()
    if "discount_amount" in body:
        discount = parse_decimal(body["discount_amount"])
        if discount is None or discount < 0:
            raise ctx.error(422, "Discount amount is not a number")
        out["discount_amount"] = str(discount)
    if "discount_unit" in body:
        unit = body["discount_unit"]
        if not isinstance(unit, str) or unit.lower() not in ("f", "p"):
            raise ctx.error(422, "Discount unit is not included in the list")
        out["discount_unit"] = unit.lower()
    for name in ("description", "image_path"):
        if name in body:
            if body[name] is not None and not isinstance(body[name], str):
                raise ctx.error(422, f"{name.capitalize().replace('_', ' ')} must be a string")
            out[name] = body[name]
    if "online_payment_enabled" in body:
        out["online_payment_enabled"] = render.truthy(body["online_payment_enabled"])
    if "items" in body:
        out["items"] = _items(ctx, body["items"])
    if "products" in body:
        out["products"] = _products(ctx, body["products"])
    if partial and "active" in body:
        out["active"] = render.truthy(body["active"])
    return out


def represent(ctx: Ctx, docs: list[dict[str, Any]], *, with_items: bool) -> list[dict[str, Any]]:
    """Render packages with the names of their services and products."""
    services = {s["id"]: s for s in ctx.store.all("service", ctx.business_id)} if with_items else {}
    products = {p["id"]: p for p in ctx.store.all("product", ctx.business_id)}
    return [render.package(doc, services, products, with_items=with_items) for doc in docs]


def list_packages(ctx: Ctx) -> Reply:
    docs = ctx.store.all("package", ctx.business_id)
    if ctx.behaviour.list_lag:
        docs = [doc for doc in docs if ctx.behaviour.listed(doc["id"])]
    if _is_true(ctx.query.get("active_only")):
        docs = [doc for doc in docs if render.truthy(doc.get("active", True))]
    offset, limit = ctx.paging(default_per_page=100)
    page = docs[offset:offset + limit]
    packages = represent(ctx, page, with_items=_is_true(ctx.query.get("include_items")))
    return 200, ok("platform", {"packages": packages})


def create_package(ctx: Ctx) -> Reply:
    fields = _fields(ctx, ctx.json_object(), partial=False)
    stamp = ctx.clock.stamp()
    doc: dict[str, Any] = {
        "id": new_uid(), "business_id": ctx.business_id, "description": "", "image_path": None,
        "online_payment_enabled": False, "discount_amount": "0", "discount_unit": "f",
        "active": True, "deleted_at": None, "created_at": stamp, "updated_at": stamp,
        "order": ctx.store.count("package", ctx.business_id), **fields,
    }
    with ctx.store.write() as tx:
        tx.insert("package", doc, business_id=ctx.business_id)
    ctx.behaviour.note_created(doc["id"])
    return 201, ok("platform", {"package": represent(ctx, [doc], with_items=True)[0]})


def get_package(ctx: Ctx) -> Reply:
    doc = ctx.store.get_in("package", ctx.params["package_id"], ctx.business_id)
    if doc is None:
        raise ctx.error(422, "Package not found")
    return 200, ok("platform", {"package": represent(ctx, [doc], with_items=True)[0]})


def update_package(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    changes = body.get("package")
    if not isinstance(changes, dict):
        raise ctx.error(422, "param is missing or the value is empty: package")
    fields = _fields(ctx, changes, partial=True)
    with ctx.store.write() as tx:
        doc = tx.get("package", ctx.params["package_id"])
        if doc is None or doc.get("business_id") != ctx.business_id:
            raise ctx.error(422, "Package not found")
        changed = {k: v for k, v in fields.items() if doc.get(k) != v}
        if changed:
            doc.update(changed, updated_at=ctx.clock.stamp())
            tx.update("package", doc)
    return 200, ok("platform", {"package": represent(ctx, [doc], with_items=True)[0]})


def reorder_packages(ctx: Ctx) -> Reply:
    """`PUT /business/payments/v1/packages/reorder` `{packages: [{id, order}]}`: set each named
    package's display position; the others keep theirs (spec prose). All or nothing."""
    entries = ctx.json_object().get("packages")
    if not isinstance(entries, list) or not entries:
        raise ctx.error(422, "packages is required", field="packages")
    wanted: dict[str, int] = {}
    for entry in entries:
        order = parse_int(entry.get("order")) if isinstance(entry, dict) else None
        pid = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(pid, str) or order is None:
            raise ctx.error(422, "each package needs an id and a numeric order", field="packages")
        wanted[pid] = order
    with ctx.store.write() as tx:
        docs = []
        for pid, order in wanted.items():
            doc = tx.get("package", pid)
            if doc is None or doc.get("business_id") != ctx.business_id:
                raise ctx.error(422, f"Package {pid} not found", field="packages")
            if doc.get("order") != order:
                doc.update(order=order, updated_at=ctx.clock.stamp())
                docs.append(doc)
        for doc in docs:
            tx.update("package", doc)
    return 200, ok("business", {})
