"""When a failed request may be repeated, and how long to wait first.

The rules (API-NOTES §8; issue 4 §3):

* GET and PUT (idempotent: they set absolute values) are repeated on 429, on any 5xx and on any
  transport error (refused, reset, timed out), up to ``max_attempts`` in all.
* POST is repeated only when the failure proves nothing was executed: the connection was never
  made (refused, connect timeout, no free pooled connection) or the server refused it with 429.
  After a timeout, a dropped connection or a 5xx its outcome is *unknown*; the dispatcher raises
  ``OutcomeUnknownError`` instead of repeating it.
* An answer too large to hold is not repeated either: the same request would bring it again.
* Waits are capped exponential backoff with jitter; a 429's ``Retry-After`` (seconds or an HTTP
  date) is honoured instead, up to ``max_retry_after``.

``RECONCILER_RETRY_BACKOFF_SECONDS`` sets the first backoff (default 0.5 s; the test suite sets
0.01 s).  A server's ``Retry-After`` is honoured whatever it is.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from reconciler.core.errors import ConfigError

#: The environment variable that sets :attr:`RetryPolicy.base_delay` (seconds).
BACKOFF_ENV = "RECONCILER_RETRY_BACKOFF_SECONDS"
DEFAULT_BACKOFF = 0.5


class CertificateRefused(httpx.ConnectError):
    """The server's TLS certificate failed verification: nothing was sent, and trying again will
    not help (a wrong URL, or an interception proxy whose authority is not trusted)."""


class ProxyRefused(httpx.ConnectError):
    """The proxy could not be reached, or refused to open a tunnel: the request was not sent."""


class OutOfStep(httpx.RemoteProtocolError):
    """The server sent more than one answer for a request, or bytes nobody asked for: the answer
    cannot be trusted to be this request's (sent, not properly answered)."""


class AnswerTooLarge(httpx.RemoteProtocolError):
    """The answer's body (decoded) exceeds the limit: it was not read further (sent)."""


#: Transport failures that happen before a single byte of the request left: always safe to repeat.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
            httpx.LocalProtocolError)


@dataclass
class RetryPolicy:
    """How many attempts, and the backoff between them (all delays in seconds)."""

    max_attempts: int = 4
    base_delay: float = field(default_factory=lambda: backoff_from_env(os.environ))
    max_delay: float = 10.0
    #: the longest Retry-After honoured; a longer one is waited only this long
    max_retry_after: float = 60.0
    #: fraction of each backoff delay that is randomised (0 = none, 1 = "full jitter")
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling * (1.0 - self.jitter * self.rng.random())

    def wait_for(self, attempt: int, retry_after: float | None) -> float:
        """The server's Retry-After when it gave one (capped), else the backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self.backoff(attempt)

    def can_retry_status(self, status: int, *, idempotent: bool) -> bool:
        """Whether an answer with ``status`` may be repeated for this kind of request."""
        if status == 429:
            return True  # refused before execution, whatever the method
        return idempotent and status >= 500

    def can_retry_exception(self, exc: BaseException, *, idempotent: bool) -> bool:
        """Whether a transport failure may be repeated for this kind of request."""
        if isinstance(exc, NOT_SENT):
            return True
        if isinstance(exc, AnswerTooLarge):  # the same request would bring the same flood
            return False
        return idempotent and isinstance(exc, httpx.TransportError)


def backoff_from_env(env: Mapping[str, str]) -> float:
    """The first backoff: ``$RECONCILER_RETRY_BACKOFF_SECONDS`` when set (0 to 60), else 0.5 s."""
    raw = env.get(BACKOFF_ENV, "").strip()
    if not raw:
        return DEFAULT_BACKOFF
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0.0 <= seconds <= 60.0:  # (NaN fails both)
        raise ConfigError(f"${BACKOFF_ENV} must be a number of seconds from 0 to 60 (got {raw!r})")
    return seconds


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())
