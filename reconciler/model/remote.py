"""Remote objects as the remote layer hands them up: unwrapped from either envelope and normalised.

The API returns numbers and booleans as strings and enums in lower case (API-NOTES §9.1); the
remote layer converts every such value before building these models, so nothing above it ever
sees ``"10"`` or ``"m"``.  Fields the API may omit are optional here.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import ConfigDict

from reconciler.model.base import Frozen


class _Remote(Frozen):
    # The API adds fields over time; a remote object must not fail on one we do not know.
    model_config = ConfigDict(frozen=True, extra="ignore")


class RemoteService(_Remote):
    id: str
    name: str = ""


class RemoteClient(_Remote):
    id: str
    first_name: str = ""
    last_name: str = ""
    email: str | None = None


class RemoteCatalogItem(_Remote):
    total_bookings: int
    services: tuple[str, ...]  # service UIDs, in the order the API returned them


class RemoteProduct(_Remote):
    id: str
    quantity: int
    name: str = ""


class RemoteCatalogPackage(_Remote):
    id: str
    name: str
    price: Decimal
    currency: str
    expiration: int
    expiration_unit: Literal["D", "W", "M", "Y"]
    # None when the list was fetched without include_items
    items: tuple[RemoteCatalogItem, ...] | None = None
    products: tuple[RemoteProduct, ...] = ()
    description: str | None = None
    image_path: str | None = None
    discount_amount: Decimal | None = None
    discount_unit: Literal["F", "P"] | None = None
    online_payment_enabled: bool | None = None
    active: bool = True
    deleted_at: str | None = None
    order: int | None = None
    updated_at: str | None = None


class BookingCredit(_Remote):
    id: str
    total_bookings: int
    bookings_usage: int
    services: tuple[str, ...]  # the credit_items' item_ids (item_type SERVICE)


class RemoteClientPackage(_Remote):
    id: str
    client_id: str
    package_id: str
    name: str = ""
    price: Decimal | None = None  # the API's "amount"
    currency: str | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    active: bool = True
    booking_credits: tuple[BookingCredit, ...] = ()
    matter_uid: str | None = None  # the API's "conversation_id"
    payment_request_id: str | None = None
    payment_request_state: str | None = None
    updated_at: str | None = None


class RemotePaymentRequest(_Remote):
    """A payment request as the business's list shows it (API-NOTES §11); only what discovery
    reads.  ``client_uid`` is None when the item does not carry it (the spec's example does not)."""

    uid: str
    payable_type: str | None = None
    payable_uid: str | None = None
    client_uid: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    state: str | None = None
    created_at: str | None = None
