"""Operator settings that imitate how the real API behaves, as opposed to faults that break it.

- `list_lag_seconds`: a new catalog package appears in `GET /platform/v1/payment/packages` only
  this many seconds after it was created (API-NOTES §8: "after a package is created, the package
  list lags (AT polls the API for up to 20 s)").  Reading it by id works at once, as it does in
  vcita.  Packages created before the lag was set count as old.
- `list_refuses_staff`: the doors (`gateway`, `fallback`) on which the package list refuses staff
  tokens with 422 `{"status":"Error","error":"Unauthorized"}`, while a directory token with
  `X-On-Behalf-Of` is served (the verified list recipe, API-NOTES §9.4: "Staff returns 422
  Unauthorized").
- `payment_request_lag_seconds`: a new payment request appears in `GET
  /business/payments/v1/payment_requests` only this many seconds after it was opened (an open
  question of API-NOTES §11; reading it by uid works at once).
- `free_packages_open_no_request`: a client package of price 0 opens no payment request (the
  other open question of §11), so it cannot be found through the list.

They live in the app's memory, like the fault table: `POST /_sandbox/reset` and a restart bring
back the defaults (those given when the sandbox was started, e.g. `sandbox serve --list-lag 20`;
else no lag and staff tokens accepted everywhere).
"""

from __future__ import annotations

import time
from typing import Any

DOORS = ("gateway", "fallback")


class Behaviour:
    """The sandbox's current imitation settings, and when each recent package was created."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.list_lag = 0.0
        self.list_refuses_staff: frozenset[str] = frozenset()
        self.payment_request_lag = 0.0
        self.free_packages_open_no_request = False
        self._created: dict[str, float] = {}  # package id -> time.monotonic() at creation
        self._opened: dict[str, float] = {}  # payment request uid -> time.monotonic() at creation
        self._clock = time.monotonic
        self.defaults = dict(defaults or {})
        self.update(self.defaults)

    def clear(self) -> None:
        """Back to the defaults; every package counts as old."""
        self.list_lag, self.list_refuses_staff = 0.0, frozenset()
        self.payment_request_lag, self.free_packages_open_no_request = 0.0, False
        self.update(self.defaults)
        self._created.clear()
        self._opened.clear()

    def update(self, body: dict[str, Any]) -> None:
        """Apply an operator request; ValueError (nothing changed) on a bad field."""
        unknown = set(body) - {"list_lag_seconds", "list_refuses_staff", "payment_request_lag_seconds",
                               "free_packages_open_no_request"}
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        lag, doors = self.list_lag, self.list_refuses_staff
        pr_lag, free = self.payment_request_lag, self.free_packages_open_no_request
        for name in ("list_lag_seconds", "payment_request_lag_seconds"):
            if name in body:
                value = body[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
                    raise ValueError(f"{name} must be a number of seconds from 0 to 3600")
        if "list_lag_seconds" in body:
            lag = float(body["list_lag_seconds"])
        if "payment_request_lag_seconds" in body:
            pr_lag = float(body["payment_request_lag_seconds"])
        if "free_packages_open_no_request" in body:
            if not isinstance(body["free_packages_open_no_request"], bool):
                raise ValueError("free_packages_open_no_request must be true or false")
            free = body["free_packages_open_no_request"]
        if "list_refuses_staff" in body:
            value = body["list_refuses_staff"]
            if value is None:
                value = []
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or any(d not in DOORS for d in value):
                raise ValueError("list_refuses_staff must be a list of doors (gateway, fallback)")
            doors = frozenset(value)
        self.list_lag, self.list_refuses_staff = lag, doors
        self.payment_request_lag, self.free_packages_open_no_request = pr_lag, free

    def as_json(self) -> dict[str, Any]:
        return {"list_lag_seconds": self.list_lag, "list_refuses_staff": sorted(self.list_refuses_staff),
                "payment_request_lag_seconds": self.payment_request_lag,
                "free_packages_open_no_request": self.free_packages_open_no_request}

    # -- used by the request pipeline -------------------------------------------------------

    def note_created(self, package_id: str) -> None:
        """A catalog package was just created (it will lag in the list, if a lag is set now)."""
        if not self.list_lag:
            return
        now = self._clock()
        if len(self._created) > 1024:  # forget what no longer lags under any setting
            horizon = now - max(self.list_lag, 1.0)
            self._created = {k: t for k, t in self._created.items() if t > horizon}
        self._created[package_id] = now

    def note_opened(self, request_uid: str) -> None:
        """A payment request was just opened (it will lag in its list, if a lag is set now)."""
        if not self.payment_request_lag:
            return
        now = self._clock()
        if len(self._opened) > 1024:
            horizon = now - max(self.payment_request_lag, 1.0)
            self._opened = {k: t for k, t in self._opened.items() if t > horizon}
        self._opened[request_uid] = now

    def request_listed(self, request_uid: str) -> bool:
        """Whether the payment request list shows this payment request yet."""
        opened = self._opened.get(request_uid)
        return opened is None or self._clock() - opened >= self.payment_request_lag

    def listed(self, package_id: str) -> bool:
        """Whether the list shows this package yet."""
        created = self._created.get(package_id)
        return created is None or self._clock() - created >= self.list_lag

    def refuses_staff(self, door: str, method: str, template: str) -> bool:
        """Whether the package list on ``door`` refuses a staff token now."""
        return (door in self.list_refuses_staff and method == "GET"
                and template == "/platform/v1/payment/packages")
