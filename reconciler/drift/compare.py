"""Drift, computed: a pure ``(desired, state, actual) -> DriftReport``.  No I/O, no clock.

Three views of every tracked object are compared field by field, in the planner's normalised
form (``reconciler.model.views``):

* ``applied`` — state's record of what reconciler last applied (the full remote view after the
  last write, import or export; its fingerprint is state's ``fingerprint``);
* ``remote`` — the full view of the object as vcita has it now (from the refresh);
* ``desired`` — the manifest's view (only the fields it manages).

A field has *remote drift* when ``remote != applied`` and is *pending* when it is managed and
``desired != applied``.  A field the manifest leaves out is unmanaged: a remote change to it is
listed with ``managed: false`` and counts for nothing (reconciler would never change it back).
Keyed collections are compared per key (``items[svcA,svcB]``, ``products[id]``,
``booking_credits[svc]``); a catalog package manages all its items and products, a client package
only the credits its manifest names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.drift.model import (
    DriftReport,
    FieldDrift,
    ObjectDrift,
    Status,
    summarise,
    verdict_for,
)
from reconciler.model import address as addresses
from reconciler.model import views as nz
from reconciler.model.manifest import CatalogPackage, ClientPackage
from reconciler.model.manifest_set import ManifestSet
from reconciler.plan.document import KNOWN_AFTER_APPLY, PlanTarget, fingerprint
from reconciler.planner import identity as ident
from reconciler.planner.actual import Actual
from reconciler.state.store import Kind, ResourceState

CATALOG = addresses.CATALOG
CLIENT = addresses.CLIENT
#: Keyed fields of which only the keys the manifest names are managed.
PER_KEY_MANAGED = frozenset({"booking_credits"})


def flatten(view: Mapping[str, Any]) -> dict[str, Any]:
    """A view as ``path -> value``: keyed collections one entry per key (``items[a,b]``)."""
    out: dict[str, Any] = {}
    for k, v in view.items():
        if isinstance(v, dict):
            for sub, sv in v.items():
                out[f"{k}[{sub}]"] = sv
        else:
            out[k] = v
    return out


def top(path: str) -> str:
    """The view field a path belongs to: ``items[a,b]`` -> ``items``."""
    return path.split("[", 1)[0]


def field_drifts(applied: Mapping[str, Any], remote: Mapping[str, Any] | None,
                 desired: Mapping[str, Any] | None) -> tuple[FieldDrift, ...]:
    """Every field that drifted in vcita or is pending, sorted by path.

    ``remote=None``: not refreshed (no remote drift is looked for); ``desired=None``: the object
    is not in the manifests (nothing is pending field by field).
    """
    fa = flatten(applied)
    fr = flatten(remote) if remote is not None else fa
    fd = flatten(desired) if desired is not None else {}
    managed_tops = set(desired or ())
    out = []
    for path in sorted(set(fa) | set(fr) | set(fd)):
        t = top(path)
        managed = t in managed_tops and (t not in PER_KEY_MANAGED or path in fd)
        a, r, d = fa.get(path), fr.get(path), fd.get(path)
        drift = a != r
        pending = managed and d != a
        if drift or pending:
            out.append(FieldDrift(path=path, applied=a, remote=r, desired=d if managed else None,
                                  managed=managed, remote_drift=drift, pending=pending))
    return tuple(out)


def status_of(fields: tuple[FieldDrift, ...]) -> Status | None:
    """The object's status from its fields (None: in sync)."""
    drift = any(f.remote_drift and f.managed for f in fields)
    pending = any(f.pending for f in fields)
    if drift and pending:
        return "drift_and_pending"
    if drift:
        return "drift"
    if pending:
        return "pending"
    if fields:
        return "unmanaged_drift"
    return None


