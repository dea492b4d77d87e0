"""The value types of manifest fields, strict about types and tolerant about spelling: money
(``Money``: a JSON number, at most 4 places, bounded), ids (``Uid``, ``UidRef``: ``uid`` or
``{id: uid}``), dates, counts, upper-cased enums, and the bounds and patterns the JSON Schema
(``reconciler schema``) states too.  Used by the documents (``model/manifest.py``) and the
operations that carry their values (``plan/operations.py``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
UID_PATTERN = r"^[A-Za-z0-9_-]+$"

# Bounds of the numbers a manifest may hold.  The vcita API documents none (price and
# discount_amount are "number", counts "integer"; API-NOTES §6), so these are reconciler's own,
# chosen so that every accepted value reaches the API exactly and means something:
#: Money: below 10^10, at most 4 decimal places (the most any ISO 4217 currency has: CLF, UYW);
#: 14 significant digits at most, so the JSON encoder's float stays exact (it is for 15).
MAX_MONEY = Decimal("9999999999.9999")
MONEY_PLACES = 4
#: Credits per item or booking credit: far beyond any package, and far inside a 32-bit integer.
MAX_BOOKINGS = 1_000_000
#: Display positions of catalog packages: far beyond any catalog.
MAX_ORDER = 100_000
#: Validity of a catalog package: at most about a hundred years in its unit.
MAX_EXPIRATION = {"D": 36_525, "W": 5_218, "M": 1_200, "Y": 100}


@cache
def currency_codes() -> frozenset[str]:
    """The ISO 4217 codes a package may be priced in (``reconciler/data/iso4217.json``)."""
    raw = resources.files("reconciler").joinpath("data/iso4217.json").read_text("utf-8")
    return frozenset(json.loads(raw)["codes"])


# --- value parsers: strict about types, tolerant about spelling -----------------------------


def _number(value: Any) -> Any:
    # YAML gives int/float; a quoted "100" is a string and almost always a mistake worth naming.
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError("must be a number (write it without quotes)")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    return Decimal(value)


def _money_bounds(value: Decimal) -> Decimal:
    # Compared before anything rounds: a 29-digit price must be refused, not rounded to 28.
    if value > MAX_MONEY:
        raise ValueError(f"{_digits(value)} is too large (at most {MAX_MONEY:,})")
    if value != value.quantize(Decimal(1).scaleb(-MONEY_PLACES)):
        raise ValueError(f"{_digits(value)} has more than {MONEY_PLACES} decimal places")
    return value


def _digits(value: Decimal) -> str:
    text = format(value, "f") if abs(value.adjusted()) < 40 else str(value)
    return text if len(text) <= 24 else text[:20] + "..."


def _upper_enum(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _uid(value: Any) -> Any:
    # A service or product reference may be written as a plain UID or as {id: UID}.
    if isinstance(value, dict) and set(value) == {"id"}:
        return value["id"]
    if isinstance(value, dict):
        raise ValueError("write a UID or {id: UID}")
    return value


def _date(value: Any) -> Any:
    if isinstance(value, datetime):
        raise ValueError("must be a date (YYYY-MM-DD), not a timestamp")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(f"'{value}' is not a date in the form YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a real calendar date") from None
    raise ValueError("must be a date in the form YYYY-MM-DD")


def _list_not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must be a list; write [] for none (null is refused by the vcita API)")
    return value


def _money_json(value: Decimal) -> int | float:
    # A JSON number, as the manifest wrote it (a string would not read back: see _number).
    return int(value) if value == value.to_integral_value() else float(value)


Money = Annotated[
    Decimal,
    BeforeValidator(_number),
    Field(ge=0),
    PlainSerializer(_money_json, when_used="json"),
    AfterValidator(_money_bounds),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": float(MAX_MONEY)}),
]
Uid = Annotated[str, StringConstraints(pattern=UID_PATTERN, min_length=1, max_length=64)]
UidRef = Annotated[
    Uid,
    BeforeValidator(_uid),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "string", "pattern": UID_PATTERN},
                {
                    "type": "object",
                    "properties": {"id": {"type": "string", "pattern": UID_PATTERN}},
                    "required": ["id"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]
StrictPositiveInt = Annotated[int, Field(strict=True, ge=1)]
Bookings = Annotated[int, Field(strict=True, ge=1, le=MAX_BOOKINGS)]
ManifestDate = Annotated[
    date,
    BeforeValidator(_date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}),
]
