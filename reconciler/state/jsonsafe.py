"""Whether a value stored in the state is plain JSON, so that what is written reads back equal.

:func:`check_json_safe` is the check every stored record's free-form maps (``applied``,
``details``, ``identity``) pass through; it runs for each record an apply writes and for each
record a state load reads, so its common case (exact built-in types) is decided in one pass
without a call per leaf, and only what that pass cannot accept is walked again for a located
message.
"""

from __future__ import annotations

import math
from typing import Any

#: the exact types :func:`_plain` accepts without a closer look (subclasses take the full walk)
_SCALARS = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> bool:
    """Whether ``value`` is plain JSON built of the exact built-in types only (dict with str keys,
    list, str, int, finite float, bool, None): what :func:`check_json_safe` accepts, decided
    without a call per leaf.  False means "look closer", not "refused"."""
    kind = type(value)
    if kind is dict:
        for k in value:
            if type(k) is not str:
                return False
        items = value.values()
    elif kind is list:
        items = value
    else:
        return kind in _SCALARS or (kind is float and math.isfinite(value))
    for v in items:
        t = type(v)
        if t in _SCALARS or (t is float and math.isfinite(v)) or ((t is dict or t is list) and _plain(v)):
            continue
        return False
    return True


def check_json_safe(value: Any, where: str) -> None:
    """Raise ValueError unless ``value`` is plain JSON (dict with str keys, list, str, int,
    finite float, bool, None), so that what is stored reads back equal."""
    if _plain(value):  # the common case, decided in one pass; anything else is walked below
        return
    _check_json_walk(value, where)


def _check_json_walk(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not a finite number")
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_json_walk(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: key {k!r} is not a string")
            _check_json_walk(v, f"{where}.{k}")
        return
    raise ValueError(f"{where}: {type(value).__name__} is not JSON (convert it to str, int, float, list or dict)")
