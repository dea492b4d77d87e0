"""JSON text of the sandbox: the compact text of answers and stored documents, and reading JSON.

`dumps(value, sort_keys=...)` is, byte for byte, ``json.dumps(value, separators=(",", ":"),
sort_keys=...)``: the text the sandbox has always sent and stored.  orjson writes it when orjson's
text is known to be the same, about ten times faster (three texts per create of a client
package: its two stored documents and the answer); the standard library writes it otherwise.
Where orjson's text differs from the standard library's, and how each case is routed:

- non-ASCII characters (UTF-8 against ``\\u`` escapes) and DEL (raw against ``\\u007f``): the text
  is not taken unless it is ASCII without DEL;
- floats below 1e-4 (``1e-5`` or ``0.00001`` against ``1e-05``): not taken when it holds a digit
  followed by ``e-``, or ``0.0000`` (a string holding them merely takes the slower way);
- integers beyond 64 bits, keys that are not strings, lone surrogates, nesting deeper than 254,
  types it does not know (a float subclass among them), and the subclasses of str, int, dict and
  list, dates and times, and dataclasses, which it is told to refuse (a dict subclass may list its
  items otherwise, the standard library refuses the others): orjson refuses them, the standard
  library writes them (or raises what it always raised).  Enum members and UUIDs, which orjson
  writes and the standard library refuses, are in no value of the sandbox (its values come from
  JSON text and its own code);
- NaN and the infinities (``null`` against ``NaN``/``Infinity``), which orjson's text cannot show:
  the sandbox makes none itself (`values.parse_decimal` refuses them) and takes none in an API
  request (`loads_request`, below); `loads`, which reads every JSON text the sandbox has stored
  (and the operator API's bodies), reads the literals ``NaN``, ``Infinity`` and ``-Infinity``,
  and numbers too large for a float (``1e400``), as `NonFinite`, a float that orjson refuses.

`loads` is ``json.loads`` (str, bytes: same decoding, same errors) except for that one mark.

`loads_request` reads a request's body as the real API does (a Rails JSON parser): ``NaN`` and
the infinities are not JSON (RFC 8259), so a body holding them is refused (`NotJson`, a
ValueError: 400, as any body that is not JSON), and a number too large for a float is refused too
(`OutOfRange`: 422), so that nothing non-finite is stored or ever echoed as invalid JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson


class NonFinite(float):
    """NaN or an infinity read from JSON text: equal in every use to the float it holds, except
    that orjson refuses it, so that `dumps` writes it as the standard library does."""


def _float(text: str) -> float:
    value = float(text)  # what the standard library makes of a float literal
    return value if math.isfinite(value) else NonFinite(value)  # 1e400 overflows to inf


_decoder = json.JSONDecoder(parse_constant=NonFinite, parse_float=_float)
_compact = json.JSONEncoder(separators=(",", ":")).encode
_compact_sorted = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


class NotJson(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a request body: not JSON."""


class OutOfRange(ValueError):
    """A number of a request body too large for a float (``1e400``): valid JSON, but no value."""

    def __init__(self, literal: str) -> None:
        super().__init__(f"the number {literal[:40]} is out of range")
        self.literal = literal


def _no_constant(name: str) -> Any:
    raise NotJson(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise OutOfRange(text)
    return value


_request_decoder = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


def loads_request(text: str | bytes | bytearray) -> Any:
    """A request body: `loads`, but ``NaN``/``Infinity`` raise `NotJson` and a float literal too
    large for a float raises `OutOfRange` (both ValueErrors)."""
    return _request_decoder.decode(_text(text))


def loads(text: str | bytes | bytearray) -> Any:
    """``json.loads(text)``, with NaN, the infinities and overflowing numbers read as `NonFinite`."""
    return _decoder.decode(_text(text))


def _text(text: str | bytes | bytearray) -> str:
    """The text ``json.loads`` would decode (same encodings, same errors)."""
    if isinstance(text, str):
        if text.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return text
    if isinstance(text, (bytes, bytearray)):
        return text.decode(json.detect_encoding(text), "surrogatepass")
    raise TypeError(f"the JSON object must be str, bytes or bytearray, not {type(text).__name__}")


#: how orjson writes a float that the standard library writes otherwise (``1.5e-7``, ``0.00006``)
_PARTING_FLOAT = re.compile(rb"[0-9]e-|0\.0000")
#: the literal searches first (a regular expression of one literal searches faster than ``in``)
_E_MINUS, _ZEROS = re.compile(rb"e-"), re.compile(rb"0\.0000")


def _same_as_stdlib(text: bytes) -> bool:
    if not text.isascii() or b"\x7f" in text:
        return False
    if _E_MINUS.search(text) is None and _ZEROS.search(text) is None:
        return True
    return _PARTING_FLOAT.search(text) is None  # a name with "e-" in it ("one-off"), looked at closer


_REFUSE = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """``json.dumps(value, separators=(",", ":"), sort_keys=sort_keys).encode()``, the same bytes."""
    try:
        text = orjson.dumps(value, option=(_REFUSE | orjson.OPT_SORT_KEYS) if sort_keys else _REFUSE)
    except orjson.JSONEncodeError:
        text = b"\x7f"  # not the same: the standard library decides
    if _same_as_stdlib(text):
        return text
    return (_compact_sorted if sort_keys else _compact)(value).encode()
