"""The planner: a pure function ``(desired, state, actual) -> Plan``.  No I/O, no clock.

Key sets first (create / update / import / forget / no-op), then field-level differences, then
the business rules a reviewer should see before anything runs: credits below usage, validity in
the past, fields the API cannot change in place (``replace required``), references that do not
resolve.  Every change carries the exact requests apply will send.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from reconciler.manifest import ManifestSet
from reconciler.model.manifest import CatalogPackage, ClientPackage
from reconciler.plan import (
    KNOWN_AFTER_APPLY,
    Change,
    ExpectedState,
    FieldChange,
    Plan,
    PlanTarget,
    Problem,
    Request,
    Unmanaged,
    fingerprint,
)
from reconciler.planner import normalize as nz
from reconciler.planner.actual import Actual, RemoteObject
from reconciler.planner.diff import field_changes

CATALOG_PREFIX = "catalog_package."
_ABSENT = ExpectedState(present=False, id=None, fingerprint=None)


def _present(tracked: TrackedLike) -> ExpectedState:
    return ExpectedState(present=True, id=tracked.id, fingerprint=tracked.fingerprint)

CLIENT_PREFIX = "client_package."


class TrackedLike(Protocol):
    """What the planner reads of a state entry (reconciler.state.ResourceState)."""

    kind: str
    id: str
    fingerprint: str
    applied: dict[str, Any]


@dataclass(frozen=True)
class PlanOptions:
    target: PlanTarget
    today: date
    created_at: str
    state_lineage: str
    state_serial: int
    allow_replace: bool = False


def plan(
    desired: ManifestSet,
    state: Mapping[str, TrackedLike],
    actual: Actual,
    opts: PlanOptions,
) -> Plan:
    """Compute the plan that takes the remote business from ``actual`` to ``desired``."""
    # Planning allocates hundreds of thousands of small acyclic objects; the cyclic collector
    # would walk the whole heap again and again for nothing (it doubled the time at 100,000).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _plan(desired, state, actual, opts)
    finally:
        if gc_was_enabled:
            gc.enable()


def _plan(desired: ManifestSet, state: Mapping[str, TrackedLike], actual: Actual, opts: PlanOptions) -> Plan:
    b = _Builder(desired, state, actual, opts)
    b.catalog()
    b.clients()
    b.forgotten()
    return Plan.model_construct(
        format_version=1,
        created_at=opts.created_at,
        target=opts.target,
        manifest_digest=desired.digest(),
        state_lineage=opts.state_lineage,
        state_serial=opts.state_serial,
        refreshed=actual.refreshed,
        allow_replace=opts.allow_replace,
        changes=tuple(b.changes),
        unmanaged=tuple(b.unmanaged()),
        problems=tuple(b.problems),
        noop_count=b.noops,
        notes=tuple(b.notes),
    )


class _Builder:
    def __init__(self, desired: ManifestSet, state: Mapping[str, TrackedLike], actual: Actual, opts: PlanOptions) -> None:
        self.d = desired
        self.state = state
        self.a = actual
        self.o = opts
        self.changes: list[Change] = []
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.noops = 0
        # catalog address -> remote id (or KNOWN_AFTER_APPLY) for client packages to reference
        self.package_ids: dict[str, str] = {}
        self.creating: set[str] = set()
        self.claimed: set[str] = set()  # remote catalog ids owned by a manifest
        by_name: dict[str, list[str]] = {}
        for rid, obj in actual.catalog_packages.items():
            by_name.setdefault(obj.view.get("name", ""), []).append(rid)
        self.by_name = by_name

    # --- catalog packages ---------------------------------------------------------------------

    def catalog(self) -> None:
        for name, doc in self.d.catalog_packages.items():
            self._catalog_one(name, doc)

    def _catalog_one(self, name: str, doc: CatalogPackage) -> None:
        address = doc.address
        want = nz.catalog_desired(doc.spec)
        self._check_services(address, doc)
        tracked = self.state.get(address)
        if tracked is None:
            candidates = [rid for rid in self.by_name.get(doc.spec.name, []) if rid not in self.claimed]
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
                before = nz.managed_part(obj.view, want)
                fcs = field_changes(before, want)
                reqs = (self._catalog_update_request(rid, want, fcs),) if fcs else ()
                self.package_ids[address] = rid
                self.changes.append(Change(
                    address=address, kind="CatalogPackage", action="import", name=name, remote_id=rid,
                    before=before, after=want, field_changes=fcs,
                    reason=f"a remote catalog package named {doc.spec.name!r} exists and is not tracked: "
                           "adopt it" + (" and update it" if fcs else ""),
                    warnings=self._assigned_warning(fcs), requests=reqs, depends_on=(),
                    remote_fingerprint=fingerprint(obj.view),
                    expected_state=_ABSENT, blocked=None,
                ))
                return
            self.package_ids[address] = KNOWN_AFTER_APPLY
            self.creating.add(address)
            self.changes.append(Change(
                address=address, kind="CatalogPackage", action="create", name=name, remote_id=None,
                before=None, after=want, field_changes=(), reason=None, warnings=(),
                requests=(self._catalog_create_request(want),), depends_on=(),
                remote_fingerprint=None, expected_state=_ABSENT, blocked=None,
            ))
            return
        self.claimed.add(tracked.id)
        self.package_ids[address] = tracked.id
        obj = self.a.catalog_packages.get(tracked.id)
        if obj is None:
            self._vanished(address, tracked.id, "CatalogPackage")
            return
        before = nz.managed_part(obj.view, want)
        fcs = field_changes(before, want)
        warnings: tuple[str, ...] = ()
        if not obj.active:
            warnings = ("this catalog package is deactivated in vcita; new client packages cannot use it",)
        if not fcs:
            self._noop(address, "CatalogPackage", name, tracked, obj, before, want, warnings)
            return
        self.changes.append(Change(
            address=address, kind="CatalogPackage", action="update", name=name, remote_id=tracked.id,
            before=before, after=want, field_changes=fcs, reason=None,
            warnings=warnings + self._assigned_warning(fcs),
            requests=(self._catalog_update_request(tracked.id, want, fcs),), depends_on=(),
            remote_fingerprint=fingerprint(obj.view),
            expected_state=_present(tracked),
            blocked=None,
        ))

    def _assigned_warning(self, fcs: tuple[FieldChange, ...]) -> tuple[str, ...]:
        if not fcs:
            return ()
        return ("client packages already assigned keep their old terms: vcita does not propagate "
                "catalog changes to them",)

    def _check_services(self, address: str, doc: CatalogPackage) -> None:
        known = self.a.service_ids
        if known is None:
            return
        for i, item in enumerate(doc.spec.items):
            for s in item.services:
                if s not in known:
                    self.problems.append(Problem(
                        address=address, severity="error",
                        message=f"spec.items[{i}].services: no service {s!r} in this business",
                        hint="Check the UID against 'GET /platform/v1/services' (services are not managed here).",
                    ))

    def _catalog_create_request(self, want: dict[str, Any]) -> Request:
        return Request(
            operation="create_catalog_package", method="POST", path="/platform/v1/payment/packages",
            door="", body=_catalog_body(want, full=True),
        )

    def _catalog_update_request(self, rid: str, want: dict[str, Any], fcs: tuple[FieldChange, ...]) -> Request:
        top = {fc.path.split("[", 1)[0] for fc in fcs}
        body = {k: v for k, v in _catalog_body(want, full=True).items() if k in top}
        return Request(
            operation="update_catalog_package", method="PUT",
            path=f"/platform/v1/payment/packages/{rid}", door="", body={"package": body},
        )

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
        if cid is None:
            self.problems.append(Problem(
                address=address, severity="error",
                message=f"spec.client: no client with e-mail {ref.email!r} in this business",
                hint="Create the client in vcita first, or write its UID.",
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
        cid = self._resolve_client(address, doc)
        pid, deps = self._resolve_package(address, doc)
        if cid is None or pid is None:
            return
        want = nz.client_desired(doc.spec, cid, pid)
        tracked = self.state.get(address)
        today = self.o.today.isoformat()
        self._check_package_active(address, pid)
        if tracked is None:
            self._client_create(address, name, doc, want, deps, today)
            return
        obj = self.a.client_packages.get(tracked.id)
        if obj is None:
            self._vanished(address, tracked.id, "ClientPackage")
            return
        before = nz.managed_part(obj.view, want)
        fcs = field_changes(before, want)
        if not fcs:
            self._noop(address, "ClientPackage", name, tracked, obj, before, want, ())
            return
        replace = [fc for fc in fcs if fc.path.split("[", 1)[0] in nz.REPLACE_FIELDS]
        es = _present(tracked)
        if replace:
            fields = ", ".join(fc.path for fc in replace)
            reason = (f"{fields} cannot change in place: a new client package is created, which opens a "
                      f"new payment request for the client; the old one ({tracked.id}) stays in vcita")
            self._rules(address, want, obj, today, creating=True, doc=doc)
            reqs = self._client_create_requests(doc, want)
            self.changes.append(Change(
                address=address, kind="ClientPackage", action="replace", name=name, remote_id=tracked.id,
                before=before, after=want, field_changes=fcs, reason=reason,
                warnings=(f"cancel or waive the old client package {tracked.id} and its payment request in vcita by hand",),
                requests=reqs, depends_on=deps, remote_fingerprint=fingerprint(obj.view), expected_state=es,
                blocked=None if self.o.allow_replace else f"replace required ({fields}); re-run with --allow-replace to accept it",
            ))
            return
        self._rules(address, want, obj, today, creating=False, doc=doc)
        body: dict[str, Any] = {}
        if "valid_until" in want and want["valid_until"] != before.get("valid_until"):
            body["valid_until"] = want["valid_until"]
        credits = []
        for key, total in (want.get("booking_credits") or {}).items():
            if before.get("booking_credits", {}).get(key) != total and key in obj.credit_ids:
                credits.append({"id": obj.credit_ids[key], "total_bookings": total})
        if credits:
            body["booking_credits"] = credits
        self.changes.append(Change(
            address=address, kind="ClientPackage", action="update", name=name, remote_id=tracked.id,
            before=before, after=want, field_changes=fcs, reason=None, warnings=(),
            requests=(Request(
                operation="update_client_package", method="PUT",
                path=f"/business/payments/v1/client_packages/{tracked.id}", door="",
                body={"client_package": body}),),
            depends_on=deps, remote_fingerprint=fingerprint(obj.view), expected_state=es, blocked=None,
        ))

    def _client_create(self, address: str, name: str, doc: ClientPackage, want: dict[str, Any],
                       deps: tuple[str, ...], today: str) -> None:
        self._rules(address, want, None, today, creating=True, doc=doc)
        self.changes.append(Change(
            address=address, kind="ClientPackage", action="create", name=name, remote_id=None,
            before=None, after=want, field_changes=(),
            reason=None, warnings=("creating a client package opens a payment request for the client",),
            requests=self._client_create_requests(doc, want), depends_on=deps, remote_fingerprint=None,
            expected_state=_ABSENT, blocked=None,
        ))

    def _client_create_requests(self, doc: ClientPackage, want: dict[str, Any]) -> tuple[Request, ...]:
        pid = want["package_id"]
        body: dict[str, Any] = {
            "client_id": want["client_id"],
            "package_id": {"$ref": f"{CATALOG_PREFIX}{doc.spec.package.name}.id"} if pid == KNOWN_AFTER_APPLY else pid,
        }
        for k in ("valid_from", "valid_until"):
            if k in want:
                body[k] = want[k]
        if "price" in want:
            body["price"] = nz.number(want["price"])
        if doc.spec.tax_uids is not None:
            body["tax_uids"] = list(doc.spec.tax_uids)
        if doc.spec.matter_uid is not None:
            body["matter_uid"] = doc.spec.matter_uid
        reqs = [Request(operation="create_client_package", method="POST",
                                        path="/platform/v1/payment/client_packages", door="", body=body)]
        if want.get("booking_credits"):
            # Credits are created from the package items; overrides are set right after, by key.
            reqs.append(Request(
                operation="update_client_package", method="PUT",
                path="/business/payments/v1/client_packages/{id}", door="",
                body={"client_package": {"booking_credits": [
                    {"$credit": k, "total_bookings": v} for k, v in want["booking_credits"].items()]}},
            ))
        return tuple(reqs)

    def _check_package_active(self, address: str, pid: str) -> None:
        obj = self.a.catalog_packages.get(pid)
        if obj is not None and not obj.active:
            self.problems.append(Problem(
                address=address, severity="warning",
                message=f"spec.package: catalog package {pid} is deactivated; vcita refuses new assignments of it",
            ))

    def _rules(self, address: str, want: dict[str, Any], obj: RemoteObject | None, today: str,
               *, creating: bool, doc: ClientPackage) -> None:
        vu = want.get("valid_until")
        before_vu = obj.view.get("valid_until") if obj else None
        if vu is not None and vu < today and (creating or vu != before_vu):
            self.problems.append(Problem(
                address=address, severity="error",
                message=f"spec.valid_until: {vu} is in the past (today is {today}); vcita refuses it",
            ))
        vf = want.get("valid_from") or (obj.view.get("valid_from") if obj else None)
        if vu is not None and vf is not None and vu < vf:
            self.problems.append(Problem(
                address=address, severity="error",
                message=f"spec.valid_until: {vu} is before valid_from ({vf})",
            ))
        if obj is None or creating:
            return
        for key, total in (want.get("booking_credits") or {}).items():
            if key not in obj.credit_ids and self.a.refreshed:
                self.problems.append(Problem(
                    address=address, severity="error",
                    message=f"spec.booking_credits: the client package has no credit for services [{key}]",
                ))
                continue
            used = obj.usage.get(key)
            if used is not None and total < used:
                self.problems.append(Problem(
                    address=address, severity="error",
                    message=f"spec.booking_credits[{key}].total_bookings: {total} is below the {used} "
                            "credits already used; vcita refuses it",
                    hint=f"Set it to {used} or more ({used} exhausts the credit).",
                ))

    # --- shared ---------------------------------------------------------------------------------

    def _noop(self, address: str, kind: Any, name: str, tracked: TrackedLike, obj: RemoteObject,
              before: dict[str, Any], want: dict[str, Any], warnings: tuple[str, ...]) -> None:
        self.noops += 1
        self.changes.append(Change(
            address=address, kind=kind, action="noop", name=name, remote_id=tracked.id, before=before,
            after=want, field_changes=(), reason=None, warnings=warnings, requests=(), depends_on=(),
            remote_fingerprint=fingerprint(obj.view),
            expected_state=_present(tracked),
            blocked=None,
        ))

    def _vanished(self, address: str, rid: str, kind: str) -> None:
        self.problems.append(Problem(
            address=address, severity="error",
            message=f"{kind} {rid} is tracked in state but no longer exists in vcita; it will not be re-created silently",
            hint=f"If it was removed on purpose, stop tracking it with 'reconciler state rm {address}', then plan again to create a new one.",
        ))

    def forgotten(self) -> None:
        wanted = {d.address for d in self.d.documents}
        for address, tracked in sorted(self.state.items()):
            if address in wanted:
                continue
            kind = "CatalogPackage" if address.startswith(CATALOG_PREFIX) else "ClientPackage"
            what = "catalog package" if kind == "CatalogPackage" else "client package"
            self.changes.append(Change(
                address=address, kind=kind, action="forget", name=address.split(".", 1)[1],
                remote_id=tracked.id, before=dict(tracked.applied), after=None, field_changes=(),
                reason="no longer in the manifests",
                warnings=(f"vcita has no delete for a {what}: apply stops tracking {tracked.id} and leaves it in vcita",),
                requests=(), depends_on=(), remote_fingerprint=None,
                expected_state=_present(tracked),
                blocked=None,
            ))

    def unmanaged(self) -> list[Unmanaged]:
        out = []
        for rid, obj in sorted(self.a.catalog_packages.items(), key=lambda kv: (kv[1].view.get("name", ""), kv[0])):
            if rid not in self.claimed:
                out.append(Unmanaged(id=rid, name=str(obj.view.get("name", "")), active=obj.active))
        return out


def _catalog_body(want: dict[str, Any], *, full: bool) -> dict[str, Any]:
    """A view as the API's package body (API-NOTES §6.1): items and products as lists, numbers as numbers."""
    body: dict[str, Any] = {}
    for k, v in want.items():
        if k == "items":
            body["items"] = [{"total_bookings": n, "services": [{"id": s} for s in key.split(",")]}
                             for key, n in v.items()]
        elif k == "products":
            body["products"] = [{"id": pid, "quantity": q} for pid, q in v.items()]
        elif k in ("price", "discount_amount"):
            body[k] = nz.number(v)
        else:
            body[k] = v
    if full and "products" not in body:
        body["products"] = []
    return body
