"""Manifest documents: what users write in YAML, validated and normalised.

Each document is ``{apiVersion: reconciler/v1, kind, metadata: {name}, spec}`` where ``kind`` is
``CatalogPackage`` (mirrors POST /platform/v1/payment/packages, API-NOTES §6.1) or
``ClientPackage`` (mirrors POST /platform/v1/payment/client_packages, §6.4) or
``ClientPackageSet`` (one catalog package assigned to many clients: each member is a client
package of its own, built by :func:`set_member_spec` and addressed by its client) or
``CatalogOrder`` (the catalog's display order: each package named gets its ``order``).

Inputs are accepted in the forms people write (``m`` or ``M``, a service as ``uid`` or
``{id: uid}``) and stored in one canonical form (``M``, ``"uid"``), so two manifests that mean
the same thing compare equal.  Optional fields left out (``None``) are not managed: the planner
leaves the remote value alone.  The same models generate ``reconciler schema``.

Over 400 lines on purpose: the four document kinds form one discriminated union
(``DOCUMENT_ADAPTER``) and one JSON Schema, and a set's members are built from the ClientPackage
model; the field value types live in ``model/values.py``.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from reconciler.model import address as addresses
from reconciler.model.base import Frozen
from reconciler.model.values import (
    MAX_BOOKINGS,
    MAX_EXPIRATION,
    MAX_ORDER,
    NAME_PATTERN,
    UID_PATTERN,
    Bookings,
    ManifestDate,
    Money,
    StrictPositiveInt,
    Uid,
    UidRef,
    _list_not_null,
    _upper_enum,
    currency_codes,
)

API_VERSION = "reconciler/v1"


class Metadata(Frozen):
    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=63)] = Field(
        description="Stable key of the object: lower-case letters, digits and '-'; unique per kind."
    )


# --- CatalogPackage ---------------------------------------------------------------------------


class Item(Frozen):
    """A service group: ``total_bookings`` credits usable on any of ``services``."""

    total_bookings: Bookings
    services: Annotated[tuple[UidRef, ...], Field(min_length=1)]

    @field_validator("services")
    @classmethod
    def _no_repeats(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("lists a service more than once")
        return v

    @property
    def key(self) -> tuple[str, ...]:
        """The item's identity: its sorted service set (items are diffed by key, not index)."""
        return tuple(sorted(self.services))


class Product(Frozen):
    id: Uid
    quantity: Annotated[int, Field(strict=True, ge=1, le=5)]


class CatalogPackageSpec(Frozen):
    name: Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)]
    price: Money
    currency: Annotated[str, BeforeValidator(_upper_enum),
                        WithJsonSchema({"type": "string", "pattern": "^[A-Za-z]{3}$"})]
    expiration: StrictPositiveInt
    expiration_unit: Annotated[
        Literal["D", "W", "M", "Y"],
        BeforeValidator(_upper_enum),
        WithJsonSchema({"type": "string", "enum": ["D", "W", "M", "Y", "d", "w", "m", "y"]}),
    ]
    items: Annotated[tuple[Item, ...], Field(min_length=1)]
    products: Annotated[
        tuple[Product, ...],
        BeforeValidator(_list_not_null),
        Field(max_length=3),
        WithJsonSchema({"type": "array", "maxItems": 3, "items": Product.model_json_schema()}),
    ] = ()
    description: str | None = None
    discount_amount: Money | None = None
    discount_unit: Annotated[
        Literal["F", "P"] | None,
        BeforeValidator(_upper_enum),
        WithJsonSchema({"type": "string", "enum": ["F", "P", "f", "p"]}),
    ] = None
    image_path: str | None = None
    online_payment_enabled: Annotated[bool | None, Field(strict=True)] = None
    #: false: deactivated (no longer sold; client packages already sold are kept), through the
    #: update route (API-NOTES §6.2: documented in its prose only, not yet verified)
    active: Annotated[bool | None, Field(strict=True)] = None
    #: position in the catalog's display order (lower first), through the reorder route (§2 row 5)
    order: Annotated[int | None, Field(strict=True, ge=1, le=MAX_ORDER)] = None

    @field_validator("currency")
    @classmethod
    def _iso4217(cls, v: str) -> str:
        if v not in currency_codes():
            raise ValueError(f"'{v}' is not an ISO 4217 currency code (e.g. USD, EUR, ILS)")
        return v

    @field_validator("items")
    @classmethod
    def _distinct_items(cls, v: tuple[Item, ...]) -> tuple[Item, ...]:
        seen: set[str] = set()
        for item in v:
            for s in item.services:
                if s in seen:
                    raise ValueError(f"service '{s}' appears in more than one item")
                seen.add(s)
        return v

    @field_validator("products")
    @classmethod
    def _distinct_products(cls, v: tuple[Product, ...]) -> tuple[Product, ...]:
        if len({p.id for p in v}) != len(v):
            raise ValueError("lists a product more than once")
        return v

    @model_validator(mode="after")
    def _discount(self) -> CatalogPackageSpec:
        if (self.discount_amount is None) != (self.discount_unit is None):
            missing = "discount_unit" if self.discount_unit is None else "discount_amount"
            other = "discount_amount" if missing == "discount_unit" else "discount_unit"
            raise ValueError(f"{other}: discount_amount and discount_unit go together: add {missing}")
        if self.discount_unit == "P" and self.discount_amount is not None and self.discount_amount > 100:
            raise ValueError("discount_amount: a percentage discount (discount_unit: P) cannot exceed 100")
        longest = MAX_EXPIRATION[self.expiration_unit]
        if self.expiration > longest:
            raise ValueError(f"expiration: {self.expiration} {self.expiration_unit} is more than about a hundred "
                             f"years (at most {longest:,} with expiration_unit {self.expiration_unit})")
        return self


