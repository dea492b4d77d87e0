"""What a handler gets and gives: the `Route` it serves, the request `Ctx`, the `Reply`.

A handler is `def handler(ctx: Ctx) -> Reply`; it answers with `(status, body)` or raises
`ApiError`. `Route.directory` says what a directory token meets on that route, as the verified
recipes saw it: `"xobo"` (accepted with X-On-Behalf-Of), `"context401"` (refused with the
"token accepted, business context wrong" 401), `"unauthorized422"` (refused with 422
`{"status":"Error","error":"Unauthorized"}`). `Route.gated` marks the routes behind the
`booking_packages` feature (every `/platform/v1/payment/packages*` and
`/platform/v1/payment/client_packages*` route, per the spec).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .behaviour import Behaviour
from .envelopes import ApiError, family_of
from .jsontext import OutOfRange, loads_request
from .store import Store
from .values import Clock, parse_int

Reply = tuple[int, Any]


@dataclass(frozen=True)
class Route:
    """One API operation: method, path template (`{name}` segments), handler and policies."""

    method: str
    template: str
    handler: Callable[[Ctx], Reply]
    directory: str = "xobo"
    gated: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "regex", re.compile(f"^{pattern}$"))

    @property
    def family(self) -> str:
        return family_of(self.template)


@dataclass
class Principal:
    """Who is calling: token kind (`staff`/`directory`), and the business it acts for, if any."""

    kind: str
    token: str
    business_id: str | None
    directory_id: str | None = None
    on_behalf_of: str | None = None


@dataclass
class Ctx:
    """One API request as handlers see it (the business is resolved and authorised already)."""

    store: Store
    clock: Clock
    route: Route
    params: dict[str, str]
    query: dict[str, str]
    body: bytes
    principal: Principal
    business: dict[str, Any]
    behaviour: Behaviour = field(default_factory=Behaviour)

    @property
    def business_id(self) -> str:
        return str(self.business["id"])

    @property
    def family(self) -> str:
        return self.route.family

    def error(self, status: int, message: str, *, code: str = "invalid",
              field: str | None = None) -> ApiError:
        """An `ApiError` in this route's envelope family."""
        return ApiError.of(self.family, status, message, code=code, field=field)

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; 400 when it is not JSON (``NaN`` and the infinities are not),
        422 when not an object or a number in it is too large for a float (``1e400``)."""
        if not self.body.strip():
            return {}
        try:
            value = loads_request(self.body)
        except OutOfRange as e:
            raise self.error(422, f"Invalid number: {e.literal[:40]} is out of range") from None
        except (ValueError, UnicodeDecodeError):
            raise self.error(400, "Bad Request: the body is not valid JSON", code="bad_request") from None
        if not isinstance(value, dict):
            raise self.error(422, "The body must be a JSON object")
        return value

    def paging(self, *, default_per_page: int, max_per_page: int = 100) -> tuple[int, int]:
        """(offset, limit) from `page`/`per_page`, Rails-style lenient: junk means the default,
        `per_page` above the maximum is cut to it."""
        page = parse_int(self.query.get("page"))
        per_page = parse_int(self.query.get("per_page"))
        page = page if page is not None and page >= 1 else 1
        if per_page is None or per_page < 1:
            per_page = default_per_page
        per_page = min(per_page, max_per_page)
        return (page - 1) * per_page, per_page
