"""The API route table (the same behind both doors) and route matching.

Paths are the real ones, relative to a door (`/apigw` or `/api2`). Directory-token policies are
what the verified recipes saw (API-NOTES §2 table): list packages and list clients accept a
directory token with X-On-Behalf-Of; GET package by id → 401; POST client_packages → 422; GET/PUT
client package → 401 even with X-On-Behalf-Of. The payment request list is "Available for Staff,
App, and Directory tokens" (sales.json); reading one payment request is staff-only (the spec names
the staff token alone). Where the recipes never tried a directory token
(POST/PUT catalog package) the spec's "Directory and App tokens are supported with X-On-Behalf-Of"
holds. Services are staff-only (spec). update_usage: KB "Directory: not supported" → same 422 as
its sibling create. Anything else (including the legacy path
`/business/payments/platform/v1/payment/client_packages` of seed 000, and DELETE on packages,
which the spec does not document) is 404.
"""

from __future__ import annotations

from . import catalog, client_packages, clients, payment_requests
from .context import Route

PACKAGES = "/platform/v1/payment/packages"
CLIENT_PACKAGES = "/platform/v1/payment/client_packages"
CLIENT_PACKAGE = "/business/payments/v1/client_packages/{uid}"
PAYMENT_REQUESTS = "/business/payments/v1/payment_requests"

ROUTES: tuple[Route, ...] = (
    Route("GET", PACKAGES, catalog.list_packages, gated=True),
    Route("POST", PACKAGES, catalog.create_package, gated=True),
    Route("GET", PACKAGES + "/{package_id}", catalog.get_package, "context401", gated=True),
    Route("PUT", PACKAGES + "/{package_id}", catalog.update_package, gated=True),
    # Verified: directory token + X-On-Behalf-Of through the fallback; the gateway's default table
    # answers 401 on /business/payments/v1/* (faults.py). The spec also names staff tokens.
    Route("PUT", "/business/payments/v1/packages/reorder", catalog.reorder_packages, gated=True),
    Route("POST", CLIENT_PACKAGES, client_packages.create_client_package, "unauthorized422",
          gated=True),
    Route("POST", CLIENT_PACKAGES + "/update_usage", client_packages.update_usage,
          "unauthorized422", gated=True),
    Route("GET", CLIENT_PACKAGE, client_packages.get_client_package, "context401"),
    Route("PUT", CLIENT_PACKAGE, client_packages.update_client_package, "context401"),
    Route("GET", PAYMENT_REQUESTS, payment_requests.list_payment_requests),
    Route("GET", PAYMENT_REQUESTS + "/{uid}", payment_requests.get_payment_request, "context401"),
    Route("GET", "/platform/v1/clients", clients.list_clients),
    Route("GET", "/platform/v1/clients/{client_id}/payment/client_packages",
          clients.list_client_packages_of_client, "unauthorized422"),
    Route("GET", "/platform/v1/services", clients.list_services, "context401"),
)


class RouteTable:
    """Finds the route of a request; knows every template (for request statistics)."""

    def __init__(self, routes: tuple[Route, ...] = ROUTES) -> None:
        self.routes = routes
        # Literal templates first so that `/update_usage` never matches as a `{package_id}`.
        self._ordered = sorted(routes, key=lambda r: r.template.count("{"))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], str]:
        """(route, path params, template) for `method` + `path`; route None when no operation
        matches (template is then the one of the path under another method, or "unmatched")."""
        template = "unmatched"
        for route in self._ordered:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict(), route.template
            if template == "unmatched":
                template = route.template
        return None, {}, template