class CatalogPackage(Frozen):
    apiVersion: Literal["reconciler/v1"]
    kind: Literal["CatalogPackage"]
    metadata: Metadata
    spec: CatalogPackageSpec

    @cached_property
    def address(self) -> str:
        return addresses.catalog(self.metadata.name)


class CatalogOrderSpec(Frozen):
    packages: Annotated[tuple[Annotated[str, StringConstraints(pattern=NAME_PATTERN)], ...],
                        Field(min_length=1, max_length=MAX_ORDER)]


class CatalogOrder(Frozen):
    """The catalog's display order: the CatalogPackage names, first shown first (each gets
    ``order`` 1, 2, 3... as if written in its own document)."""

    apiVersion: Literal["reconciler/v1"]
    kind: Literal["CatalogOrder"]
    metadata: Metadata
    spec: CatalogOrderSpec

    @cached_property
    def address(self) -> str:
        return f"catalog_order.{self.metadata.name}"


# --- ClientPackage ----------------------------------------------------------------------------


def _client_ref(value: Any) -> Any:
    return {"id": value} if isinstance(value, str) else value


def _package_ref(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class ClientRef(Frozen):
    """A client, by UID or by e-mail (resolved through the clients list at plan time)."""

    id: Uid | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ClientRef:
        if (self.id is None) == (self.email is None):
            raise ValueError("write a client UID, or exactly one of {id: UID} / {email: ADDRESS}")
        return self


class PackageRef(Frozen):
    """A catalog package: the metadata.name of one in the manifests, or {id:} of an unmanaged one."""

    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN)] | None = None
    id: Uid | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PackageRef:
        if (self.name is None) == (self.id is None):
            raise ValueError("write a CatalogPackage name, or {id: UID} for a package not managed here")
        return self


def credit_key(services: tuple[str, ...] | list[str]) -> str:
    """The identity of a package item / booking credit: its sorted service UIDs, comma-joined."""
    return ",".join(sorted(services))


class CreditOverride(Frozen):
    """Desired total_bookings of the credit that comes from the package item with ``services``."""

    services: Annotated[tuple[UidRef, ...], Field(min_length=1)]
    total_bookings: Annotated[int, Field(strict=True, ge=0, le=MAX_BOOKINGS)]

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(sorted(self.services))


VALID_FOR_PATTERN = r"^[1-9][0-9]{0,4}[DWMYdwmy]$"


def _valid_for(value: Any) -> Any:
    # "3M", "10w", "30D": a whole number then a unit, stored upper case ("3M").
    if not isinstance(value, str) or not re.fullmatch(VALID_FOR_PATTERN, value.strip()):
        raise ValueError(f"{value!r} is not a period: write a whole number and a unit D, W, M or Y (e.g. 3M, 10W, 30D)")
    value = value.strip().upper()
    amount, unit = int(value[:-1]), value[-1]
    if amount > MAX_EXPIRATION[unit]:
        raise ValueError(f"{value} is more than about a hundred years (at most {MAX_EXPIRATION[unit]:,}{unit})")
    return value


ValidFor = Annotated[
    str,
    BeforeValidator(_valid_for),
    WithJsonSchema({"type": "string", "pattern": VALID_FOR_PATTERN}),
]


