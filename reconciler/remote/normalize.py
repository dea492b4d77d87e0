"""Raw API objects -> the typed remote models, with the API's quirks normalised away.

The API sends numbers and booleans as strings (``"10"``, ``"223.5"``, ``"true"``), enums in lower
case (``"m"``, ``"f"``), the client-package price as ``amount``, its matter as ``conversation_id``,
and booking credits' services as ``credit_items[].item_id`` (API-NOTES §6.3, §6.6, §9.1).  Each
function here takes one raw object and returns one model; anything that cannot be read raises
:class:`ValueError`, which the client turns into a ProtocolError naming the request.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.model.remote import (
    BookingCredit,
    RemoteCatalogItem,
    RemoteCatalogPackage,
    RemoteClient,
    RemoteClientPackage,
    RemotePaymentRequest,
    RemoteProduct,
    RemoteService,
)


def to_int(value: Any) -> int:
    """``10``, ``"10"``, ``"10.0"`` -> 10; a fractional or non-numeric value is refused."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {_shown(value)}")  # a bad value, not a bad call: ValueError
    if isinstance(value, int):
        return value
    dec = to_decimal(value)
    if dec is None or dec != dec.to_integral_value():
        raise ValueError(f"expected an integer, got {_shown(value)}")
    return int(dec)


