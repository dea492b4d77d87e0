"""Operations: what a plan does, one small frozen class per kind.

A plan is a list of these (``reconciler.plan.document.Plan.operations``).  Each carries the desired
values once, in the model's own types (a :class:`CatalogPackageSpec`, a ``Decimal`` price, a
``date``), plus what a reviewer needs (the field changes, a reason, warnings) and what apply
checks first (the state it expects, the remote fingerprint it was planned against).  Nothing
here knows the wire: the remote layer describes each operation as :class:`Request` records
(``VcitaClient.describe``), through the same code that sends it, and the planner stores that
description in ``requests``.  The applier and every renderer dispatch on the class.

    CreateCatalogPackage   POST a new catalog package                       (action create)
    UpdateCatalogPackage   PUT the fields of a tracked one that differ      (update)
    AdoptCatalogPackage    track an untracked one found by name, and PUT    (import)
                           what differs
    CreateClientPackage    POST a client package; with ``replaces``, a new  (create / replace)
                           one for a tracked one that cannot change in place
    UpdateClientPackage    PUT valid_until and credit totals of one         (update)
    SetBookingCredits      set the credits of the client package just       (set_credits)
                           created, by package item (follows its create)
    ArchiveResource        an object gone from the manifests: archived by id (archive)
    MoveResource           a renamed object, matched by identity: its record (move)
                           moves to the new address, no request
    ReadoptArchived        an archived object matched by identity: tracked (readopt)
                           again, no request
    ResolvePendingCreate   settle a create an interrupted run left pending  (resolve)

An address may have several operations, applied in plan order (a resolution, then a create and
its credits); :meth:`reconciler.plan.document.Plan.chains` groups them.  Values known only once an earlier
operation of the same apply has run are references: :class:`IdOf` (the id of the object created
at an address) and :class:`CreditIdOf` (the id of one of its booking credits).  The applier
binds them from the state it has written (:meth:`Operation.bound`) before sending; a plan shows
them as ``(known after apply)``.

Adding a kind is local: a class here (in :data:`AnyOperation`), a call builder in
``remote/calls.py`` if it sends anything, a step in ``applier/steps.py``, a block in
``render/blocks.py``.

Over 400 lines on purpose: one small class per kind of operation, all in one place, so that adding a
kind starts here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import Field

from reconciler.model import address as addresses
from reconciler.model.manifest import CatalogPackageSpec, CreditOverride, credit_key
from reconciler.model.values import Money

Kind = Literal["CatalogPackage", "ClientPackage"]

#: How a value not known until apply is shown (the id of a package created earlier in the run).
KNOWN_AFTER_APPLY = "(known after apply)"


# --- values -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdOf:
    """The remote id of the object at ``address``: known once apply has created it."""

    id_of: str

    def __str__(self) -> str:
        return KNOWN_AFTER_APPLY


@dataclass(frozen=True)
class CreditIdOf:
    """The id of the booking credit that the package item ``services`` gave the client package at
    ``address``: known once apply has created it."""

    credits_of: str
    services: tuple[str, ...]

    def __str__(self) -> str:
        return KNOWN_AFTER_APPLY


@dataclass(frozen=True)
class CreditTotal:
    """A booking credit's new ``total_bookings``."""

    credit_id: str | CreditIdOf
    total_bookings: int


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: ``path`` in the manifest's terms, before (remote) and after (desired),
    as normalised view values (money as canonical decimal text, dates ISO)."""

    path: str
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class ExpectedState:
    """What the state must hold for an operation to apply: absent, or this id and fingerprint."""

    present: bool
    id: str | None = None
    fingerprint: str | None = None


ABSENT = ExpectedState(present=False)


@dataclass(frozen=True)
class Request:
    """One API call as the remote layer describes it at plan time: exactly what apply sends,
    except values known only after apply, which read ``(known after apply)``."""

    operation: str  # the route's name, e.g. "create_catalog_package"
    method: str
    path: str
    door: str = ""  # "gateway" | "fallback"; "" when planned without a client
    body: dict[str, Any] | None = None


class Record(Protocol):
    """What binding reads of a state entry (reconciler.state.store.ResourceState)."""

    id: str
    booking_credit_ids: dict[str, str]


class Unbound(Exception):
    """A reference could not be bound: what it names is not in the state."""


# --- the operations -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Operation:
    """What every operation has: the address it acts on, why, and what must hold first."""

    op: str
    address: str
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    #: addresses whose operations must all succeed first (a catalog package being created)
    depends_on: tuple[str, ...] = ()
    #: the state apply must find for this address (checked for the first operation of an address)
    expects: ExpectedState | None = None
    #: how the remote layer sends it (filled by the planner through ``VcitaClient.describe``)
    requests: tuple[Request, ...] = ()

    action: ClassVar[str] = ""

    @property
    def kind(self) -> Kind:
        return addresses.kind_of(self.address)

    @property
    def name(self) -> str:
        return self.address.split(".", 1)[1]

    @property
    def remote_ids(self) -> tuple[str, ...]:
        """The remote objects this operation acts on as they are now (for the staleness check)."""
        return ()

    def bound(self, records: Mapping[str, Record]) -> Operation:
        """This operation with every reference replaced by its value from ``records`` (the state
        apply has written so far); :class:`Unbound` when one is missing."""
        return self


@dataclass(frozen=True, kw_only=True)
class CreateCatalogPackage(Operation):
    op: Literal["create_catalog_package"] = "create_catalog_package"
    spec: CatalogPackageSpec

    action: ClassVar[str] = "create"


@dataclass(frozen=True, kw_only=True)
class UpdateCatalogPackage(Operation):
    op: Literal["update_catalog_package"] = "update_catalog_package"
    #: an IdOf when it follows the package's create (``active: false`` on a new package)
    remote_id: str | IdOf
    spec: CatalogPackageSpec
    #: the top-level fields to send: those that differ
    fields: tuple[str, ...]
    field_changes: tuple[FieldChange, ...] = ()
    remote_fingerprint: str | None = None

    action: ClassVar[str] = "update"

    @property
    def remote_ids(self) -> tuple[str, ...]:
        return (self.remote_id,) if isinstance(self.remote_id, str) else ()

    def bound(self, records: Mapping[str, Record]) -> UpdateCatalogPackage:
        if isinstance(self.remote_id, IdOf):
            return replace(self, remote_id=_id_of(self.remote_id.id_of, records))
        return self


@dataclass(frozen=True, kw_only=True)
class ReorderCatalogPackage(Operation):
    """Move a catalog package to ``order`` in the catalog's display order (the reorder route,
    with this package alone: the others keep their positions)."""

    op: Literal["reorder_catalog_package"] = "reorder_catalog_package"
    remote_id: str | IdOf
    order: int
    field_changes: tuple[FieldChange, ...] = ()
    remote_fingerprint: str | None = None

    action: ClassVar[str] = "update"

    @property
    def remote_ids(self) -> tuple[str, ...]:
        return (self.remote_id,) if isinstance(self.remote_id, str) else ()

    def bound(self, records: Mapping[str, Record]) -> ReorderCatalogPackage:
        if isinstance(self.remote_id, IdOf):
            return replace(self, remote_id=_id_of(self.remote_id.id_of, records))
        return self


@dataclass(frozen=True, kw_only=True)
class AdoptCatalogPackage(Operation):
    """Track an existing catalog package; update the fields that differ in the same request."""

    op: Literal["adopt_catalog_package"] = "adopt_catalog_package"
    remote_id: str
    spec: CatalogPackageSpec
    fields: tuple[str, ...] = ()
    field_changes: tuple[FieldChange, ...] = ()
    remote_fingerprint: str | None = None

    action: ClassVar[str] = "import"

    @property
    def remote_ids(self) -> tuple[str, ...]:
        return (self.remote_id,)


@dataclass(frozen=True, kw_only=True)
class CreateClientPackage(Operation):
    """Assign a catalog package to a client (opens a payment request).  Optional values left out
    (None) are not sent."""

    op: Literal["create_client_package"] = "create_client_package"
    client_id: str
    package_id: str | IdOf
    valid_from: date | None = None
    valid_until: date | None = None
    price: Money | None = None
    tax_uids: tuple[str, ...] | None = None
    matter_uid: str | None = None
    #: a replacement: the id of the tracked client package it replaces (which stays in vcita)
    replaces: str | None = None
    field_changes: tuple[FieldChange, ...] = ()
    remote_fingerprint: str | None = None
    #: why apply refuses it as planned (a replacement planned without --allow-replace)
    blocked: str | None = None

    @property
    def action(self) -> str:  # type: ignore[override]
        return "replace" if self.replaces else "create"

    @property
    def remote_ids(self) -> tuple[str, ...]:
        return (self.replaces,) if self.replaces else ()

    def bound(self, records: Mapping[str, Record]) -> CreateClientPackage:
        if isinstance(self.package_id, IdOf):
            return replace(self, package_id=_id_of(self.package_id.id_of, records))
        return self


@dataclass(frozen=True, kw_only=True)
class UpdateClientPackage(Operation):
    """Change ``valid_until`` and credit totals, the only fields the API changes in place."""

    op: Literal["update_client_package"] = "update_client_package"
    remote_id: str | IdOf
    valid_until: date | None = None
    credits: tuple[CreditTotal, ...] = ()
    field_changes: tuple[FieldChange, ...] = ()
    remote_fingerprint: str | None = None

    action: ClassVar[str] = "update"

    @property
    def remote_ids(self) -> tuple[str, ...]:
        return (self.remote_id,) if isinstance(self.remote_id, str) else ()

    def bound(self, records: Mapping[str, Record]) -> UpdateClientPackage:
        rid = self.remote_id if isinstance(self.remote_id, str) else _id_of(self.remote_id.id_of, records)
        missing = [c.credit_id.services for c in self.credits if isinstance(c.credit_id, CreditIdOf)
                   and credit_key(c.credit_id.services) not in _credit_ids(c.credit_id.credits_of, records)]
        if missing:
            raise Unbound(f"client package {rid} has no booking credit for services "
                          f"{[list(s) for s in missing]}")
        credits = tuple(
            c if isinstance(c.credit_id, str) else CreditTotal(
                _credit_ids(c.credit_id.credits_of, records)[credit_key(c.credit_id.services)], c.total_bookings)
            for c in self.credits)
        return replace(self, remote_id=rid, credits=credits)


@dataclass(frozen=True, kw_only=True)
class SetBookingCredits(Operation):
    """Set the credit totals of the client package created just before at the same address: its
    credits come from the package's items, and the manifest overrides them by item."""

    op: Literal["set_booking_credits"] = "set_booking_credits"
    credits: tuple[CreditOverride, ...]

    action: ClassVar[str] = "set_credits"

    def as_update(self) -> UpdateClientPackage:
        """The update that sets these credits, with the ids still to be bound."""
        return UpdateClientPackage(
            address=self.address, remote_id=IdOf(self.address),
            credits=tuple(CreditTotal(CreditIdOf(self.address, tuple(sorted(c.services))), c.total_bookings)
                          for c in self.credits))

    def bound(self, records: Mapping[str, Record]) -> UpdateClientPackage:
        return self.as_update().bound(records)


