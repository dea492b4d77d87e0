"""The client's compact JSON: request bodies, fingerprints and answers, the standard library's bytes, faster.

An apply encodes three JSON texts per create (the request's body, the digest of the request a
pending record names, and the fingerprint of the object it records) and reads one (the answer).
Each of these texts is compared with texts made earlier, by this version or an older one: a
pending record's request digest with the request a plan shows, a fingerprint with the one in the
state and in a saved plan.  So the bytes must stay exactly the standard library's:

- :func:`dumps` is ``json.dumps(value, separators=(",", ":"), sort_keys=..., default=...).encode()``,
  byte for byte.  orjson writes the text (about ten times faster) where its text is known to be the
  same, and the standard library everywhere else: when the text is not ASCII or holds DEL (orjson
  writes UTF-8 and a raw DEL, the standard library ``\\u`` escapes), or holds a float orjson writes
  otherwise (below 1e-4: ``0.00001`` against ``1e-05``), or when orjson refuses the value (integers
  beyond 64 bits, keys that are not strings, lone surrogates, deep nesting, what ``default``
  refuses).  Subclasses of str, int, float, dict, list and tuple (str-valued enums among them,
  NaN and the infinities as float subclasses) go to the standard library, which writes them as it
  always did; dates, dataclasses and every other type go to ``default`` in both.  Enum members
  that are none of these and UUIDs, which orjson writes by their value where the standard library
  asks ``default``, are in none of the client's values (bodies and views are built from manifests
  and answers: strings, numbers, Decimals, dates, lists and dicts).  orjson writes NaN and the
  infinities as ``null``: a text with ``null`` in it is the standard library's to write (a view
  with an empty field takes the slower way, as it always did).
- :func:`loads` is ``json.loads`` for the bytes of an answer: orjson reads valid UTF-8 JSON (the
  same values: correctly rounded floats, the last of duplicate keys), and whatever it refuses (NaN
  and the infinities, other encodings, a byte-order mark, lone surrogates, very deep nesting) is
  read by the standard library, with its results and errors.  orjson reads an integer beyond 64
  bits as a float, so a text with 19 digits in a row (in a number or a string) goes to the
  standard library at once.

The sandbox keeps a twin of :func:`dumps` (``reconciler/sandbox/jsontext.py``): it imports nothing of
the rest of reconciler (the import contract), and its values need no ``default``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

#: how orjson writes a float that the standard library writes otherwise (``1.5e-7``, ``0.00006``);
#: a string holding such characters merely takes the slower way
_PARTING = re.compile(rb"[0-9]e-|0\.0000")
_PASS_ON = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_SORTED = _PASS_ON | orjson.OPT_SORT_KEYS

_ENCODERS: dict[tuple[bool, Any], json.JSONEncoder] = {}
_DEFAULTS: dict[Any, Callable[[Any], Any]] = {}
#: what the standard library writes natively, subclasses included
_NATIVE = (str, int, float, dict, list, tuple)


def _orjson_default(default: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """``default`` for orjson: a subclass the standard library writes natively is refused (the
    standard library then writes the whole value), anything else is ``default``'s."""
    found = _DEFAULTS.get(default)
    if found is None:
        def found(value: Any) -> Any:
            if isinstance(value, _NATIVE) or default is None:
                raise TypeError(type(value).__name__)
            return default(value)
        _DEFAULTS[default] = found
    return found


def _stdlib(value: Any, sort_keys: bool, default: Callable[[Any], Any] | None) -> bytes:
    encoder = _ENCODERS.get((sort_keys, default))
    if encoder is None:
        encoder = _ENCODERS[(sort_keys, default)] = json.JSONEncoder(
            separators=(",", ":"), sort_keys=sort_keys, default=default)
    return encoder.encode(value).encode()


def dumps(value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> bytes:
    """``json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, default=default).encode()``."""
    try:
        text = orjson.dumps(value, default=_orjson_default(default), option=_SORTED if sort_keys else _PASS_ON)
    except (orjson.JSONEncodeError, TypeError):
        return _stdlib(value, sort_keys, default)
    if text.isascii() and b"\x7f" not in text and b"null" not in text and _PARTING.search(text) is None:
        return text
    return _stdlib(value, sort_keys, default)


#: 19 digits in a row: perhaps an integer beyond 64 bits, which orjson reads as a float
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def loads(data: bytes) -> Any:
    """``json.loads(data)``: the same value, or the same error."""
    if _LONG_DIGITS.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)