def to_decimal(value: Any) -> Decimal | None:
    """``"223.5"``, ``223.5``, ``25`` -> Decimal (floats via their shortest repr); ``""``/None -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {_shown(value)}")  # a bad value, not a bad call: ValueError
    if (isinstance(value, int) and abs(value) >= 10**64) or (isinstance(value, str) and len(value) > 64):
        # Before str()/Decimal(): a 5,000-digit number is refused, not converted (or stopped by
        # Python's int-to-str limit with a message about Python).
        raise ValueError(f"the number {_shown(value)} is longer than any number the API sends")
    try:
        dec = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"expected a number, got {_shown(value)}") from None
    if not dec.is_finite():
        raise ValueError(f"expected a finite number, got {_shown(value)}")
    return dec


#: Money read from the server: at most 15 digits before the decimal point and 8 after.  The API
#: documents no bound (API-NOTES §6.3: decimal strings such as "223.5"); within this one every
#: amount is compared and printed exactly (Decimal's 28 digits), and anything beyond it is not an
#: amount vcita holds but an answer to refuse (it used to end plan in an internal InvalidOperation).
MAX_REMOTE_MONEY = 10**15
MAX_REMOTE_PLACES = 8


def to_money(value: Any) -> Decimal | None:
    """:func:`to_decimal` within the bounds of an amount (ValueError beyond them)."""
    dec = to_decimal(value)
    if dec is None:
        return None
    if abs(dec) >= MAX_REMOTE_MONEY:
        raise ValueError(f"the amount {_shown(value)} is larger than any amount the API holds "
                         f"(at most {MAX_REMOTE_MONEY:,} is accepted)")
    if dec.normalize().as_tuple().exponent < -MAX_REMOTE_PLACES:  # type: ignore[operator]
        raise ValueError(f"the amount {_shown(value)} has more than {MAX_REMOTE_PLACES} decimal places")
    return dec


def _shown(value: Any) -> str:
    # A value quoted in a message is cut short: a server's megabyte-long "number" stays out of it.
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else f"<a {value.bit_length()}-bit integer>"
    return text if len(text) <= 40 else text[:36] + "...'"


def to_bool(value: Any) -> bool:
    """``True``, ``"true"``, ``"1"``, ``1`` -> True (and the false forms); anything else refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "t"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "f", ""):
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def to_date(value: Any) -> date | None:
    """``"2026-03-15"`` (or a timestamp starting with one) -> date; empty -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def upper_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).strip().upper()


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _f(raw: dict[str, Any], key: str, conv: Any, *, default: Any = None) -> Any:
    """``conv(raw[key])`` with the field's name in any error; ``default`` when absent or null."""
    value = raw.get(key)
    if value is None:
        return default
    try:
        return conv(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{key}: {exc}") from None


def _service_ids(services: Any) -> tuple[str, ...]:
    out = []
    for svc in services or ():
        out.append(str(svc["id"]) if isinstance(svc, dict) else str(svc))
    return tuple(out)


def catalog_package(raw: dict[str, Any]) -> RemoteCatalogPackage:
    """One ``data.package`` / ``data.packages[]`` object."""
    items = raw.get("items")
    products = raw.get("products") or ()
    return RemoteCatalogPackage(
        id=str(raw["id"]),
        name=str(raw.get("name") or ""),
        price=_f(raw, "price", to_money) or Decimal(0),
        currency=str(raw.get("currency") or "").upper(),
        expiration=_f(raw, "expiration", to_int),
        expiration_unit=upper_or_none(raw.get("expiration_unit")),  # type: ignore[arg-type]
        items=None if items is None else tuple(
            RemoteCatalogItem(total_bookings=_f(it, "total_bookings", to_int),
                              services=_service_ids(it.get("services")))
            for it in items
        ),
        products=tuple(
            RemoteProduct(id=str(p["id"]), quantity=_f(p, "quantity", to_int, default=1), name=str(p.get("name") or ""))
            for p in products
        ),
        description=_opt_str(raw.get("description")),
        image_path=raw.get("image_path") or None,
        discount_amount=_f(raw, "discount_amount", to_money),
        discount_unit=upper_or_none(raw.get("discount_unit")),  # type: ignore[arg-type]
        online_payment_enabled=_f(raw, "online_payment_enabled", to_bool),
        active=_f(raw, "active", to_bool, default=True),
        deleted_at=raw.get("deleted_at") or None,
        order=_f(raw, "order", lambda v: None if v == "" else to_int(v)),
        updated_at=_opt_str(raw.get("updated_at")),
    )


def booking_credit(raw: dict[str, Any]) -> BookingCredit:
    services = tuple(
        str(ci["item_id"]) for ci in raw.get("credit_items") or ()
        if str(ci.get("item_type") or "SERVICE").upper() == "SERVICE" and ci.get("item_id") is not None
    )
    return BookingCredit(
        id=str(raw["id"]),
        total_bookings=_f(raw, "total_bookings", to_int),
        bookings_usage=_f(raw, "bookings_usage", to_int, default=0),
        services=services,
    )


def client_package(raw: dict[str, Any]) -> RemoteClientPackage:
    """One ``data.client_package`` object (staff APIs: ``amount``, ``active: "true"``)."""
    price = raw.get("amount", raw.get("price"))
    return RemoteClientPackage(
        id=str(raw["id"]),
        client_id=str(raw["client_id"]),
        package_id=str(raw["package_id"]),
        name=str(raw.get("name") or ""),
        price=_f({"amount": price}, "amount", to_money),
        currency=_opt_str(raw.get("currency")) or None,
        valid_from=_f(raw, "valid_from", to_date),
        valid_until=_f(raw, "valid_until", to_date),
        active=_f(raw, "active", to_bool, default=True),
        booking_credits=tuple(booking_credit(bc) for bc in raw.get("booking_credits") or ()),
        matter_uid=raw.get("conversation_id") or raw.get("matter_uid") or None,
        payment_request_id=raw.get("payment_request_id") or raw.get("payment_status_uid")
        or raw.get("payment_status_id") or None,
        payment_request_state=raw.get("payment_request_state") or raw.get("payment_status_state") or None,
        updated_at=_opt_str(raw.get("updated_at")),
    )


def payment_request(raw: dict[str, Any]) -> RemotePaymentRequest:
    """One ``data.payment_requests[]`` / ``data.payment_request`` object."""
    return RemotePaymentRequest(
        uid=str(raw["uid"]),
        payable_type=_opt_str(raw.get("payable_type") or raw.get("entity_type")),
        payable_uid=_opt_str(raw.get("payable_uid") or raw.get("entity_uid")),
        client_uid=_opt_str(raw.get("client_uid") or raw.get("client_id")),
        amount=_f(raw, "amount", to_money),
        currency=_opt_str(raw.get("currency")) or None,
        state=_opt_str(raw.get("state")),
        created_at=_opt_str(raw.get("created_at")),
    )


def client(raw: dict[str, Any]) -> RemoteClient:
    return RemoteClient(
        id=str(raw["id"]),
        first_name=str(raw.get("first_name") or ""),
        last_name=str(raw.get("last_name") or ""),
        email=raw.get("email") or None,
    )


def service(raw: dict[str, Any]) -> RemoteService:
    return RemoteService(id=str(raw["id"]), name=str(raw.get("name") or ""))