def add_period(start: date, period: str) -> date:
    """``start`` plus a period such as ``3M`` (days, weeks, months, years; a month end clamps:
    2027-01-31 + 1M = 2027-02-28), as vcita computes a client package's default ``valid_until``
    from its catalog package's expiration (the sandbox's ``add_period``).  Never from today."""
    amount, unit = int(period[:-1]), period[-1].upper()
    try:
        if unit == "D":
            return start + timedelta(days=amount)
        if unit == "W":
            return start + timedelta(weeks=amount)
    except OverflowError:
        raise ValueError(f"{start} + {period} is past the year 9999") from None
    months = amount * 12 if unit == "Y" else amount
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    if year > 9999:
        raise ValueError(f"{start} + {period} is past the year 9999")
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


class ClientPackageSpec(Frozen):
    client: Annotated[
        ClientRef,
        BeforeValidator(_client_ref),
        WithJsonSchema(
            {"oneOf": [{"type": "string", "pattern": UID_PATTERN}, ClientRef.model_json_schema()]}
        ),
    ]
    package: Annotated[
        PackageRef,
        BeforeValidator(_package_ref),
        WithJsonSchema(
            {"oneOf": [{"type": "string", "pattern": NAME_PATTERN}, PackageRef.model_json_schema()]}
        ),
    ]
    valid_from: ManifestDate | None = None
    valid_until: ManifestDate | None = None
    #: How long from valid_from (``3M``): valid_until is computed from valid_from, so it never
    #: moves from one plan to the next (never from today's date).
    valid_for: ValidFor | None = None
    price: Money | None = None
    tax_uids: tuple[Uid, ...] | None = None
    matter_uid: Uid | None = None
    booking_credits: tuple[CreditOverride, ...] | None = None
    #: A deliberate further sale of a catalog package this client already has (a renewal, a
    #: repeat purchase): opens another payment request.  Without it, an object with the same
    #: client and catalog package (and valid_from / price when given) as one reconciler already
    #: tracks or remembers is refused, so a rename or a copy never bills a client twice.
    repeat_purchase: bool = False

    @model_validator(mode="after")
    def _dates(self) -> ClientPackageSpec:
        if self.valid_for is not None:
            if "valid_until" in self.model_fields_set:
                raise ValueError("valid_for: write valid_for or valid_until, not both")
            if self.valid_from is None:
                raise ValueError("valid_for: needs valid_from (valid_until is computed from valid_from, never "
                                 "from today's date, so that it does not move from one plan to the next)")
            # Frozen: the computed date is set once, here, as validation's last step.
            try:
                until = add_period(self.valid_from, self.valid_for)
            except ValueError as e:
                raise ValueError(f"valid_for: {e}") from None
            object.__setattr__(self, "valid_until", until)
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError(
                f"valid_until: {self.valid_until} is before valid_from ({self.valid_from})"
            )
        if self.booking_credits:
            keys = [c.key for c in self.booking_credits]
            if len(set(keys)) != len(keys):
                raise ValueError("booking_credits: names the same package item twice")
        return self


class ClientPackage(Frozen):
    apiVersion: Literal["reconciler/v1"]
    kind: Literal["ClientPackage"]
    metadata: Metadata
    spec: ClientPackageSpec

    @cached_property
    def address(self) -> str:
        return addresses.client(self.metadata.name)


# --- ClientPackageSet --------------------------------------------------------------------------

#: The fields a set shares with its members and a member may override.
SHARED_FIELDS = ("valid_from", "valid_until", "valid_for", "price", "tax_uids", "matter_uid", "booking_credits",
                 "repeat_purchase")


#: A member's e-mail: as a client's, and without quotes, brackets or backslashes (it is part of
#: the member's address, ``client_package_set.NAME["alice@example.com"]``).
MEMBER_EMAIL_PATTERN = r'^[^@\s\[\]"\\]+@[^@\s\[\]"\\]+\.[^@\s\[\]"\\]+$'


def _set_client(value: Any) -> Any:
    return {"id": value} if isinstance(value, str) else value


def _one_end(self: Any) -> None:
    if self.valid_for is not None and self.valid_until is not None:
        raise ValueError("valid_for: write valid_for or valid_until, not both")


