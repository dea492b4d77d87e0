"""Payment requests: `GET /business/payments/v1/payment_requests` (list) and
`GET /business/payments/v1/payment_requests/{payment_request_uid}` (one), API-NOTES §11.

What the spec (sales.json) says, imitated as written: the list takes `page` (default 1),
`per_page` (default 25, cut to 100 like the other lists), `sort` (`created_at`, `updated_at`,
`due_date`, `state`, `entity_type`, each with `:asc`/`:desc`), and the filters
`filter[client_uid][eq]`, `filter[matter_uid][eq]`, `filter[state][in]` (DUE, OVERDUE,
NOT_YET_DUE, PAID, CANCELLED; comma-separated), `filter[created_at|updated_at|due_date][eq|lt|lte|gt|gte]`,
`filter[entity_type][in]` (Cart, Invoice, Meeting, EventAttendance, ProductOrder,
ClientBookingPackage, Payou, PendingBooking, PendingClientBookingPackage),
`filter[entity_uid][eq]` (only with exactly one `entity_type`, else 422), and
`filter[amount_pending|amount_paid][eq|lt|lte|gt|gte]`.  Answers `{"success":true,"data":
{"payment_requests":[...]}}` / `{"data":{"payment_request":{...}}}`, errors in the business
envelope (422 for a bad filter, 404 for an unknown uid).  Staff, app and directory (with
X-On-Behalf-Of) tokens may list; reading one is for staff tokens (the spec says so of the GET).

**[inferred]**, and imitated here because the notes infer it (no recipe has run these routes):

- creating a client package (`POST /platform/v1/payment/client_packages`, and the operator's bulk
  insert) opens one payment request with `payable_type` `ClientBookingPackage`, `payable_uid` the
  client package's id, and the client package's `payment_request_id` is its `uid`: linked both
  ways; `amount` is the client package's amount (a decimal string), `state` `"overdue"` (KB: "in
  the overdue state by default"), `client_uid`, `matter_uid`, `staff_uid`, `sellable_name` (the
  package's name), `created_at` (`...T10:00:00.000Z`), `due_date` (the day it was opened);
- `filter[entity_type]` matches `payable_type`, `filter[entity_uid]` matches `payable_uid`;
- state filters compare case-insensitively (`"overdue"` is OVERDUE; `"pending"` is DUE);
- a date filter value may be a day (`2019-01-01`, midnight UTC) or an ISO date-time;
- the default order is `created_at:desc` (newest first), ties by creation order.

Operator settings for the open questions (`behaviour.py`, off by default): a lag before a new
payment request appears in the list (`payment_request_lag_seconds`; reading it by uid works at
once), and client packages of price 0 opening no payment request at all
(`free_packages_open_no_request`; their `payment_request_id` is then null).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from .context import Ctx, Reply
from .envelopes import ok
from .store import Transaction
from .values import Clock, money, new_uid, parse_decimal

ENTITY_TYPES = ("Cart", "Invoice", "Meeting", "EventAttendance", "ProductOrder", "ClientBookingPackage",
                "Payou", "PendingBooking", "PendingClientBookingPackage")
STATES = ("DUE", "OVERDUE", "NOT_YET_DUE", "PAID", "CANCELLED")
#: stored (API) states -> the filter's names
_STATE_NAMES = {"pending": "DUE", "due": "DUE", "overdue": "OVERDUE", "not_yet_due": "NOT_YET_DUE",
                "paid": "PAID", "cancelled": "CANCELLED", "canceled": "CANCELLED"}
SORTS = ("created_at", "updated_at", "due_date", "state", "entity_type")
_OPS = ("eq", "lt", "lte", "gt", "gte")
_FILTER = re.compile(r"^filter\[(\w+)\]\[(\w+)\]$")


def opens_request(behaviour: Any, amount: Any) -> bool:
    """Whether a client package of ``amount`` opens a payment request under the current settings."""
    if not getattr(behaviour, "free_packages_open_no_request", False):
        return True
    price = parse_decimal(amount)
    return price is None or price != 0


def open_for(tx: Transaction, clock: Clock, doc: dict[str, Any], business_id: str) -> dict[str, Any]:
    """Insert the payment request of the new client package ``doc`` (linked both ways: ``doc``'s
    ``payment_request_id`` is set to its uid before ``doc`` itself is inserted), opened at the
    moment ``doc`` was made."""
    stamp = doc["created_at"]
    uid = new_uid()
    request = {
        "id": uid, "business_id": business_id, "client_uid": doc.get("client_id"),
        "matter_uid": doc.get("conversation_id"), "staff_uid": doc.get("staff_id"),
        "amount": money(doc.get("amount")), "currency": doc.get("currency", ""), "state": "overdue",
        "payable_type": "ClientBookingPackage", "payable_uid": doc["id"], "sellable_name": doc.get("name", ""),
        "amount_paid": "0.0", "created_at": stamp, "updated_at": stamp, "due_date": clock.today().isoformat(),
    }
    tx.insert("payment_request", request, business_id=business_id)
    doc["payment_request_id"] = uid
    doc["payment_request_state"] = "overdue"
    return request


def render(doc: dict[str, Any]) -> dict[str, Any]:
    """A payment request as `data.payment_requests[]` / `data.payment_request` show it."""
    amount = str(parse_decimal(doc.get("amount")) or Decimal(0))
    paid = str(parse_decimal(doc.get("amount_paid")) or Decimal(0))
    return {
        "uid": doc["id"], "amount": money(amount), "currency": doc.get("currency", ""),
        "state": doc.get("state", ""), "payable_type": doc.get("payable_type"),
        "payable_uid": doc.get("payable_uid"), "sellable_name": doc.get("sellable_name", ""),
        "client_uid": doc.get("client_uid"), "matter_uid": doc.get("matter_uid"),
        "staff_uid": doc.get("staff_uid"), "created_at": doc.get("created_at"),
        "updated_at": doc.get("updated_at"), "due_date": doc.get("due_date"),
        "amount_paid": money(paid), "net_amount": money(amount), "taxes": [],
        "display": {"amount": f"{money(amount)} {doc.get('currency', '')}".strip()},
    }


def _when(value: str) -> str | None:
    """A filter's date or date-time as a sortable UTC text (``YYYY-MM-DDTHH:MM:SS.fff``)."""
    text = value.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text).isoformat() + "T00:00:00.000"
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds")


