"""Clients and services (read side): `GET /platform/v1/clients`, `GET /platform/v1/services`, and
the documented-but-unimplemented staff list `GET /platform/v1/clients/{client_id}/payment/
client_packages` (KB: the controller has no index action, 422 "Unauthorized" for every token).

Clients: `page` (default 1), `per_page` (default 25, max 100: larger values are cut to 100), no
page metadata, oldest first. `search_term` with `search_by` = `email` (exact, case-insensitive),
`uid`, or `phone` (substring of `mobile_phone`), any other `search_by` → 422 (the spec's
"Invalid request parameters"); `search_term` alone matches a substring of the
first name, last name or email; `search_by=updated_at` and `updated_at[gte]`/`updated_at[lte]`
filter on `updated_at` (ISO date or date-time). A `business_id` query parameter is ignored (the
business comes from the token, as in core).

Services: staff tokens only (spec: "Available for Staff Tokens"); `business_id` required (422
when absent); a `business_id` other than the token's business → 401 "token accepted, business
context wrong" (docs/401-returns-in-core.md: staff business ≠ request business). Paged like
clients.
"""

from __future__ import annotations

from typing import Any

from . import render
from .context import Ctx, Reply
from .envelopes import CONTEXT_401, GATEWAY_UNAUTHORIZED_422, ApiError, ok


def _search(ctx: Ctx, clients: list[dict[str, Any]]) -> list[dict[str, Any]]:
    term = (ctx.query.get("search_term") or "").strip()
    by = (ctx.query.get("search_by") or "").strip().lower()
    low = term.lower()
    if by and by not in ("email", "uid", "phone", "updated_at"):
        raise ctx.error(422, "search_by must be one of email, uid, phone, updated_at")
    if term and by == "email":
        clients = [c for c in clients if (c.get("email") or "").lower() == low]
    elif term and by == "uid":
        clients = [c for c in clients if c["id"] == term]
    elif term and by == "phone":
        clients = [c for c in clients if term in (c.get("mobile_phone") or "")]
    elif term and by == "updated_at":
        clients = [c for c in clients if (c.get("updated_at") or "") >= term]
    elif term:
        clients = [c for c in clients
                   if any(low in (c.get(k) or "").lower()
                          for k in ("first_name", "last_name", "email"))]
    gte, lte = ctx.query.get("updated_at[gte]"), ctx.query.get("updated_at[lte]")
    if gte:
        clients = [c for c in clients if (c.get("updated_at") or "") >= gte]
    if lte:
        # a bare date in lte means "through the end of that day"
        bound = lte + "T23:59:59Z" if len(lte) == 10 else lte
        clients = [c for c in clients if (c.get("updated_at") or "") <= bound]
    return clients


def list_clients(ctx: Ctx) -> Reply:
    clients = _search(ctx, ctx.store.all("client", ctx.business_id))
    offset, limit = ctx.paging(default_per_page=25)
    shown = [render.client(doc, ctx.business_id) for doc in clients[offset:offset + limit]]
    return 200, ok("platform", {"clients": shown})


def list_services(ctx: Ctx) -> Reply:
    business_id = (ctx.query.get("business_id") or "").strip()
    if not business_id:
        raise ctx.error(422, "param is missing or the value is empty: business_id")
    if business_id != ctx.business_id:
        raise ApiError(401, CONTEXT_401)
    offset, limit = ctx.paging(default_per_page=25)
    docs = ctx.store.all("service", ctx.business_id, limit=limit, offset=offset)
    return 200, ok("platform", {"services": [render.service(doc) for doc in docs]})


def list_client_packages_of_client(ctx: Ctx) -> Reply:
    raise ApiError(422, GATEWAY_UNAUTHORIZED_422)
