"""Authentication and the business context of a request (API-NOTES §4, §2 feature gate).

Order of checks, as in core (docs/401-returns-in-core.md) and the spec's feature-gate note:

1. `Authorization: Bearer <token>`: missing, another scheme, or an unknown token → 401 Doorkeeper
   body (`"401 Unauthorized"`); an unknown token shaped like a JWT → 401 JWT body.
2. Staff tokens carry their business; `X-On-Behalf-Of` is ignored for them (they can never reach
   another business through it). Directory tokens take their business from `X-On-Behalf-Of`; a
   business the directory does not own (or that does not exist) → 401 `{"error":"Unauthorized"}`.
3. Feature gate: on gated routes, a business without `booking_packages` → 403
   `module_permission_missing`, for every token type, before any body validation.
4. Token-type policy of the route for directory tokens (see `context.Route`), then a directory
   token without `X-On-Behalf-Of` → 401 "token accepted, business context wrong".
"""

from __future__ import annotations

from typing import Any

from .context import Principal, Route
from .envelopes import (
    CONTEXT_401,
    DIRECTORY_401,
    DOORKEEPER_401,
    FEATURE_403,
    GATEWAY_UNAUTHORIZED_422,
    JWT_401,
    ApiError,
)
from .store import Store


def _looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


def bearer_token(headers: dict[str, str]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    value = headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(store: Store, headers: dict[str, str], route: Route
                 ) -> tuple[Principal, dict[str, Any]]:
    """The caller and its business for `route`, or `ApiError` with the refusal the API gives."""
    token = bearer_token(headers)
    if token is None:
        raise ApiError(401, DOORKEEPER_401)
    found = store.token(token)
    if found is None:
        raise ApiError(401, JWT_401 if _looks_like_jwt(token) else DOORKEEPER_401)
    kind, owner = found
    business: dict[str, Any] | None
    if kind == "staff":
        principal = Principal(kind, token, business_id=owner)
        business = store.business(owner)
        if business is None:
            raise ApiError(401, DOORKEEPER_401)
    else:
        on_behalf_of = headers.get("x-on-behalf-of", "").strip() or None
        principal = Principal(kind, token, business_id=None, directory_id=owner,
                              on_behalf_of=on_behalf_of)
        business = None
        if on_behalf_of is not None:
            business = store.business(on_behalf_of)
            if business is None or business.get("directory_id") != owner:
                raise ApiError(401, DIRECTORY_401)
            principal.business_id = business["id"]
    gated_off = route.gated and business is not None and not business.get(
        "features", {}).get("booking_packages")
    if gated_off:
        raise ApiError(403, FEATURE_403)
    if kind == "directory":
        if route.directory == "context401":
            raise ApiError(401, CONTEXT_401)
        if route.directory == "unauthorized422":
            raise ApiError(422, GATEWAY_UNAUTHORIZED_422)
    if business is None:
        raise ApiError(401, CONTEXT_401)
    return principal, business
