"""Seeding: the demo business (from `demo_business.json`) and businesses made by the operator.

`DEMO` is the parsed fixture. Its UIDs and tokens are what `manifests/` refers to, so they are
copied as they are. Operator-made businesses get fresh UIDs, a staff token `sbx_staff_<uid>`,
optionally a directory of their own with a token `sbx_directory_<uid>`, and generated services,
clients and products.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .store import Store, Transaction
from .values import Clock, new_uid

DEMO_PATH = Path(__file__).with_name("demo_business.json")
DEMO: dict[str, Any] = json.loads(DEMO_PATH.read_text(encoding="utf-8"))

GENERATED_SERVICE_NAMES = ("Lesson", "Workshop", "Consultation", "Class", "Session")


def _client_doc(clock: Clock, data: dict[str, Any]) -> dict[str, Any]:
    stamp = clock.stamp()
    return {
        "id": data["id"],
        "first_name": data.get("first_name", ""),
        "last_name": data.get("last_name", ""),
        "email": data.get("email", ""),
        "mobile_phone": data.get("mobile_phone", ""),
        "address": data.get("address", ""),
        "customer_status": data.get("customer_status", "customer"),
        "tags": list(data.get("tags", [])),
        "matter_uid": data.get("matter_uid") or new_uid(),
        "created_at": stamp,
        "updated_at": stamp,
    }


def _service_doc(data: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "id": data["id"],
        "name": data["name"],
        "duration": data.get("duration", 60),
        "price": data.get("price", "0.0"),
        "currency": data.get("currency", currency),
    }


def _insert_business(tx: Transaction, clock: Clock, business: dict[str, Any],
                     staff: dict[str, Any], directory_id: str | None) -> None:
    doc = {
        "id": business["id"],
        "name": business["name"],
        "currency": business.get("currency", "USD"),
        "features": dict(business.get("features", {"booking_packages": True})),
        "staff_id": staff["id"],
        "directory_id": directory_id,
        "created_at": clock.stamp(),
    }
    tx.insert("business", doc, business_id=doc["id"])
    tx.insert("staff", {**staff, "business_id": doc["id"]}, business_id=doc["id"])


def seed_demo(store: Store, clock: Clock) -> None:
    """Insert the demo business, its directory, staff, tokens, services, clients and products."""
    demo = DEMO
    business_id = demo["business"]["id"]
    with store.write() as tx:
        if tx.get("business", business_id) is not None:
            return
        directory = demo["directory"]
        if tx.get("directory", directory["id"]) is None:
            tx.insert("directory", dict(directory))
            tx.add_token(demo["tokens"]["directory"], "directory", directory["id"])
        _insert_business(tx, clock, demo["business"], demo["staff"], directory["id"])
        tx.add_token(demo["tokens"]["staff"], "staff", business_id)
        currency = demo["business"].get("currency", "USD")
        for service in demo["services"]:
            tx.insert("service", _service_doc(service, currency), business_id=business_id)
        for client in demo["clients"]:
            tx.insert("client", _client_doc(clock, client), business_id=business_id)
        for product in demo.get("products", []):
            tx.insert("product", dict(product), business_id=business_id)


def reset(store: Store, clock: Clock, *, seed: bool = True) -> None:
    """Wipe every object and token, then seed the demo business again (unless `seed` is off)."""
    with store.write() as tx:
        tx.wipe()
    if seed:
        seed_demo(store, clock)


def create_business(store: Store, clock: Clock, spec: dict[str, Any]) -> dict[str, Any]:
    """Make a business from an operator request; returns its ids, tokens and generated objects.

    `spec` keys: name, id?, currency?, booking_packages? (default true), services? (n),
    clients? (n), products? (n), directory_id? (an existing directory that will own it),
    directory? (true: make a new directory with its own token).
    """
    business_id = spec.get("id") or new_uid()
    name = spec.get("name") or f"Sandbox Business {business_id[:4]}"
    currency = spec.get("currency", "USD")
    staff = {"id": new_uid(), "first_name": "Sam", "last_name": "Staff",
             "email": f"staff.{business_id}@example.com"}
    result: dict[str, Any] = {"business_id": business_id, "staff_id": staff["id"],
                              "staff_token": f"sbx_staff_{business_id}"}
    with store.write() as tx:
        if tx.get("business", business_id) is not None:
            raise ValueError(f"business {business_id} already exists")
        directory_id = spec.get("directory_id")
        if directory_id is not None and tx.get("directory", directory_id) is None:
            raise ValueError(f"directory {directory_id} does not exist")
        if directory_id is None and spec.get("directory"):
            directory_id = new_uid()
            tx.insert("directory", {"id": directory_id, "name": f"{name} Directory"})
            tx.add_token(f"sbx_directory_{directory_id}", "directory", directory_id)
            result["directory_token"] = f"sbx_directory_{directory_id}"
        result["directory_id"] = directory_id
        features = {"booking_packages": bool(spec.get("booking_packages", True))}
        _insert_business(tx, clock, {"id": business_id, "name": name, "currency": currency,
                                     "features": features}, staff, directory_id)
        tx.add_token(result["staff_token"], "staff", business_id)
        services = []
        for n in range(1, int(spec.get("services", 0)) + 1):
            label = GENERATED_SERVICE_NAMES[(n - 1) % len(GENERATED_SERVICE_NAMES)]
            doc = _service_doc({"id": new_uid(), "name": f"{label} {n} (45 min)",
                                "duration": 45, "price": f"{40 + n}.0"}, currency)
            tx.insert("service", doc, business_id=business_id)
            services.append({"id": doc["id"], "name": doc["name"]})
        clients = []
        for n in range(1, int(spec.get("clients", 0)) + 1):
            doc = _client_doc(clock, {"id": new_uid(), "first_name": "Client",
                                      "last_name": str(n),
                                      "email": f"client{n}.{business_id}@example.com"})
            tx.insert("client", doc, business_id=business_id)
            clients.append({"id": doc["id"], "email": doc["email"]})
        products = []
        for n in range(1, int(spec.get("products", 0)) + 1):
            doc = {"id": new_uid(), "name": f"Product {n}", "price": f"{5 * n}.0"}
            tx.insert("product", doc, business_id=business_id)
            products.append({"id": doc["id"], "name": doc["name"]})
    result.update(services=services, clients=clients, products=products)
    return result


def info(store: Store) -> dict[str, Any]:
    """Businesses with their tokens, and the demo business's ids at the top level."""
    businesses = []
    for business in store.all("business"):
        tokens = {kind: token for token, kind in store.tokens_of(business["id"])}
        entry = {"business_id": business["id"], "name": business["name"],
                 "staff_id": business["staff_id"], "staff_token": tokens.get("staff"),
                 "directory_id": business.get("directory_id"),
                 "features": business["features"]}
        if business.get("directory_id"):
            dir_tokens = store.tokens_of(business["directory_id"])
            entry["directory_token"] = dir_tokens[0][0] if dir_tokens else None
        businesses.append(entry)
    demo_id = DEMO["business"]["id"]
    demo = next((b for b in businesses if b["business_id"] == demo_id), None)
    return {
        "business_id": demo_id if demo else None,
        "staff_token": demo["staff_token"] if demo else None,
        "directory_token": demo.get("directory_token") if demo else None,
        "directory_id": demo.get("directory_id") if demo else None,
        "staff_id": demo["staff_id"] if demo else None,
        "businesses": businesses,
    }