def _stored_when(value: Any) -> str:
    found = _when(str(value or "")) if value else None
    return found or ""


def _compare(have: Any, op: str, want: Any) -> bool:
    if op == "eq":
        return bool(have == want)
    if have is None or have == "":
        return False
    return bool({"lt": have < want, "lte": have <= want, "gt": have > want, "gte": have >= want}[op])


_SQL_OP = {"eq": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _field(name: str) -> str:
    return f"json_extract(doc, '$.{name}')"


class _Filters:
    """The request's filters, checked (422 on anything the spec does not document), as Python
    tests (for a lagging list, filtered in memory) and as SQL conditions (paged in SQLite)."""

    def __init__(self, ctx: Ctx) -> None:
        self.tests: list[Any] = []
        self.sql: list[str] = []
        self.params: list[Any] = []
        types: list[str] | None = None
        entity_uid: str | None = None
        for key, value in ctx.query.items():
            if not key.startswith("filter"):
                continue
            found = _FILTER.match(key)
            if found is None:
                raise ctx.error(422, f"Unknown filter {key}", field=key)
            name, op = found.groups()
            if name in ("client_uid", "matter_uid") and op == "eq":
                self._add(lambda d, n=name, v=value: d.get(n) == v, f"{_field(name)} = ?", value)
            elif name == "state" and op == "in":
                wanted = {s.strip().upper() for s in value.split(",") if s.strip()}
                if not wanted or wanted - set(STATES):
                    raise ctx.error(422, f"Invalid state filter {value}", field="state")
                stored = sorted(k for k, v in _STATE_NAMES.items() if v in wanted)
                self._add(lambda d, w=wanted: _STATE_NAMES.get(str(d.get("state", "")).lower()) in w,
                          f"lower({_field('state')}) IN ({','.join('?' * len(stored))})", *stored)
            elif name == "entity_type" and op == "in":
                types = [t.strip() for t in value.split(",") if t.strip()]
                if not types or set(types) - set(ENTITY_TYPES):
                    raise ctx.error(422, f"Invalid entity type {value}", field="entity_type")
                self._add(lambda d, w=frozenset(types): d.get("payable_type") in w,
                          f"{_field('payable_type')} IN ({','.join('?' * len(types))})", *types)
            elif name == "entity_uid" and op == "eq":
                entity_uid = value
                self._add(lambda d, v=value: d.get("payable_uid") == v, f"{_field('payable_uid')} = ?", value)
            elif name in ("created_at", "updated_at", "due_date") and op in _OPS:
                when = _when(value)
                if when is None:
                    raise ctx.error(422, f"Invalid date {value} for {name}", field=name)
                if name == "due_date":
                    self._add(lambda d, o=op, w=when[:10]: _compare(str(d.get("due_date") or ""), o, w),
                              f"{_field(name)} {_SQL_OP[op]} ?", when[:10])
                else:
                    self._add(lambda d, n=name, o=op, w=when: _compare(_stored_when(d.get(n)), o, w),
                              f"substr({_field(name)}, 1, 23) {_SQL_OP[op]} ?", when)
            elif name in ("amount_pending", "amount_paid") and op in _OPS:
                number = parse_decimal(value)
                if number is None:
                    raise ctx.error(422, f"Invalid amount {value} for {name}", field=name)
                column = (f"CAST({_field('amount_paid')} AS REAL)" if name == "amount_paid" else
                          f"(CAST({_field('amount')} AS REAL) - CAST({_field('amount_paid')} AS REAL))")
                self._add(lambda d, n=name, o=op, w=number: _compare(_amount(d, n), o, w),
                          f"{column} {_SQL_OP[op]} ?", float(number))
            else:
                raise ctx.error(422, f"Unknown filter {key}", field=key)
        if entity_uid is not None and (types is None or len(types) != 1):
            raise ctx.error(422, "filter[entity_uid] is allowed only with one matching entity_type",
                            field="entity_uid")

    def _add(self, test: Any, condition: str, *params: Any) -> None:
        self.tests.append(test)
        self.sql.append(condition)
        self.params.extend(params)

    def __call__(self, doc: dict[str, Any]) -> bool:
        return all(test(doc) for test in self.tests)


def _amount(doc: dict[str, Any], name: str) -> Decimal:
    amount = parse_decimal(doc.get("amount")) or Decimal(0)
    paid = parse_decimal(doc.get("amount_paid")) or Decimal(0)
    return paid if name == "amount_paid" else amount - paid


def _sort_key(ctx: Ctx) -> tuple[str, bool]:
    raw = ctx.query.get("sort") or "created_at:desc"
    field, _, direction = raw.partition(":")
    direction = direction or "asc"
    if field not in SORTS or direction not in ("asc", "desc"):
        raise ctx.error(422, f"Invalid sort {raw}", field="sort")
    return field, direction == "desc"


_SORT_SQL = {"created_at": f"substr({_field('created_at')}, 1, 23)",
             "updated_at": f"substr({_field('updated_at')}, 1, 23)", "due_date": _field("due_date"),
             "state": _field("state"), "entity_type": _field("payable_type")}


def list_payment_requests(ctx: Ctx) -> Reply:
    keep = _Filters(ctx)
    field, descending = _sort_key(ctx)
    offset, limit = ctx.paging(default_per_page=25)
    if not ctx.behaviour.payment_request_lag:  # filtered, sorted and paged by SQLite
        way = "DESC" if descending else "ASC"
        docs = ctx.store.select("payment_request", ctx.business_id, keep.sql, keep.params,
                                f"{_SORT_SQL[field]} {way}, seq {way}", limit, offset)
        return 200, ok("business", {"payment_requests": [render(doc) for doc in docs]})
    # A lagging list: the requests not indexed yet are left out before paging, in memory.
    docs = [d for d in ctx.store.all("payment_request", ctx.business_id)
            if ctx.behaviour.request_listed(d["id"]) and keep(d)]
    if field in ("created_at", "updated_at"):
        key: Any = lambda d: _stored_when(d.get(field))  # noqa: E731
    elif field == "entity_type":
        key = lambda d: str(d.get("payable_type") or "")  # noqa: E731
    else:
        key = lambda d: str(d.get(field) or "")  # noqa: E731
    ordered = sorted(enumerate(docs), key=lambda pair: (key(pair[1]), pair[0]), reverse=descending)
    page = [render(doc) for _, doc in ordered[offset:offset + limit]]
    return 200, ok("business", {"payment_requests": page})


def get_payment_request(ctx: Ctx) -> Reply:
    doc = ctx.store.get_in("payment_request", ctx.params["uid"], ctx.business_id)
    if doc is None:
        raise ctx.error(404, "Payment request not found", code="not_found")
    return 200, ok("business", {"payment_request": render(doc)})