@dataclass(frozen=True, kw_only=True)
class ArchiveResource(Operation):
    """An object gone from the manifests: no longer tracked by address, but kept in the state's
    archived records by id (it stays in vcita: no delete exists), so that a manifest object of the
    same identity is re-adopted later instead of created again."""

    op: Literal["archive"] = "archive"
    remote_id: str

    action: ClassVar[str] = "archive"


@dataclass(frozen=True, kw_only=True)
class MoveResource(Operation):
    """A renamed manifest object: the record tracked at ``from_address`` moves to ``address``
    (matched by identity); no request is sent."""

    op: Literal["move"] = "move"
    from_address: str
    remote_id: str

    action: ClassVar[str] = "move"


@dataclass(frozen=True, kw_only=True)
class ReadoptArchived(Operation):
    """A manifest object whose identity matches an archived record: tracked again at ``address``
    (no request; its fields are compared by the next plan, which reads it)."""

    op: Literal["readopt"] = "readopt"
    remote_id: str
    archived_address: str

    action: ClassVar[str] = "readopt"


Resolution = Literal["created", "adopt", "not_created", "unknown"]


@dataclass(frozen=True, kw_only=True)
class ResolvePendingCreate(Operation):
    """Settle a create that an interrupted run left pending (a pending record of the state).

    ``created``: the state records it already (``remote_id``); the pending record is dropped.
    ``adopt``: it reached vcita (``remote_id``: a catalog package found by name, a client package
    through its payment request) and is tracked now.
    ``not_created``: it never reached vcita; the create that follows sends it again.  Concluded
    from a list read at ``listed_at``, which must not be before ``settled_at`` (from then on the
    list cannot be hiding it: ``reconciler.core.listlag``); apply refuses it otherwise.
    ``unknown``: its outcome cannot be known here; apply leaves the address alone until a person
    imports or forgets it (``reason`` says how).
    """

    op: Literal["resolve_pending_create"] = "resolve_pending_create"
    intent_id: str
    opened_at: str
    details: dict[str, Any]
    resolution: Resolution
    remote_id: str | None = None
    remote_fingerprint: str | None = None
    listed_at: str | None = None
    settled_at: str | None = None

    action: ClassVar[str] = "resolve"

    @property
    def remote_ids(self) -> tuple[str, ...]:
        return (self.remote_id,) if self.resolution == "adopt" and self.remote_id else ()


#: Every kind, as one type (for the planner's lists) ...
OperationKind = (CreateCatalogPackage | UpdateCatalogPackage | ReorderCatalogPackage | AdoptCatalogPackage
                 | CreateClientPackage
                 | UpdateClientPackage | SetBookingCredits | ArchiveResource | MoveResource | ReadoptArchived
                 | ResolvePendingCreate)
#: ... and as the plan's JSON reads it: chosen by ``op``.
AnyOperation = Annotated[OperationKind, Field(discriminator="op")]


def _id_of(address: str, records: Mapping[str, Record]) -> str:
    rec = records.get(address)
    if rec is None:
        raise Unbound(f"{address} has no id in state (it was not created)")
    return rec.id


def _credit_ids(address: str, records: Mapping[str, Record]) -> dict[str, str]:
    rec = records.get(address)
    if rec is None:
        raise Unbound(f"{address} has no id in state (it was not created)")
    return dict(rec.booking_credit_ids)