class SetClient(Frozen):
    """One client of a set: ``id`` or ``email`` (no quote, bracket or backslash, so that the
    member's address reads back), and the shared fields it overrides."""

    id: Uid | None = None
    email: Annotated[str, StringConstraints(pattern=MEMBER_EMAIL_PATTERN, max_length=254)] | None = None
    valid_from: ManifestDate | None = None
    valid_until: ManifestDate | None = None
    valid_for: ValidFor | None = None
    price: Money | None = None
    tax_uids: tuple[Uid, ...] | None = None
    matter_uid: Uid | None = None
    booking_credits: tuple[CreditOverride, ...] | None = None
    repeat_purchase: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SetClient:
        if (self.id is None) == (self.email is None):
            raise ValueError("write a client UID, or a mapping with exactly one of id: UID / email: ADDRESS")
        if self.email is not None:
            # The member's address must read back as one (the state refuses any other, and a
            # create is never sent without its record): no character Python counts as a space
            # or as unprintable (the pattern's \s misses \x1c-\x1f), and at most 254 characters
            # once in lower case ('İ' lowers to two).
            odd = next((c for c in self.email if c.isspace() or not c.isprintable()), None)
            if odd is not None:
                raise ValueError(f"email: holds the character {odd!r}, which a member's address cannot hold")
            if len(self.key) > 254:
                raise ValueError(f"email: {len(self.key)} characters in lower case, more than 254")
        _one_end(self)
        return self

    @property
    def key(self) -> str:
        """The member's key in its address: the client id, or the e-mail in lower case."""
        return self.id if self.id is not None else str(self.email).lower()


class ClientPackageSetSpec(Frozen):
    package: Annotated[
        PackageRef,
        BeforeValidator(_package_ref),
        WithJsonSchema(
            {"oneOf": [{"type": "string", "pattern": NAME_PATTERN}, PackageRef.model_json_schema()]}
        ),
    ]
    clients: tuple[Annotated[SetClient, BeforeValidator(_set_client)], ...]
    valid_from: ManifestDate | None = None
    valid_until: ManifestDate | None = None
    valid_for: ValidFor | None = None
    price: Money | None = None
    tax_uids: tuple[Uid, ...] | None = None
    matter_uid: Uid | None = None
    booking_credits: tuple[CreditOverride, ...] | None = None
    repeat_purchase: bool = False

    @model_validator(mode="after")
    def _end(self) -> ClientPackageSetSpec:
        _one_end(self)
        return self


class ClientPackageSet(Frozen):
    apiVersion: Literal["reconciler/v1"]
    kind: Literal["ClientPackageSet"]
    metadata: Metadata
    spec: ClientPackageSetSpec

    @cached_property
    def address(self) -> str:
        return addresses.client_set(self.metadata.name)


def member_address(set_name: str, key: str) -> str:
    """``client_package_set.NAME["KEY"]``: a set member's address, stable as long as its client is."""
    return f'client_package_set.{set_name}["{key}"]'


class SetMember(ClientPackage):
    """One client of a ClientPackageSet: a client package of its own, in state and in the plan,
    addressed by its client (``client_package_set.spring-piano["alice@example.com"]``)."""

    set_name: str
    key: str

    @cached_property
    def address(self) -> str:
        return member_address(self.set_name, self.key)


def set_member_spec(spec: ClientPackageSetSpec, member: SetClient) -> ClientPackageSpec:
    """The client package a set member stands for: the set's shared fields, each overridden by the
    member's own (a member's valid_until or valid_for replaces the set's end date, whichever the
    set wrote).  Raises pydantic's ValidationError when the result is not a valid client package."""
    values: dict[str, Any] = {"client": {"id": member.id} if member.id is not None else {"email": member.email},
                              "package": spec.package}
    for name in SHARED_FIELDS:
        if name in ("valid_until", "valid_for"):
            continue
        own = getattr(member, name)
        value = own if own is not None else getattr(spec, name)
        if value is not None:
            values[name] = value
    # The end date is the member's own when it writes one, else the set's (valid_for is computed
    # from the member's valid_from).
    end: SetClient | ClientPackageSetSpec = member if (member.valid_until, member.valid_for) != (None, None) else spec
    if end.valid_for is not None:
        values["valid_for"] = end.valid_for
    elif end.valid_until is not None:
        values["valid_until"] = end.valid_until
    return ClientPackageSpec.model_validate(values)


Document = Annotated[CatalogPackage | ClientPackage | ClientPackageSet | CatalogOrder, Field(discriminator="kind")]
DOCUMENT_ADAPTER: TypeAdapter[CatalogPackage | ClientPackage | ClientPackageSet | CatalogOrder] = TypeAdapter(Document)
KINDS = ("CatalogPackage", "ClientPackage", "ClientPackageSet", "CatalogOrder")


def document_json_schema() -> dict[str, Any]:
    """JSON Schema of one manifest document, for editors and validators (``reconciler.model.schema``)."""
    from reconciler.model.schema import manifest_schema

    return manifest_schema()