def compare(desired: ManifestSet, state: Mapping[str, ResourceState], actual: Actual, *,
            target: PlanTarget, created_at: str, state_lineage: str, state_serial: int) -> DriftReport:
    """The drift report of every object in the manifests or in state."""
    objects: list[ObjectDrift | None] = []  # None: in sync
    claimed = {rs.id for a, rs in state.items() if a.startswith(CATALOG)}
    for name, doc in desired.catalog_packages.items():
        tracked = state.get(doc.address)
        if tracked is None:
            objects.append(_untracked_catalog(doc, actual, claimed))
            continue
        obj = actual.catalog_packages.get(tracked.id)
        notes: tuple[str, ...] = () if obj is None or obj.active else (
            "deactivated in vcita: new client packages cannot use it",)
        objects.append(_tracked(doc.address, "CatalogPackage", name, tracked,
                                obj.view if obj else None, nz.catalog_desired(doc.spec), notes))
    for name, cdoc in desired.client_packages.items():
        tracked = state.get(cdoc.address)
        want, notes = _client_desired(cdoc, state, actual)
        if tracked is None:
            new = _untracked_client(cdoc, want, state, sales={d.address for d in desired.client_packages.values()
                                                               if not d.spec.repeat_purchase})
            objects.append(ObjectDrift(address=cdoc.address, kind="ClientPackage", name=name, status="untracked",
                                       notes=(new, *notes)))
            continue
        cobj = actual.client_packages.get(tracked.id)
        objects.append(_tracked(cdoc.address, "ClientPackage", name, tracked,
                                cobj.view if cobj else None, want, notes))
    wanted = {d.address for d in desired.documents}
    for address, tracked in sorted(state.items()):
        if address in wanted:
            continue
        kind: Kind = "CatalogPackage" if address.startswith(CATALOG) else "ClientPackage"
        gone = "tracked in state but no longer in the manifests: apply stops tracking it (it stays in vcita)"
        objects.append(ObjectDrift(address=address, kind=kind, name=address.split(".", 1)[1],
                                   remote_id=tracked.id, status="removed", notes=(gone,)))
    listed = tuple(o for o in objects if o is not None)
    total = len(objects)
    return DriftReport(
        created_at=created_at, target=target, manifest_digest=desired.digest(), state_lineage=state_lineage,
        state_serial=state_serial, verdict=verdict_for(listed), summary=summarise(listed, total),
        objects=tuple(sorted(listed, key=lambda o: o.address)),
    )


def _tracked(address: str, kind: Any, name: str, tracked: ResourceState, remote: dict[str, Any] | None,
             want: dict[str, Any], notes: tuple[str, ...]) -> ObjectDrift | None:
    """The drift of one tracked object; None when it is in sync."""
    if remote is None:
        why = (f"tracked as {tracked.id}, which no longer exists in vcita; 'reconciler state rm {address}' "
               "stops tracking it (a later apply then creates a new one)")
        return ObjectDrift(address=address, kind=kind, name=name, remote_id=tracked.id, status="vanished",
                           notes=(why,))
    # The fingerprint says whether vcita changed at all; the fields say where.
    changed = fingerprint(remote) != tracked.fingerprint
    fields = field_drifts(tracked.applied, remote if changed else None, want)
    status = status_of(fields)
    if status is None:
        if not notes:
            return None
        status = "unmanaged_drift"  # nothing changed, but something worth saying (deactivated)
    return ObjectDrift(address=address, kind=kind, name=name, remote_id=tracked.id, status=status,
                       fields=fields, notes=notes)


def _untracked_client(doc: ClientPackage, want: dict[str, Any], state: Mapping[str, ResourceState], *,
                      sales: set[str]) -> str:
    """What the next apply does with a client package the state does not track, as far as the
    state tells: a second sale of the identity of a tracked package whose manifest is its sale
    (in ``sales``: declared, not a repeat purchase) is refused, not created."""
    identity = {k: want[k] for k in ident.CLIENT_FIELDS if k in want}
    same = sorted(a for a, rs in state.items()
                  if a in sales and ident.matches(ident.of("ClientPackage", rs.applied), identity))
    if same and not doc.spec.repeat_purchase:
        return (f"not in state, and the same {ident.describe('ClientPackage', identity)} as {', '.join(same)}: a "
                "second sale, which plan refuses unless this object says 'repeat_purchase: true'")
    return ("not in state: apply creates it, or 'reconciler import' adopts an existing one "
            "('reconciler plan' says which)")


def _untracked_catalog(doc: CatalogPackage, actual: Actual, claimed: set[str]) -> ObjectDrift:
    same = sorted(rid for rid, o in actual.catalog_packages.items()
                  if o.view.get("name") == doc.spec.name and rid not in claimed)
    if len(same) == 1:
        note = f"not in state; vcita has an untracked package named {doc.spec.name!r} ({same[0]}): plan adopts it"
    elif same:
        note = (f"not in state; vcita has {len(same)} untracked packages named {doc.spec.name!r}: adopt one with "
                f"'reconciler import {doc.address} ID'")
    else:
        note = "not in state: apply creates it"
    return ObjectDrift(address=doc.address, kind="CatalogPackage", name=doc.metadata.name, status="untracked",
                       remote_id=same[0] if len(same) == 1 else None, notes=(note,))


def _client_desired(doc: ClientPackage, state: Mapping[str, ResourceState],
                    actual: Actual) -> tuple[dict[str, Any], tuple[str, ...]]:
    notes: list[str] = []
    ref = doc.spec.client
    cid: str | None = ref.id
    if cid is None:
        email = (ref.email or "").lower()
        cid = actual.clients_by_email.get(email)
        if cid is None:
            cid = f"(client {ref.email})"
            notes.append(f"spec.client: no client with e-mail {ref.email!r} was found in vcita")
    pref = doc.spec.package
    pid = pref.id
    if pid is None:
        tracked = state.get(CATALOG + str(pref.name))
        pid = tracked.id if tracked is not None else KNOWN_AFTER_APPLY
    return nz.client_desired(doc.spec, cid, pid), tuple(notes)
