"""What the planner knows of the remote business: normalised views of remote objects.

Built by the refresh from API answers (``from_catalog`` / ``from_client_package``), or from the
state file alone for ``--no-refresh`` (``from_state``); both carry the creates an interrupted run
left pending (the state's pending records), which the plan resolves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from reconciler.core.listlag import ListLag
from reconciler.model import address as addresses
from reconciler.model import views as nz
from reconciler.model.remote import RemoteCatalogPackage, RemoteClientPackage


class PendingLike(Protocol):
    """What the planner reads of a pending create (reconciler.state.store.PendingCreate)."""

    @property
    def id(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def details(self) -> dict[str, Any]: ...
    @property
    def opened_at(self) -> str: ...


@dataclass(frozen=True)
class RemoteObject:
    """A remote object as the planner sees it: its id and normalised full view."""

    id: str
    view: dict[str, Any]
    active: bool = True
    usage: dict[str, int] = field(default_factory=dict)  # client packages: credit key -> used
    credit_ids: dict[str, str] = field(default_factory=dict)
    #: client packages: the payment request it links to (the second memory checks the link back)
    payment_request_id: str | None = None


@dataclass(frozen=True)
class Discovered:
    """The second memory (API-NOTES §11): client packages vcita showed through the business's
    payment requests, each confirmed by its link back (``reconciler.refresh.second_memory``).  Presence
    is proof; absence is only evidence (the list may lag; a free package may open no request)."""

    packages: Mapping[str, RemoteObject] = field(default_factory=dict)  # by remote id
    #: client package id -> when its payment request was opened (ISO), when the list said
    opened_at: Mapping[str, str] = field(default_factory=dict)
    #: client id -> how its packages were searched (where, since when, what was ignored)
    searched: Mapping[str, str] = field(default_factory=dict)
    #: why the second memory could not be used on this target (None: it was)
    unavailable: str | None = None
    #: client id (None: unnamed) -> uids of its client-package payment requests that link back to
    #: no package (each may hide one: creates for that client are refused)
    doubtful: Mapping[str | None, tuple[str, ...]] = field(default_factory=dict)
    #: client id -> client packages the state tracks for it that the list did not name (it lags or
    #: leaves packages out: not finding one there proves nothing, so its creates are refused)
    unlisted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: clients whose packages a person checked in vcita (``--checked-client``): their creates go
    #: ahead despite ``doubtful`` and ``unlisted``, with a warning (a package found still refuses)
    checked: frozenset[str] = frozenset()
    #: client package id -> its name as vcita answered it (the catalog package's display name when it
    #: was sold): tells a sale of a catalog package the list does not show yet (``memory.sold_meanwhile``)
    names: Mapping[str, str] = field(default_factory=dict)

    def of_client(self, client_id: str) -> Sequence[RemoteObject]:
        """The packages found of client ``client_id`` (each create asks for its client's: scanning
        every package found, per create, made a plan quadratic in the business's size)."""
        return self._by_client.get(client_id, ())

    @cached_property
    def _by_client(self) -> dict[str, list[RemoteObject]]:
        out: dict[str, list[RemoteObject]] = {}
        for obj in self.packages.values():
            out.setdefault(str(obj.view.get("client_id")), []).append(obj)
        return out


@dataclass(frozen=True)
class Actual:
    """The refreshed remote state.  With ``refreshed=False`` the views come from state alone."""

    catalog_packages: Mapping[str, RemoteObject]  # by remote id (every package of the business)
    client_packages: Mapping[str, RemoteObject | None]  # by remote id; None = read, not found
    catalog_names: Mapping[str, str] = field(default_factory=dict)  # id -> remote name
    clients_by_email: Mapping[str, str | None] = field(default_factory=dict)  # lower email -> id
    #: lower e-mails several clients have -> their ids: a client written by one cannot be told
    shared_emails: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    service_ids: frozenset[str] | None = None  # None: not checked
    refreshed: bool = True
    #: creates an interrupted run left pending (the state's pending records)
    pending: Sequence[PendingLike] = ()
    #: why the services of catalog packages could not be checked (None: they were, or none needed)
    services_unchecked: str | None = None
    #: what a reviewer calls the ids the refresh read: services, clients found by e-mail, catalog
    #: packages (id -> label), from the lists it read anyway (no request of its own)
    names: Mapping[str, str] = field(default_factory=dict)
    #: client packages found through payment requests (None: not looked for)
    discovered: Discovered | None = None
    #: when the read of the catalog list that ``catalog_packages`` comes from started (UTC, ISO
    #: 8601; None: not read), and how long that list may hide a new package (reconciler.core.listlag)
    catalog_listed_at: str | None = None
    list_lag: ListLag = field(default_factory=ListLag)


def from_catalog(r: RemoteCatalogPackage) -> RemoteObject:
    return RemoteObject(id=r.id, view=nz.catalog_remote(r), active=r.active and not r.deleted_at)


def from_client_package(r: RemoteClientPackage) -> RemoteObject:
    return RemoteObject(
        id=r.id, view=nz.client_remote(r), active=r.active,
        usage=nz.client_usage(r), credit_ids=nz.client_credit_ids(r), payment_request_id=r.payment_request_id,
    )


def from_state(resources: Mapping[str, Any], pending: Sequence[PendingLike] = ()) -> Actual:
    """An Actual made of what state says was last applied (no remote reads: ``--no-refresh``)."""
    catalog: dict[str, RemoteObject] = {}
    clients: dict[str, RemoteObject | None] = {}
    for address, rs in resources.items():
        obj = RemoteObject(id=rs.id, view=dict(rs.applied),
                           credit_ids=dict(getattr(rs, "booking_credit_ids", {}) or {}))
        if addresses.is_catalog(address):
            catalog[rs.id] = obj
        else:
            clients[rs.id] = obj
    return Actual(catalog_packages=catalog, client_packages=clients, refreshed=False, pending=tuple(pending))
