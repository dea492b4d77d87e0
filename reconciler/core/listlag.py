"""How long vcita's package list may hide a catalog package that was just created (API-NOTES §8).

vcita's list of catalog packages lags creation ("AT polls the API for up to 20 s"); reading a
package by id does not.  That matters in one place where nothing can be read by id: the recovery
of a catalog-package create an interrupted run left pending (its answer, hence its id, was never
heard).  Whether that create reached vcita is decided by looking for an untracked package of its
name in the list, and "not there" proves "never created" only once the list can no longer be
lagging behind it.  :class:`ListLag` says when that is, for one pending record::

    settled_at = opened_at + 1 s (opened_at is written to the second)
                 + send_window   (a create leaves at most this long after its pending record is
                                  written: the applier enforces it, see remote/dispatch.py)
                 + lag           (how long the list may hide it once created)
                 + skew          (the clocks of the run that wrote the record and of the one that
                                  reads it may differ; the time the request spends in flight)

A list read that *started* at or after ``settled_at`` and shows no such package proves that the
create never executed.  The refresh waits for that moment (re-reading the list until the package
shows up or the moment has come, ``refresh.read_catalog_settled``); the planner never concludes
"not created" from an earlier read (``planner/pending.py``); the applier refuses a plan that did.

Settings (per target in ``reconciler.toml``, or ``RECONCILER_*`` variables, which win):
``list_lag_seconds`` (default 20), ``create_send_window_seconds`` (30), ``clock_skew_seconds`` (5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.core.errors import ConfigError

#: setting name (reconciler.toml key) -> (field, environment variable)
SETTINGS = {
    "list_lag_seconds": ("lag", "RECONCILER_LIST_LAG_SECONDS"),
    "create_send_window_seconds": ("send_window", "RECONCILER_CREATE_SEND_WINDOW_SECONDS"),
    "clock_skew_seconds": ("skew", "RECONCILER_CLOCK_SKEW_SECONDS"),
}
MAX_SECONDS = 3600.0
#: opened_at is written to the second: the record may have been written up to 1 s after it says
_PRECISION = timedelta(seconds=1)


@dataclass(frozen=True)
class ListLag:
    """The bounds of list lag for one target (seconds)."""

    lag: float = 20.0
    send_window: float = 30.0
    skew: float = 5.0

    def __post_init__(self) -> None:
        for name in ("lag", "send_window", "skew"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_SECONDS:
                raise ValueError(f"{name} must be between 0 and {MAX_SECONDS:g} seconds")
        if self.send_window <= 0:
            raise ValueError("send_window must be more than 0 seconds")

    def settled_at(self, opened_at: str) -> datetime:
        """The moment from which the list shows whatever the create recorded at ``opened_at`` made."""
        return parse_utc(opened_at) + _PRECISION + timedelta(seconds=self.send_window + self.lag + self.skew)

    @classmethod
    def from_settings(cls, table: Mapping[str, Any], env: Mapping[str, str], *, where: str) -> ListLag:
        """From a target's ``reconciler.toml`` table and the environment (which wins); checked."""
        values: dict[str, float] = {}
        for key, (field_name, var) in SETTINGS.items():
            raw: Any = env.get(var, "").strip() or table.get(key)
            source = f"${var}" if env.get(var, "").strip() else f"{where} {key}"
            if raw is None:
                continue
            try:
                number = float(raw) if isinstance(raw, (str, int, float)) and not isinstance(raw, bool) else None
            except ValueError:
                number = None
            if number is None or not 0 <= number <= MAX_SECONDS or number != number:
                raise ConfigError(f"{source} must be a number of seconds from 0 to {MAX_SECONDS:g} (got {raw!r})")
            values[field_name] = number
        if values.get("send_window", 1.0) <= 0:
            raise ConfigError("create_send_window_seconds must be more than 0: a create has to be sent some time",
                              hint="Use a few seconds at least (the default is 30).")
        return cls(**values)


def parse_utc(stamp: str) -> datetime:
    """An ISO 8601 UTC time as the state writes it (``2026-11-20T10:00:00Z``)."""
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def utc_stamp(when: datetime) -> str:
    """``when`` as ISO 8601 UTC to the millisecond (a list read's time, in a plan)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
