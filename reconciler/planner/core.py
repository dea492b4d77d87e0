"""The planner: a pure function ``(desired, state, actual, remote) -> Plan``.  No I/O, no clock.

Key sets first (create / update / import / forget / no-op), then field-level differences, then
the business rules a reviewer should see before anything runs: credits below usage, validity in
the past, fields the API cannot change in place (``replace required``), references that do not
resolve.  Creates an interrupted run left pending are resolved first (``pending.py``).  Each
operation is built once, with its values in the model's types, and described by ``remote`` (the
client's description: method, path, door, body; and whether this target can send it at all) as
it is added, so the plan is complete and validated when it is made.

Over 400 lines on purpose: ``_Builder`` is one pass over desired, state and actual whose steps share
its bookkeeping (ids taken, names, what is pending); what needs none of it is in its own module
(``diff``, ``identity``, ``memory``, ``payments``, ``pending``, ``rules``).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Protocol

from reconciler.model import address as addresses
from reconciler.model import views as nz
from reconciler.model.manifest import CatalogPackage, ClientPackage
from reconciler.model.manifest_set import ManifestSet
from reconciler.plan.document import Plan, PlanTarget, Problem, Unmanaged, fingerprint
from reconciler.plan.operations import (
    ABSENT,
    KNOWN_AFTER_APPLY,
    AdoptCatalogPackage,
    ArchiveResource,
    CreateCatalogPackage,
    CreateClientPackage,
    CreditTotal,
    ExpectedState,
    FieldChange,
    IdOf,
    MoveResource,
    Operation,
    OperationKind,
    ReadoptArchived,
    ReorderCatalogPackage,
    Request,
    ResolvePendingCreate,
    SetBookingCredits,
    UpdateCatalogPackage,
    UpdateClientPackage,
)
from reconciler.planner import identity as ident
from reconciler.planner import memory, payments, rules, siblings
from reconciler.planner import pending as pend
from reconciler.planner.actual import Actual, RemoteObject
from reconciler.planner.diff import field_changes

CATALOG_PREFIX = addresses.CATALOG


class Remote(Protocol):
    """What the planner asks the remote side (``refresh.PlanningRemote``; ``remote.calls.Offline``
    for a plan without a client)."""

    def describe(self, op: Operation) -> tuple[Request, ...]:
        """How ``op`` is sent: method, path, door, body."""
        ...

    def refusal(self, op: Operation, requests: tuple[Request, ...]) -> Problem | None:
        """The plan error when this target cannot send ``requests`` (None: it can)."""
        ...


class TrackedLike(Protocol):
    """What the planner reads of a state entry (reconciler.state.store.ResourceState)."""

    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def applied(self) -> dict[str, Any]: ...


#: stands for ``_present(tracked)`` until an operation needs it
_PRESENT = ExpectedState(present=True, id="(tracked)")


def _present(tracked: TrackedLike) -> ExpectedState:
    return ExpectedState(present=True, id=tracked.id, fingerprint=tracked.fingerprint)


class ArchivedLike(Protocol):
    """What the planner reads of an archived record (reconciler.state.store.ArchivedResource)."""

    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def identity(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PlanOptions:
    target: PlanTarget
    today: date
    created_at: str
    state_lineage: str
    state_serial: int
    allow_replace: bool = False
    #: the state's archived records, by remote id (objects that left the manifests)
    archived: Mapping[str, ArchivedLike] = field(default_factory=dict)
    #: the manifests given are a part of what the state tracks (some paths, --only): nothing
    #: outside them is archived, and nothing inside may take over a record from outside
    partial: bool = False
    #: refuse client-package creates when the state does not know the business's history (a
    #: declared catalog package exists in vcita untracked); off for the embedded sandbox and
    #: with --confirm-no-prior-client-packages
    history_guard: bool = False
    #: the most payment requests the plan may open (None: no limit)
    max_payment_requests: int | None = None


def plan(desired: ManifestSet, state: Mapping[str, TrackedLike], actual: Actual, opts: PlanOptions,
         remote: Remote) -> Plan:
    """Compute the plan that takes the remote business from ``actual`` to ``desired``."""
    # Planning allocates many small acyclic objects; the cyclic collector would walk the whole
    # heap again and again for nothing (it doubled the time at 100,000).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        b = _Builder(desired, state, actual, opts, remote)
        b.catalog()
        b.clients()
        b.second_sales()
        b.forgotten()
        b.leftover_pending()
        b.finish_problems()
        money = payments.summarise(b.ops, desired, actual, opts.max_payment_requests,
                                   {rid: a for a, rid in b.package_ids.items() if rid != KNOWN_AFTER_APPLY})
        b.problems += payments.limit_problems(money)
        b.problems += b.history_problems()
        b.problems += memory.unavailable_warning(b.ops, actual.discovered)
        b.problems += _renamed_catalog_warnings(b.ops, state)
        return Plan(
            created_at=opts.created_at, target=opts.target, manifest_digest=desired.digest(),
            state_lineage=opts.state_lineage, state_serial=opts.state_serial, refreshed=actual.refreshed,
            allow_replace=opts.allow_replace, operations=tuple(b.ops), unmanaged=tuple(b.unmanaged()),
            problems=tuple(b.problems), noop_count=b.noops, payment_requests=money,
            out_of_scope=b.out_of_scope, names=_names(b.ops, actual.names, b.subjects),
            subjects=_subjects(b.ops, b.subjects, state),
        )
    finally:
        if gc_was_enabled:
            gc.enable()


class _Repeats:
    """The addresses of the client-package objects that declare ``repeat_purchase`` (asked of a
    few addresses per plan: reading every object's spec up front cost 0.1 s at 100,000)."""

    def __init__(self, docs: Mapping[str, ClientPackage]) -> None:
        self.docs = docs

    def __contains__(self, address: object) -> bool:
        doc = self.docs.get(address) if isinstance(address, str) else None
        return doc is not None and doc.spec.repeat_purchase


class _AnyOf:
    """Membership in any of several collections, without building their union (once per create
    over every tracked id made a plan of 100,000 resources quadratic: 3 s -> 40 s)."""

    def __init__(self, *parts: Container[str]) -> None:
        self.parts = parts

    def __contains__(self, item: object) -> bool:
        return any(item in part for part in self.parts)


#: The tracked records (address, record) and the archived records by identity key (``identity.key``).
_Identities = tuple[dict[tuple[Any, ...], list[tuple[str, Any]]], dict[tuple[Any, ...], list[Any]]]


class _Builder:
    def __init__(self, desired: ManifestSet, state: Mapping[str, TrackedLike], actual: Actual,
                 opts: PlanOptions, remote: Remote) -> None:
        self.d = desired
        self.state = state
        self.a = actual
        self.o = opts
        self.remote = remote
        self.ops: list[OperationKind] = []
        self.problems: list[Problem] = []
        self.refusals: list[Problem] = []  # operations this target cannot send (listed last)
        self.noops = 0
        self.today = opts.today.isoformat()
        # catalog address -> remote id (or KNOWN_AFTER_APPLY) for client packages to reference
        self.package_ids: dict[str, str] = {}
        self.creating: set[str] = set()
        self.claimed: set[str] = set()  # remote catalog ids owned by a manifest
        self.owned = {t.id for t in state.values()}
        by_name: dict[str, list[str]] = {}
        for rid, obj in actual.catalog_packages.items():
            by_name.setdefault(obj.view.get("name", ""), []).append(rid)
        self.by_name = by_name
        self.pending: dict[str, list[Any]] = {}
        for it in actual.pending:
            self.pending.setdefault(it.address, []).append(it)
        # addresses apply leaves alone (a pending create of unknown outcome): planned, not added
        self.held: set[str] = set()
        # Each pass over 100,000 documents costs ~0.05 s in memory reads alone: the client
        # packages are read once here, by address (the second-sale rule reads them again by it).
        self.client_docs = {d.address: d for d in desired.client_packages.values()}
        self.wanted = {d.address for d in desired.catalog_packages.values()}
        self.wanted.update(self.client_docs)
        # Records of objects whose manifests are gone (a full plan only): a new manifest object of
        # the same identity takes one over (a rename) instead of being created.
        self.leaving = {} if opts.partial else {a: t for a, t in state.items() if a not in self.wanted}
        self.moved_from: set[str] = set()
        self.readopted: dict[str, str] = {}  # address -> the archived record's id it tracks again
        self.out_of_scope = sum(1 for a in state if a not in self.wanted) if opts.partial else 0
        self.found_in_vcita: list[str] = []  # creates refused: the second memory shows them in vcita
        self._by_identity: _Identities | None = None
        self._staying: set[str] | None = None
        self.new_catalog_names: dict[str, str] = {}  # display name -> the address that adopts or creates it
        self._subjects_by_id: dict[str, tuple[Any, Any]] | None = None
        # client package address -> (client id, catalog package id or address): what a rendering
        # groups changes by (a client, a catalog package)
        self.subjects: dict[str, tuple[str, str]] = {}
        # the second-sale rule between manifest objects (``siblings``): the new client-package
        # objects of this plan, and the sales it cannot refuse (take-overs, creates of unknown outcome)
        self.repeats = _Repeats(self.client_docs)
        self.new: list[siblings.NewObject] = []
        self.kept: list[siblings.NewObject] = []

    def add(self, op: OperationKind) -> None:
        if op.address in self.held and not isinstance(op, ResolvePendingCreate):
            return
        requests = self.remote.describe(op)
        refused = self.remote.refusal(op, requests) if requests else None
        if refused is not None:
            self.refusals.append(refused)
        self.ops.append(replace(op, requests=requests))

    def finish_problems(self) -> None:
        self.problems += self.refusals
        catalog = self.d.catalog_packages or any(a.startswith(CATALOG_PREFIX) for a in self.state)
        if self.a.services_unchecked and catalog:
            self.problems.append(Problem(address="target", severity="warning", message=self.a.services_unchecked))

    # --- pending creates ----------------------------------------------------------------------

    def resolve_pending(self, address: str) -> RemoteObject | None:
        """Add the resolutions of ``address``'s pending creates; the catalog package adopted, if any."""
        adopted = None
        for it in self.pending.pop(address, ()):
            same = self._identities()[0].get(ident.key("ClientPackage", it.details), ()) \
                if it.kind == "ClientPackage" else ()
            elsewhere = [(a, t) for a, t in same if a != address]
            op = pend.resolve(it, self.state.get(address), self.a, self.owned | self.claimed, self.by_name,
                              in_manifests=address in self.wanted, elsewhere=elsewhere)
            self.add(op)
            if op.resolution == "unknown":
                self.held.add(address)
            elif op.resolution == "adopt" and op.remote_id:
                self.claimed.add(op.remote_id)
                found = self.a.catalog_packages if it.kind == "CatalogPackage" else (
                    self.a.discovered.packages if self.a.discovered is not None else {})
                adopted = found[op.remote_id]
        return adopted

    def leftover_pending(self) -> None:
        for address in sorted(self.pending):
            self.resolve_pending(address)

    # --- catalog packages ---------------------------------------------------------------------

    def catalog(self) -> None:
        for name, doc in self.d.catalog_packages.items():
            self._catalog_one(name, doc)

    def _catalog_one(self, name: str, doc: CatalogPackage) -> None:
        address = doc.address
        want = nz.catalog_desired(doc.spec)
        self.problems += rules.service_problems(address, doc, self.a.service_ids)
        adopted = self.resolve_pending(address)
        tracked = self.state.get(address)
        if adopted is not None:
            self.package_ids[address] = adopted.id
            self._catalog_tracked(address, doc, want, adopted, expects=None)
            return
        if tracked is None:
            self._catalog_untracked(address, doc, want)
            return
        self.claimed.add(tracked.id)
        self.package_ids[address] = tracked.id
        obj = self.a.catalog_packages.get(tracked.id)
        if obj is None:
            self._vanished(address, tracked.id, "CatalogPackage")
            return
        self._catalog_tracked(address, doc, want, obj, expects=_present(tracked))

    def _catalog_untracked(self, address: str, doc: CatalogPackage, want: dict[str, Any]) -> None:
        # Two untracked manifests of one display name: one takes the package (created, adopted, or a
        # record taken over by a rename), the other would make a second one vcita lists alike and
        # every later re-adoption cannot tell apart (client packages of each: two sales of "Piano").
        first = self.new_catalog_names.setdefault(doc.spec.name, address)
        if first != address:
            self.problems.append(Problem(
                address=address, severity="error",
                message=f"{first} declares the same display name {doc.spec.name!r}, and neither is tracked yet: "
                        "two manifests of one catalog package; the second would create another package of that "
                        "name, which vcita lists alike and reconciler re-adopts by name (client packages of each "
                        "would be two sales of one package)",
                hint=f"Keep one manifest of this package and point its client packages at "
                     f"{first.split('.', 1)[1]}, or give this one another display name.",
            ))
            return
        moved = self._take_over(address, "CatalogPackage", {"name": doc.spec.name})
        if moved is ident.REFUSED:  # the problem says why; its client packages are not planned
            return
        if moved is not None:
            self.claimed.add(moved.id)
            self.package_ids[address] = moved.id
            obj = self.a.catalog_packages.get(moved.id)
            if obj is not None:
                self._catalog_tracked(address, doc, want, obj, expects=None)
            return
        if address in self.readopted:  # an archived record tracked again: its fields are the next plan's
            self.claimed.add(self.readopted[address])
            self.package_ids[address] = self.readopted[address]
            return
        # a package tracked at another address that stays (in the manifests, or outside a partial
        # plan) is that address's: never adopted a second time
        candidates = [rid for rid in self.by_name.get(doc.spec.name, [])
                      if rid not in self.claimed and rid not in self._staying_ids()]
        if len(candidates) > 1:
            self.problems.append(Problem(
                address=address, severity="error",
                message=f"{len(candidates)} remote catalog packages are named {doc.spec.name!r} "
                        f"({', '.join(sorted(candidates))}); cannot tell which one to adopt",
                hint=f"Adopt one explicitly: reconciler import {address} ID",
            ))
            return
        if candidates:
            rid = candidates[0]
            self.claimed.add(rid)
            obj = self.a.catalog_packages[rid]
            fcs, order = _split_order(field_changes(nz.managed_part(obj.view, want), want))
            self.package_ids[address] = rid
            self.add(AdoptCatalogPackage(
                address=address, remote_id=rid, spec=doc.spec, fields=_top_fields(fcs), field_changes=fcs,
                remote_fingerprint=fingerprint(obj.view), expects=ABSENT,
                reason=f"a remote catalog package named {doc.spec.name!r} exists and is not tracked: "
                       "adopt it" + (" and update it" if fcs else ""),
                warnings=self._assigned_warning(fcs),
            ))
            self._reorder(address, rid, doc, order, None)
            return
        self.package_ids[address] = KNOWN_AFTER_APPLY
        self.creating.add(address)
        self.add(CreateCatalogPackage(address=address, spec=doc.spec, expects=ABSENT))
        if doc.spec.active is False:  # the create route documents no `active`: an update follows
            self.add(UpdateCatalogPackage(address=address, remote_id=IdOf(address), spec=doc.spec, fields=("active",),
                                          field_changes=(FieldChange("active", True, False),),
                                          reason="created active (the create route has no active field), then "
                                                 "deactivated"))
        if doc.spec.order is not None:
            self._reorder(address, IdOf(address), doc, (FieldChange("order", None, doc.spec.order),), None)

    def _catalog_tracked(self, address: str, doc: CatalogPackage, want: dict[str, Any], obj: RemoteObject,
                         expects: ExpectedState | None) -> None:
        fcs, order = _split_order(field_changes(nz.managed_part(obj.view, want), want))
        warnings: tuple[str, ...] = ()
        if not obj.active and doc.spec.active is not False:
            warnings = ("this catalog package is deactivated in vcita; new client packages cannot use it",)
        if not fcs and not order:
            self.noops += expects is not None  # an adopted package is its resolution's operation
            return
        if fcs:
            self.add(UpdateCatalogPackage(
                address=address, remote_id=obj.id, spec=doc.spec, fields=_top_fields(fcs), field_changes=fcs,
                remote_fingerprint=fingerprint(obj.view), expects=expects,
                warnings=warnings + self._assigned_warning(fcs),
            ))
            expects = None  # checked by the address's first operation
        self._reorder(address, obj.id, doc, order, expects, fingerprint(obj.view))

    def _reorder(self, address: str, rid: str | IdOf, doc: CatalogPackage, order: tuple[FieldChange, ...],
                 expects: ExpectedState | None, remote_fingerprint: str | None = None) -> None:
        if order and doc.spec.order is not None:
            self.add(ReorderCatalogPackage(address=address, remote_id=rid, order=doc.spec.order, field_changes=order,
                                           remote_fingerprint=remote_fingerprint, expects=expects))

    def _assigned_warning(self, fcs: tuple[FieldChange, ...]) -> tuple[str, ...]:
        if not [fc for fc in fcs if fc.path != "active"]:
            return ()
        return (("client packages already assigned keep their old terms: vcita does not propagate "
                 "catalog changes to them"),)

    # --- client packages ----------------------------------------------------------------------

    def clients(self) -> None:
        for name, doc in self.d.client_packages.items():
            self._client_one(name, doc)

    def _resolve_client(self, address: str, doc: ClientPackage) -> str | None:
        ref = doc.spec.client
        if ref.id is not None:
            return ref.id
        email = (ref.email or "").lower()
        if email not in self.a.clients_by_email:
            if not self.a.refreshed:
                # Without a refresh, the client last applied for this address is the best answer.
                tracked = self.state.get(address)
                applied = tracked.applied.get("client_id") if tracked is not None else None
                return str(applied) if applied else f"(client {ref.email})"
            self.problems.append(Problem(address=address, severity="error",
                                         message=f"spec.client: client e-mail {ref.email!r} was not looked up"))
            return None
        cid = self.a.clients_by_email[email]
        shared = self.a.shared_emails.get(email)
        if shared:
            self.problems.append(Problem(
                address=address, severity="error",
                message=(f"spec.client: {len(shared)} clients of this business have the e-mail {ref.email!r} "
                         f"({', '.join(shared)}): which one this object is for cannot be told (the API's first "
                         "may change), and a client package created for the other would bill the wrong client"),
                hint="Write the client's UID (client: UID), or give each client its own e-mail in vcita.",
            ))
            return None
        if cid is None:
            tracked = self.state.get(address)
            held = tracked.applied.get("client_id") if tracked is not None else None
            self.problems.append(Problem(
                address=address, severity="error",
                message=f"spec.client: no client with e-mail {ref.email!r} in this business",
                hint=(f"{address} tracks {tracked.id}, sold to client {held}: if that client's e-mail changed in "
                      f"vcita, write its new e-mail or its UID ({held}): nothing is sold again."
                      if tracked is not None and held else "Create the client in vcita first, or write its UID."),
            ))
        return cid

    def _resolve_package(self, address: str, doc: ClientPackage) -> tuple[str | None, tuple[str, ...]]:
        ref = doc.spec.package
        if ref.name is not None:
            cat_address = CATALOG_PREFIX + ref.name
            pid = self.package_ids.get(cat_address)
            deps = (cat_address,) if cat_address in self.creating else ()
            return pid, deps
        pid = ref.id
        obj = self.a.catalog_packages.get(pid or "")
        if self.a.refreshed and obj is None:
            self.problems.append(Problem(
                address=address, severity="error",
                message=f"spec.package: no catalog package with id {pid!r} in this business",
            ))
            return None, ()
        return pid, ()

    def _client_one(self, name: str, doc: ClientPackage) -> None:
        address = doc.address
        adopted = self.resolve_pending(address)  # found through the second memory
        cid = self._resolve_client(address, doc)
        pid, deps = self._resolve_package(address, doc)
        if cid is None or pid is None:
            return
        want = nz.client_desired(doc.spec, cid, pid)
        self.subjects[address] = (cid, CATALOG_PREFIX + str(doc.spec.package.name) if pid == KNOWN_AFTER_APPLY else pid)
        # An adopted pending create is what the address tracks once it is resolved: over a tracked
        # record, an interrupted replacement (its package replaces the tracked one, archived then).
        tracked: Any = adopted or self.state.get(address)
        today = self.today
        self.problems += rules.package_problems(address, pid, self.a.catalog_packages)
        if tracked is None and address not in self.held and pid != KNOWN_AFTER_APPLY:
            moved = self._take_over(address, "ClientPackage", ident.desired_client(doc.spec, cid, pid),
                                    repeat=doc.spec.repeat_purchase)
            if moved is ident.REFUSED or address in self.readopted:
                return
            if moved is not None:
                tracked = moved
                expects_now: ExpectedState | None = None
            else:
                expects_now = ABSENT
        else:
            # what apply checks first; built once an operation needs it (most objects plan none)
            expects_now = ABSENT if tracked is None else None if tracked is adopted else _PRESENT
        if tracked is None:
            new = siblings.NewObject(address, self.subjects[address],
                                     ident.desired_client(doc.spec, *self.subjects[address]), doc.spec.repeat_purchase)
            if address in self.held:  # it may exist: the sale, unless it is a repeat
                if not new.repeat:
                    self.kept.append(replace(new, note="whose earlier create's outcome is unknown"))
            else:
                self.new.append(new)
            known = memory.already_in_vcita(address, doc.spec, cid, pid, self.a.discovered,
                                            _AnyOf(self.owned, self.claimed, self.o.archived))
            if known is None and pid == KNOWN_AFTER_APPLY:
                known = self._sold_meanwhile(address, doc, cid)
            if known is not None:
                self.problems.append(known)
                self.found_in_vcita.append(address)
                return
            self.problems += memory.checked_warning(address, cid, self.a.discovered)
            self.problems += rules.client_problems(address, want, None, today, creating=True,
                                                   refreshed=self.a.refreshed)
            self._client_create(address, doc, cid, pid, deps, expects=ABSENT)
            return
        obj = adopted if tracked is adopted else self.a.client_packages.get(tracked.id)
        if obj is None:
            self._vanished(address, tracked.id, "ClientPackage")
            return
        before = nz.managed_part(obj.view, want)
        fcs = field_changes(before, want)
        if not fcs:
            self.noops += 1
            return
        replace_fcs = [fc for fc in fcs if fc.path.split("[", 1)[0] in nz.REPLACE_FIELDS]
        if replace_fcs:
            fields = ", ".join(fc.path for fc in replace_fcs)
            if pid != KNOWN_AFTER_APPLY:  # a replacement is a sale too: never one vcita has already
                declared = ident.desired_client(doc.spec, cid, pid)
                earlier = [] if doc.spec.repeat_purchase else self._archived_as(declared)
                if earlier:
                    self.problems.append(ident.replacement_refused(address, tracked.id, declared, earlier))
                    return
                held = self._held_by_client(declared, replace_fcs) if not doc.spec.repeat_purchase else []
                if held:  # a sale to a client who still holds an archived package of it (other terms)
                    self.problems.append(ident.reassigned_refused(address, tracked.id, declared, held))
                    return
                known = memory.already_in_vcita(address, doc.spec, cid, pid, self.a.discovered,
                                                _AnyOf(self.owned, self.claimed, self.o.archived), replaces=tracked.id)
                if known is not None:
                    self.problems.append(known)
                    self.found_in_vcita.append(address)
                    return
            else:  # onto a catalog package this plan creates: sold to the client moments ago by another run?
                known = self._sold_meanwhile(address, doc, cid)
                if known is not None:
                    self.problems.append(known)
                    self.found_in_vcita.append(address)
                    return
            sale = siblings.NewObject(address, self.subjects[address],
                                      ident.desired_client(doc.spec, *self.subjects[address]), doc.spec.repeat_purchase)
            if any(fc.path in ("client_id", "package_id") for fc in replace_fcs):
                # a package for another client (an e-mail that now names another client) or of another
                # catalog package: a new sale, refused beside one that client already holds
                self.new.append(replace(sale, replaces=tracked.id))
            elif not doc.spec.repeat_purchase:  # the same sale on new terms: the sale of its identity
                self.kept.append(replace(sale, note=f"which replaces {tracked.id} with a new client package in "
                                                    "this plan"))
            self.problems += rules.client_problems(address, want, obj, today, creating=True, refreshed=self.a.refreshed)
            self._client_create(
                address, doc, cid, pid, deps, expects=_present(tracked) if expects_now is _PRESENT else expects_now,
                replaces=tracked.id, field_changes=fcs,
                remote_fingerprint=fingerprint(obj.view),
                reason=(f"{fields} cannot change in place: a new client package is created, which opens a "
                        f"new payment request for the client; the old one ({tracked.id}) stays in vcita"),
                warnings=(f"cancel or waive the old client package {tracked.id} and its payment request "
                          "in vcita by hand",),
                blocked=None if self.o.allow_replace else
                f"replace required ({fields}); re-run with --allow-replace to accept it",
            )
            return
        self.problems += rules.client_problems(address, want, obj, today, creating=False, refreshed=self.a.refreshed)
        changed_until = "valid_until" in want and want["valid_until"] != before.get("valid_until")
        valid_until = doc.spec.valid_until if changed_until else None
        credits = tuple(CreditTotal(obj.credit_ids[key], total)
                        for key, total in (want.get("booking_credits") or {}).items()
                        if before.get("booking_credits", {}).get(key) != total and key in obj.credit_ids)
        self.add(UpdateClientPackage(
            address=address, remote_id=tracked.id, valid_until=valid_until, credits=credits, field_changes=fcs,
            remote_fingerprint=fingerprint(obj.view), depends_on=deps,
            expects=_present(tracked) if expects_now is _PRESENT else expects_now,
        ))

    def _sold_meanwhile(self, address: str, doc: ClientPackage, cid: str) -> Problem | None:
        """A sale to ``cid``, moments ago, of the catalog package this plan creates for ``doc``
        (another run's, hidden by the list's lag): see :func:`memory.sold_meanwhile`."""
        catalog = self.d.catalog_packages.get(doc.spec.package.name or "")
        if catalog is None or self.a.discovered is None:
            return None
        lag = self.a.list_lag
        return memory.sold_meanwhile(address, cid, catalog.address, catalog.spec.name, self.a.discovered,
                                     _AnyOf(self.owned, self.claimed, self.o.archived), self.a.catalog_packages,
                                     memory.moment(self.o.created_at), timedelta(seconds=lag.lag + lag.skew + 1))

    def _client_create(self, address: str, doc: ClientPackage, cid: str, pid: str, deps: tuple[str, ...], *,
                       expects: ExpectedState | None, replaces: str | None = None, **extra: Any) -> None:
        spec = doc.spec
        catalog = self.d.catalog_packages.get(spec.package.name or "")
        if catalog is not None and catalog.spec.active is False:
            self.problems.append(Problem(
                address=address, severity="error",
                message=f"spec.package: {catalog.address} is declared active: false; vcita refuses new "
                        "assignments of a deactivated package",
                hint="Assign another package, or leave active out (or true) until the client has it."))
        package_id: str | IdOf = IdOf(CATALOG_PREFIX + str(spec.package.name)) if pid == KNOWN_AFTER_APPLY else pid
        if replaces is None:
            extra["warnings"] = ("creating a client package opens a payment request for the client",)
        self.add(CreateClientPackage(
            address=address, client_id=cid, package_id=package_id, valid_from=spec.valid_from,
            valid_until=spec.valid_until, price=spec.price, tax_uids=spec.tax_uids, matter_uid=spec.matter_uid,
            replaces=replaces, depends_on=deps, expects=expects, **extra,
        ))
        if spec.booking_credits:
            # Credits are created from the package's items; the manifest's totals are set right after.
            self.add(SetBookingCredits(address=address, credits=spec.booking_credits))

    # --- shared ---------------------------------------------------------------------------------

    def _vanished(self, address: str, rid: str, kind: str) -> None:
        self.problems.append(Problem(
            address=address, severity="error",
            message=f"{kind} {rid} is tracked in state but no longer exists in vcita; "
                    "it will not be re-created silently",
            hint=f"If it was removed on purpose, stop tracking it with 'reconciler state rm {address}', "
                 "then plan again to create a new one.",
        ))

    def forgotten(self) -> None:
        if self.o.partial:  # objects outside the given paths are neither archived nor forgotten
            return
        for address, tracked in sorted(self.leaving.items()):  # the records whose manifests are gone
            if address in self.moved_from:
                continue
            self.resolve_pending(address)
            what = "catalog package" if address.startswith(CATALOG_PREFIX) else "client package"
            self.add(ArchiveResource(
                address=address, remote_id=tracked.id, reason="no longer in the manifests", expects=_present(tracked),
                warnings=(f"vcita has no delete for a {what}: {tracked.id} stays in vcita; its record is archived, "
                          "so an object of the same identity is re-adopted later, never created again",),
            ))

    # --- identity: renames, re-adoption, second sales --------------------------------------------

    def _identities(self) -> _Identities:
        """The tracked and the archived records by identity key (kind, client and catalog package;
        kind and name), built once per plan: without them each new object scanned the whole state
        (O(state) per create; 100,000 resources planned in ~4 s instead of ~3).  State order kept."""
        if self._by_identity is None:
            tracked: dict[tuple[Any, ...], list[tuple[str, Any]]] = {}
            for a, t in self.state.items():
                tracked.setdefault(ident.key(t.kind, t.applied), []).append((a, t))  # of() keeps the key's fields
            archived: dict[tuple[Any, ...], list[Any]] = {}
            for r in self.o.archived.values():
                archived.setdefault(ident.key(r.kind, r.identity), []).append(r)
            self._by_identity = (tracked, archived)
        return self._by_identity

    def _tracked_subjects(self) -> dict[str, tuple[Any, Any]]:
        """The client and catalog package of each tracked client package, by id (built once per plan,
        only when an archived record of a new object's identity is there to compare)."""
        if self._subjects_by_id is None:
            self._subjects_by_id = {t.id: (t.applied.get("client_id"), t.applied.get("package_id"))
                                    for t in self.state.values() if t.kind == "ClientPackage"}
        return self._subjects_by_id

    def _staying_ids(self) -> set[str]:
        """The remote ids tracked at addresses that stay (in the manifests, or outside a partial
        plan), built once per plan: the state and ``leaving`` do not change while planning (each
        new catalog package scanned the whole state: 100,000 resources took 1.5 s more)."""
        if self._staying is None:
            self._staying = {t.id for a, t in self.state.items() if a not in self.leaving}
        return self._staying

    def _take_over(self, address: str, kind: str, want: dict[str, Any], *, repeat: bool = False) -> Any:
        """The record a new manifest object takes over by identity, after adding its operation:
        a MoveResource (a record whose manifest is gone) or a ReadoptArchived (an archived record);
        None when nothing matches (a create); ``ident.REFUSED`` when the match is ambiguous, is a
        pending create, lies outside this plan's paths, or is a second sale not declared as one."""
        key = ident.key(kind, want) if ident.keyed(kind, want) else None
        tracked, archived = self._identities()
        same = tracked.get(key, ()) if key is not None else [
            (a, t) for a, t in self.state.items() if t.kind == kind and ident.matches(ident.of(kind, t.applied), want)]
        same = [(a, t) for a, t in same if ident.matches(ident.of(kind, t.applied), want)]
        found = ident.Matches(
            leaving=[(a, t) for a, t in same if a in self.leaving and a not in self.moved_from],
            wanted=[(a, t) for a, t in same if a in self.wanted and a != address and a not in self.repeats],
            outside=[(a, t) for a, t in same if self.o.partial and a not in self.wanted],
            archived=[(r.address, r) for r in (archived.get(key, ()) if key is not None else self.o.archived.values())
                      if r.id not in self.owned and r.kind == kind and ident.matches(r.identity, want)],
            pending=[it for its in self.pending.values() for it in its if it.kind == kind and it.address != address
                     and ident.matches_pending(it.details, want)],
            earlier=ident.earlier(archived[key], want, self.o.archived, self.owned, self._tracked_subjects())
            if kind == "ClientPackage" and key is not None and archived.get(key) else (),
        )
        if repeat and kind == "ClientPackage":
            return None  # a deliberate further sale: a create, shown as one more payment request
        problem = found.problem(address, kind, want)
        if problem is not None:
            loc = self._where(address)
            self.problems.append(problem if loc is None else
                                 problem.model_copy(update={"message": f"declared at {loc}: {problem.message}"}))
            return ident.REFUSED
        if found.leaving:
            old, tracked = found.leaving[0]
            self._kept_sale(address, kind, ident.of(kind, tracked.applied), f"which takes over {tracked.id} "
                            f"(renamed from {old}) in this plan")
            self.moved_from.add(old)
            self.add(MoveResource(address=address, from_address=old, remote_id=tracked.id, expects=ABSENT,
                                  reason=f"renamed from {old}: the same {ident.describe(kind, want)}"))
            return tracked
        if found.archived:
            old, record = found.archived[0]
            self._kept_sale(address, kind, {**record.identity, **want}, f"which re-adopts {record.id} (archived as "
                            f"{old}) in this plan")
            self.readopted[address] = record.id
            self.owned.add(record.id)
            self.add(ReadoptArchived(address=address, remote_id=record.id, archived_address=old, expects=ABSENT,
                                     reason=f"archived as {old}, the same {ident.describe(kind, want)}; its fields "
                                            "are compared by the next plan"))
            return None
        return None

    def _archived_as(self, want: dict[str, Any]) -> list[Any]:
        """The archived client packages (not re-adopted in this plan) of identity ``want``."""
        _, archived = self._identities()
        return [r for r in archived.get(ident.key("ClientPackage", want), ())
                if r.id not in self.owned and r.kind == "ClientPackage" and ident.matches(r.identity, want)]

    def _held_by_client(self, declared: dict[str, Any], replace_fcs: list[FieldChange]) -> list[Any]:
        """For a replacement whose client or catalog package changes (a new sale to that client), the
        archived packages of the new client and catalog package, on other terms, that vcita still
        holds (``identity.earlier``: as for a new object)."""
        if not any(fc.path in ("client_id", "package_id") for fc in replace_fcs):
            return []
        _, archived = self._identities()
        records = archived.get(ident.key("ClientPackage", declared), ())
        if not records:
            return []
        return ident.earlier(records, declared, self.o.archived, self.owned, self._tracked_subjects())

    def _kept_sale(self, address: str, kind: str, identity: dict[str, Any], note: str) -> None:
        """A client-package object that takes a record over is the sale of its identity: a new
        object of the same identity is a second one (``second_sales``)."""
        if kind == "ClientPackage":
            self.kept.append(siblings.NewObject(address, (str(identity.get("client_id")),
                                                          str(identity.get("package_id"))), identity, note=note))

    def second_sales(self) -> None:
        """Refuse the new client-package objects that are a second sale of a sibling's (the
        ``siblings`` rule), and drop what was planned for them."""
        tracked = siblings.tracked_sales(self.new, self.kept, self.state, self.client_docs,
                                         subjects=self.subjects, leaving=self.leaving, moved_from=self.moved_from,
                                         repeats=self.repeats, partial=self.o.partial)
        problems = siblings.refusals(self.new, self.kept + tracked, self._where)
        if not problems:
            return
        refused = {p.address for p in problems}
        self.ops = [op for op in self.ops if op.address not in refused]
        self.refusals = [p for p in self.refusals if p.address not in refused]
        self.problems += problems

    def _where(self, address: str) -> str | None:
        """The file and line that declare ``address`` (a set member: its set's)."""
        src = self.d.sources.get(address) or self.d.sources.get(address.split("[", 1)[0])
        if src is None:
            return None
        return f"{src.file}:{src.line}" if src.line else src.file

    def history_problems(self) -> list[Problem]:
        """A state that does not know this business's past cannot prove that a client package was
        never created before: refuse client-package creates while declared catalog packages exist
        in vcita untracked (a lost, foreign or new state against a business in use)."""
        if not self.o.history_guard:
            return []
        adopted = [op for op in self.ops if isinstance(op, AdoptCatalogPackage)]
        creates = [op.address for op in self.ops if isinstance(op, CreateClientPackage) and not op.replaces]
        creates += self.found_in_vcita
        if not adopted or not creates:
            return []
        names = ", ".join(f"{op.address} ({op.remote_id})" for op in adopted[:5])
        return [Problem(
            address=creates[0], severity="error",
            message=(f"the state does not know this business's past: {len(adopted)} declared catalog package(s) "
                     f"already exist in vcita untracked ({names}), so client packages were very likely created "
                     f"before; creating {len(creates)} client package(s) now could bill clients a second time"),
            hint=("Restore the state (its .backup, or the previous commit of state.json in git) and plan again; "
                  "or adopt what exists with 'reconciler import --discover' (vcita's payment requests find the "
                  "client packages) or 'reconciler import --from FILE'. If no client package was ever "
                  "assigned for these manifests, re-run with --confirm-no-prior-client-packages."),
        )]

    def unmanaged(self) -> list[Unmanaged]:
        out = []
        for rid, obj in sorted(self.a.catalog_packages.items(), key=lambda kv: (kv[1].view.get("name", ""), kv[0])):
            # A partial plan's tracked objects outside its scope are managed, only not planned.
            if rid not in self.claimed and not (self.o.partial and rid in self.owned):
                out.append(Unmanaged(id=rid, name=str(obj.view.get("name", "")), active=obj.active))
        return out


def _renamed_catalog_warnings(ops: list[OperationKind], state: Mapping[str, TrackedLike]) -> list[Problem]:
    """A catalog package created while another leaves the manifests, with client packages moved
    onto the new one by replacement, or created for clients whose package of the leaving one is
    archived in the same plan (a set or document renamed too): most likely one package renamed (its
    ``metadata.name`` and display name together), which reconciler cannot tell from a new package.
    Each sells the client the package again; ``state mv`` first makes it a change in place."""
    created = [op.address for op in ops if isinstance(op, CreateCatalogPackage)]
    leaving = [(op.address, op.remote_id) for op in ops
               if isinstance(op, ArchiveResource) and op.address.startswith(CATALOG_PREFIX)]
    if not created or not leaving:
        return []
    gone_ids = {rid for _, rid in leaving}
    # the clients whose client package of a leaving catalog package is archived in this plan
    left = {state[op.address].applied.get("client_id") for op in ops
            if isinstance(op, ArchiveResource) and op.address in state and op.kind == "ClientPackage"
            and state[op.address].applied.get("package_id") in gone_ids}
    out = []
    for new in created:
        moved = [op.address for op in ops if isinstance(op, CreateClientPackage)
                 and (op.replaces or op.client_id in left)
                 and isinstance(op.package_id, IdOf) and op.package_id.id_of == new]
        if not moved:
            continue
        gone = ", ".join(f"{a} ({rid})" for a, rid in leaving)
        old = leaving[0][0] if len(leaving) == 1 else "OLD"
        out.append(Problem(
            address=new, severity="warning",
            message=(f"{new} is created while {gone} {'leaves' if len(leaving) == 1 else 'leave'} the manifests, "
                     f"and {len(moved)} client package(s) move onto it by replacement or are created for clients "
                     f"whose package of the leaving one is archived in this plan ({', '.join(moved[:3])}"
                     f"{', ...' if len(moved) > 3 else ''}): each is sold again, with a new payment request"),
            hint=(f"If {new} is {old} renamed, run 'reconciler state mv {old} {new}' first: the plan then changes "
                  "its fields in place and replaces no client package.")))
    return out


def _names(ops: list[OperationKind], known: Mapping[str, str],
           subjects: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """The names of the ids the operations show (a plan of 3 changes carries 3 changes' names),
    and of the clients and catalog packages their client packages are grouped by."""
    if not known or not ops:
        return {}
    seen = set(re.findall(r"[A-Za-z0-9_-]+", " ".join(repr(op) for op in ops)))
    seen.update(i for op in ops for i in subjects.get(op.address, ()))
    return {i: known[i] for i in sorted(seen & known.keys())}


def _subjects(ops: list[OperationKind], wanted: Mapping[str, tuple[str, str]],
              state: Mapping[str, TrackedLike]) -> dict[str, tuple[str, str]]:
    """The client and catalog package of each client package the operations act on: from its
    manifest, or (an archive) from what was last applied to it."""
    out: dict[str, tuple[str, str]] = {}
    for op in ops:
        if op.address in wanted:
            out[op.address] = wanted[op.address]
        elif op.address in state and op.kind == "ClientPackage":
            applied = state[op.address].applied
            cid, pid = applied.get("client_id"), applied.get("package_id")
            if isinstance(cid, str) and isinstance(pid, str):
                out[op.address] = (cid, pid)
    return out


def _split_order(fcs: tuple[FieldChange, ...]) -> tuple[tuple[FieldChange, ...], tuple[FieldChange, ...]]:
    """The changes the package update sends, and the display order's (the reorder route's)."""
    return tuple(fc for fc in fcs if fc.path != "order"), tuple(fc for fc in fcs if fc.path == "order")


def _top_fields(fcs: tuple[FieldChange, ...]) -> tuple[str, ...]:
    """The top-level fields that differ (``items[a,b]`` -> ``items``), in the order of the diff."""
    return tuple(dict.fromkeys(fc.path.split("[", 1)[0] for fc in fcs))
