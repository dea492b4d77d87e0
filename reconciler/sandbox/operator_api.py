"""The operator API under `/_sandbox/` (mounted only when the app is built with `operator=True`).

JSON in, JSON out; errors are `{"error": "<message>"}` with 400 (bad request), 404 (no such
object) or 422 (refused). It is the test and demo control panel, not part of vcita's API:

| method + path | body → answer |
|---|---|
| GET /info | → demo ids and tokens, `businesses[]`, `doors` (relative), `db_path`, `today` |
| POST /reset | → wipe + reseed the demo; faults, stats, clock and gateway table back to defaults |
| POST /businesses | `{name, id?, currency?, booking_packages? (true), services?, clients?, products?, directory_id?, directory?}` → `{business_id, staff_id, staff_token, directory_id, directory_token?, services[], clients[], products[]}` |
| PUT /businesses/{id}/features | `{booking_packages: bool}` → `{business_id, features}` |
| PUT /client_packages/{uid}/usage | `{booking_credit_id, bookings_usage, item_id?}` → the client package (API shape) |
| GET /objects/{kind}/{id} | → `{kind, id, doc}` (the stored document) |
| PATCH /objects/{kind}/{id} | `{field: value, ...}` (kind: packages, client_packages, clients, services, products, payment_requests) → `{kind, id, doc}`; `updated_at` is bumped unless given |
| GET /client_packages?business_id= | → `{client_packages: [...]}` (API shape, oldest first) |
| POST /bulk/packages | `{business_id, count}` → `{ids}` |
| POST /bulk/client_packages | `{business_id, package_id, client_ids?, count}` → `{ids}` (clients cycle) |
| POST /payment_statuses | `{business_id, client_id, service_id}` → `{id}` (a pending booking payment, for update_usage) |
| POST /faults, GET /faults, DELETE /faults, DELETE /faults/{id} | see `faults.py` → `{id}` / `{faults}` |
| PUT /gateway, GET /gateway | `{routes: [{method, path, status, body}]}` |
| GET /stats, DELETE /stats | → `{total, requests: [{door, method, route, count}]}` |
| PUT /clock, GET /clock | `{today: "YYYY-MM-DD" or null}` (freeze the day, or follow the system clock) |
| PUT /settings, GET /settings | `{list_lag_seconds?: 0..3600, list_refuses_staff?: [door, ...], payment_request_lag_seconds?: 0..3600, free_packages_open_no_request?: bool}` (see `behaviour.py`) |
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import payment_requests, render, seed
from .client_packages import default_valid_until, new_client_package_doc
from .instance import Sandbox
from .jsontext import loads
from .values import new_uid, parse_date, parse_int

KINDS = {"packages": "package", "client_packages": "client_package", "clients": "client",
         "services": "service", "products": "product", "payment_requests": "payment_request"}


class OperatorError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = loads(raw)
    except ValueError:
        raise OperatorError(400, "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise OperatorError(400, "body must be a JSON object")
    return value


def _business(sandbox: Sandbox, business_id: Any) -> dict[str, Any]:
    business = sandbox.store.get("business", str(business_id)) if business_id else None
    if business is None:
        raise OperatorError(404, f"business {business_id} not found")
    return business


def operator_routes(sandbox: Sandbox) -> list[Route]:
    """The Starlette routes of the operator API bound to `sandbox`."""
    store, clock = sandbox.store, sandbox.clock

    def endpoint(fn: Any) -> Any:
        async def wrapped(request: Request) -> JSONResponse:
            try:
                status, payload = await fn(request)
            except OperatorError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(payload, status_code=status)
        return wrapped

    async def info(request: Request) -> tuple[int, Any]:
        data = seed.info(store)
        data.update(doors={"gateway": "/apigw", "fallback": "/api2", "operator": "/_sandbox"},
                    db_path=sandbox.db_path, today=clock.today().isoformat())
        return 200, data

    async def reset(request: Request) -> tuple[int, Any]:
        sandbox.reset()
        return 200, seed.info(store)

    async def create_business(request: Request) -> tuple[int, Any]:
        try:
            return 201, seed.create_business(store, clock, await _body(request))
        except ValueError as exc:
            raise OperatorError(422, str(exc)) from exc

    async def features(request: Request) -> tuple[int, Any]:
        body = await _body(request)
        with store.write() as tx:
            business = tx.get("business", request.path_params["id"])
            if business is None:
                raise OperatorError(404, "business not found")
            business.setdefault("features", {}).update(
                {k: bool(v) for k, v in body.items()})
            tx.update("business", business)
        return 200, {"business_id": business["id"], "features": business["features"]}

    async def usage(request: Request) -> tuple[int, Any]:
        body = await _body(request)
        count = parse_int(body.get("bookings_usage"))
        if count is None or count < 0:
            raise OperatorError(400, "bookings_usage must be a whole number >= 0")
        with store.write() as tx:
            doc = tx.get("client_package", request.path_params["uid"])
            if doc is None:
                raise OperatorError(404, "client package not found")
            credit = next((c for c in doc.get("booking_credits", [])
                           if c["id"] == body.get("booking_credit_id")), None)
            if credit is None:
                raise OperatorError(404, "booking credit not found")
            if count > (parse_int(credit.get("total_bookings")) or 0):
                raise OperatorError(422, "bookings_usage cannot exceed total_bookings")
            credit["bookings_usage"] = count
            items = credit.get("credit_items") or []
            chosen = next((i for i in items if i.get("item_id") == body.get("item_id")),
                          items[0] if items else None)
            for item in items:
                item["bookings_usage"] = count if item is chosen else 0
            doc["updated_at"] = clock.stamp_ms()
            tx.update("client_package", doc)
        return 200, render.client_package(doc, clock.today())

    def _kind(request: Request) -> str:
        kind = KINDS.get(request.path_params["kind"])
        if kind is None:
            raise OperatorError(404, f"kind must be one of {sorted(KINDS)}")
        return kind

    async def get_object(request: Request) -> tuple[int, Any]:
        kind, uid = _kind(request), request.path_params["id"]
        doc = store.get(kind, uid)
        if doc is None:
            raise OperatorError(404, f"{kind} {uid} not found")
        return 200, {"kind": kind, "id": uid, "doc": doc}

    async def patch_object(request: Request) -> tuple[int, Any]:
        kind, uid = _kind(request), request.path_params["id"]
        body = await _body(request)
        if {"id", "business_id"} & set(body):
            raise OperatorError(400, "id and business_id cannot be changed")
        with store.write() as tx:
            doc = tx.get(kind, uid)
            if doc is None:
                raise OperatorError(404, f"{kind} {uid} not found")
            doc.update(body)
            if "updated_at" not in body and kind != "service":
                doc["updated_at"] = clock.stamp_ms() if kind == "client_package" else clock.stamp()
            tx.update(kind, doc)
        return 200, {"kind": kind, "id": uid, "doc": doc}

    async def list_client_packages(request: Request) -> tuple[int, Any]:
        business = _business(sandbox, request.query_params.get("business_id"))
        today = clock.today()
        docs = store.all("client_package", business["id"])
        return 200, {"client_packages": [render.client_package(d, today) for d in docs]}

    async def bulk_packages(request: Request) -> tuple[int, Any]:
        body = await _body(request)
        business = _business(sandbox, body.get("business_id"))
        count = int(body.get("count", 1))
        services = store.all("service", business["id"], limit=1)
        items = [{"total_bookings": 5, "services": [{"id": services[0]["id"]}]}] if services else []
        start, stamp, ids = store.count("package", business["id"]), clock.stamp(), []
        with store.write() as tx:
            for n in range(count):
                doc = {"id": new_uid(), "business_id": business["id"], "name": f"Bulk Package {n + 1}",
                       "price": "10.0", "currency": business.get("currency", "USD"),
                       "expiration": 1, "expiration_unit": "m", "description": "",
                       "image_path": None, "online_payment_enabled": False,
                       "discount_amount": "0", "discount_unit": "f", "active": True,
                       "deleted_at": None, "created_at": stamp, "updated_at": stamp,
                       "order": start + n, "items": items, "products": []}
                tx.insert("package", doc, business_id=business["id"])
                ids.append(doc["id"])
        for package_id in ids:
            sandbox.behaviour.note_created(package_id)
        return 201, {"ids": ids}

    async def bulk_client_packages(request: Request) -> tuple[int, Any]:
        body = await _body(request)
        business = _business(sandbox, body.get("business_id"))
        package = store.get_in("package", str(body.get("package_id")), business["id"])
        if package is None:
            raise OperatorError(404, "package not found in this business")
        client_ids = [str(c) for c in body.get("client_ids") or []] or [
            c["id"] for c in store.all("client", business["id"])]
        clients = {}
        for client_id in client_ids:
            client = store.get_in("client", client_id, business["id"])
            if client is None:
                raise OperatorError(404, f"client {client_id} not found in this business")
            clients[client_id] = client
        if not clients:
            raise OperatorError(422, "the business has no clients")
        today = clock.today()
        until = default_valid_until(package, today)
        ids = []
        products = {p["id"]: p for p in store.all("product", business["id"])}
        opened = []
        with store.write() as tx:
            for n in range(int(body.get("count", 1))):
                client = clients[client_ids[n % len(client_ids)]]
                doc = new_client_package_doc(store, clock, business, client, package,
                                             valid_from=today, valid_until=until,
                                             amount=package.get("price"), products=products)
                if payment_requests.opens_request(sandbox.behaviour, doc["amount"]):
                    opened.append(payment_requests.open_for(tx, clock, doc, business["id"])["id"])
                tx.insert("client_package", doc, business_id=business["id"])
                ids.append(doc["id"])
        for uid in opened:
            sandbox.behaviour.note_opened(uid)
        return 201, {"ids": ids}

    async def payment_status(request: Request) -> tuple[int, Any]:
        body = await _body(request)
        business = _business(sandbox, body.get("business_id"))
        client = store.get_in("client", str(body.get("client_id")), business["id"])
        service = store.get_in("service", str(body.get("service_id")), business["id"])
        if client is None or service is None:
            raise OperatorError(404, "client or service not found in this business")
        doc = {"id": new_uid(), "business_id": business["id"], "client_id": client["id"],
               "service_id": service["id"], "state": "pending", "price": service.get("price")}
        with store.write() as tx:
            tx.insert("payment_status", doc, business_id=business["id"])
        return 201, {"id": doc["id"]}

    async def faults(request: Request) -> tuple[int, Any]:
        if request.method == "POST":
            try:
                fault = sandbox.faults.add(await _body(request))
            except ValueError as exc:
                raise OperatorError(400, str(exc)) from exc
            return 201, {"id": fault.id, "fault": fault.as_json()}
        if request.method == "DELETE":
            sandbox.faults.clear()
            return 200, {"faults": []}
        return 200, {"faults": [f.as_json() for f in sandbox.faults.faults]}

    async def delete_fault(request: Request) -> tuple[int, Any]:
        if not sandbox.faults.remove(int(request.path_params["id"])):
            raise OperatorError(404, "no such fault")
        return 200, {"faults": [f.as_json() for f in sandbox.faults.faults]}

    async def gateway(request: Request) -> tuple[int, Any]:
        if request.method == "PUT":
            routes = (await _body(request)).get("routes")
            if not isinstance(routes, list):
                raise OperatorError(400, "routes must be a list")
            sandbox.gateway.replace(routes)
        return 200, {"routes": sandbox.gateway.routes}

    async def stats(request: Request) -> tuple[int, Any]:
        if request.method == "DELETE":
            sandbox.stats.counts.clear()
        return 200, sandbox.stats.as_json()

    async def clock_(request: Request) -> tuple[int, Any]:
        if request.method == "PUT":
            today = (await _body(request)).get("today")
            day: dt.date | None = None if today is None else parse_date(today)
            if today is not None and day is None:
                raise OperatorError(400, "today must be YYYY-MM-DD or null")
            clock.frozen_today = day
        return 200, {"today": clock.today().isoformat(), "frozen": clock.frozen_today is not None}

    async def settings(request: Request) -> tuple[int, Any]:
        if request.method == "PUT":
            try:
                sandbox.behaviour.update(await _body(request))
            except ValueError as exc:
                raise OperatorError(400, str(exc)) from exc
        return 200, sandbox.behaviour.as_json()

    table = [
        ("/info", info, ["GET"]), ("/reset", reset, ["POST"]),
        ("/businesses", create_business, ["POST"]),
        ("/businesses/{id}/features", features, ["PUT"]),
        ("/client_packages/{uid}/usage", usage, ["PUT"]),
        ("/objects/{kind}/{id}", get_object, ["GET"]),
        ("/objects/{kind}/{id}", patch_object, ["PATCH"]),
        ("/client_packages", list_client_packages, ["GET"]),
        ("/bulk/packages", bulk_packages, ["POST"]),
        ("/bulk/client_packages", bulk_client_packages, ["POST"]),
        ("/payment_statuses", payment_status, ["POST"]),
        ("/faults", faults, ["GET", "POST", "DELETE"]),
        ("/faults/{id:int}", delete_fault, ["DELETE"]),
        ("/gateway", gateway, ["GET", "PUT"]),
        ("/stats", stats, ["GET", "DELETE"]),
        ("/clock", clock_, ["GET", "PUT"]),
        ("/settings", settings, ["GET", "PUT"]),
    ]
    return [Route(path, endpoint(fn), methods=methods) for path, fn, methods in table]
