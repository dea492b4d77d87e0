"""Value helpers of the sandbox: UIDs, money and number quirks, dates, timestamps, the clock.

The real API returns ids as 16-character lower-case alphanumeric UIDs, money as decimal strings
(`"223.5"`, `"25.0"`), dates as `YYYY-MM-DD` and timestamps in two styles (`...T10:30:00Z` for
catalog packages and clients, `...T10:00:00.000Z` for client packages). Everything here is pure
except `Clock`, which reads the system time unless frozen (the recipe tests freeze it at the day a
recipe was verified, so that its fixed dates mean what they meant then).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import os
import string
import threading
from decimal import Decimal, InvalidOperation
from typing import Any

UID_ALPHABET = string.ascii_lowercase + string.digits
UID_LENGTH = 16
#: bytes below this map onto the alphabet without bias (252 = 7 x 36); the others are dropped
_UNBIASED = 256 - 256 % len(UID_ALPHABET)
_TO_ALPHABET = bytes(UID_ALPHABET.encode()[b % len(UID_ALPHABET)] for b in range(256))
_OVER = bytes(range(_UNBIASED, 256))
_POOL_BYTES = 4096


class _UidPool:
    """UID characters drawn from the OS's generator (``os.urandom``) a few thousand at a time:
    each byte below 252 becomes ``UID_ALPHABET[byte % 36]`` (each character uniform, independent
    of the others, as base-36 digits of one uniform draw are), the others are dropped (rejection
    sampling: no modulo bias).  One system call per ~250 UIDs instead of one or two per UID
    (`secrets.randbelow`: 4.4 us a UID here, the pool 0.7 us; a create makes three).  Shared by
    threads under a lock; a forked child starts a pool of its own (it must not hand out the UIDs
    its parent will)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chars = ""
        self._next = 0

    def take(self) -> str:
        with self._lock:
            start = self._next
            if start + UID_LENGTH > len(self._chars):
                chars = ""
                while len(chars) < UID_LENGTH:  # a refill keeps ~98% of its bytes
                    chars += os.urandom(_POOL_BYTES).translate(_TO_ALPHABET, _OVER).decode("ascii")
                self._chars, start = chars, 0
            self._next = start + UID_LENGTH
            return self._chars[start:start + UID_LENGTH]

    def reset(self) -> None:
        """Forget the drawn characters (also after a fork, in the child, with a new lock)."""
        self._lock = threading.Lock()
        self._chars = ""
        self._next = 0


_POOL = _UidPool()
os.register_at_fork(after_in_child=_POOL.reset)


def new_uid() -> str:
    """A fresh 16-character lower-case alphanumeric UID, like vcita's, from the OS's generator."""
    return _POOL.take()


def is_uid(value: Any) -> bool:
    """True when `value` looks like a vcita UID (16 lower-case alphanumerics)."""
    return (
        isinstance(value, str)
        and len(value) == UID_LENGTH
        and all(c in UID_ALPHABET for c in value)
    )


def parse_decimal(value: Any) -> Decimal | None:
    """A number sent as JSON number or numeric string (`25`, `25.0`, `"25.0"`); None if neither."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        value = repr(value)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        result = Decimal(value.strip())
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def parse_int(value: Any) -> int | None:
    """An integral count sent as number or string (`3`, `3.0`, `"3"`); None otherwise."""
    if type(value) is int:  # the common case, on every rendered credit
        return value
    number = parse_decimal(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def money(value: Any) -> str:
    """Money as the API prints it: Ruby's BigDecimal#to_s style, always with a decimal point."""
    if type(value) in _RECALLED:  # each answer prints the same few prices again
        return _money_recalled(value)
    return _money(value)


def _money(value: Any) -> str:
    number = parse_decimal(value)
    if number is None:
        number = Decimal(0)
    text = format(number.normalize(), "f")
    return text if "." in text else text + ".0"


def plain_number(value: Any) -> int | float:
    """A JSON number: integral values as int (`100`), others as float (`100.5`)."""
    if type(value) in _RECALLED:
        return _plain_number_recalled(value)
    return _plain_number(value)


def _plain_number(value: Any) -> int | float:
    number = parse_decimal(value)
    if number is None:
        return 0
    if number == number.to_integral_value():
        return int(number)
    return float(number)


#: the exact types whose values `money` and `plain_number` remember (pure functions of them; the
#: type is part of the key, so that ``1``, ``1.0`` and ``True`` are never taken for each other)
_RECALLED = frozenset({str, int})
_money_recalled = functools.lru_cache(maxsize=4096, typed=True)(_money)
_plain_number_recalled = functools.lru_cache(maxsize=4096, typed=True)(_plain_number)


def count_text(value: Any) -> str:
    """A count printed as the string the API uses for bookings (`"10"`)."""
    number = parse_int(value)
    return str(number if number is not None else 0)


def parse_date(value: Any) -> dt.date | None:
    """A `YYYY-MM-DD` date; an ISO 8601 date-time is accepted and cut to its date."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    head = value[:10]
    if len(value) > 10 and value[10] not in "T ":
        return None
    try:
        return dt.date.fromisoformat(head)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)  # a pure function, asked the same (today, 6, "m") by each create
def add_period(start: dt.date, amount: int, unit: str) -> dt.date:
    """`start` plus `amount` days/weeks/months/years (`unit` in d, w, m, y; month ends clamp)."""
    unit = unit.lower()
    if unit == "d":
        return start + dt.timedelta(days=amount)
    if unit == "w":
        return start + dt.timedelta(weeks=amount)
    months = amount * 12 if unit == "y" else amount
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return dt.date(year, month, day)


class Clock:
    """The sandbox's idea of now: the system UTC time, or a frozen day set by the operator."""

    def __init__(self) -> None:
        self.frozen_today: dt.date | None = None

    def now(self) -> dt.datetime:
        real = dt.datetime.now(dt.UTC)
        if self.frozen_today is None:
            return real
        return dt.datetime.combine(self.frozen_today, real.time(), tzinfo=dt.UTC)

    def today(self) -> dt.date:
        return self.frozen_today or dt.datetime.now(dt.UTC).date()

    def stamp(self) -> str:
        """`2026-01-12T10:30:00Z`: catalog packages, clients."""
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def stamp_ms(self) -> str:
        """`2026-03-21T10:00:00.000Z`: client packages."""
        return stamp_ms(self.now())


def stamp_ms(moment: dt.datetime) -> str:
    """`moment` as `2026-03-21T10:00:00.000Z` (milliseconds cut, not rounded)."""
    if moment.year >= 1000:  # isoformat: 2.8 us here, strftime 4.2 us (a create makes two)
        return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    # strftime's %Y does not pad a year below 1000 (an operator may freeze the clock there)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
