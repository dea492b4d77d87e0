"""Client packages created outside reconciler: ``drift``'s use of the second memory.

One business-wide walk of the payment requests (``remote/discovery.py``; the client packages the
state tracks are not read again, the refresh has just read them) finds every client package of
the business; those of a **managed client** (one a manifest or the state names) and a **managed
catalog package** (one the state tracks, or a manifest names by id) that no record of the state
knows (tracked, archived, or a pending create) were assigned outside reconciler, in the vcita UI or
by another tool.  Each is a ``created_outside`` object of the report: remote drift (exit 2).
When the list cannot serve as a second memory, the report says so and looks no further.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.core.safetext import printable
from reconciler.drift.model import ObjectDrift
from reconciler.model import address as addresses
from reconciler.model import views
from reconciler.planner.memory import has_sent
from reconciler.remote.discovery import Discovery, DiscoveryUnavailable, discover

if TYPE_CHECKING:
    from reconciler.model.manifest_set import ManifestSet
    from reconciler.planner.actual import Actual
    from reconciler.remote.client import VcitaClient
    from reconciler.state.store import PendingCreate, State


def managed(desired: ManifestSet, state: State, actual: Actual) -> tuple[set[str], set[str]]:
    """(client ids, catalog package ids) reconciler manages for this business."""
    clients: set[str] = set()
    for doc in desired.client_packages.values():
        ref = doc.spec.client
        cid = ref.id if ref.id is not None else actual.clients_by_email.get((ref.email or "").lower())
        if cid:
            clients.add(cid)
    catalog = {rs.id for a, rs in state.resources.items() if addresses.is_catalog(a)}
    catalog |= {str(d.spec.package.id) for d in desired.client_packages.values() if d.spec.package.id}
    for rs in state.resources.values():
        if rs.kind == "ClientPackage" and rs.applied.get("client_id"):
            clients.add(str(rs.applied["client_id"]))
    return clients, catalog


def outside_objects(found: Discovery, state: State, clients: set[str], catalog: set[str]) -> list[ObjectDrift]:
    """The ``created_outside`` objects of a discovery.  A package that matches what a pending
    create sent (an interrupted run's create whose answer was lost) is left out: it is most likely
    reconciler's own, which the next plan adopts (``planner/memory.py``), not an assignment made
    outside."""
    known = {rs.id for rs in state.resources.values()} | set(state.archived)
    out = []
    for cp in sorted(found.packages, key=lambda c: c.id):
        if cp.id in known or cp.client_id not in clients or cp.package_id not in catalog:
            continue
        if pending_match(views.client_remote(cp), state) is not None:
            continue
        note = (f"client {cp.client_id}, catalog package {cp.package_id}, valid {cp.valid_from}..{cp.valid_until}, "
                f"payment request {cp.payment_request_id}: not created by reconciler; declare it and run "
                "'reconciler import --discover' to manage it")
        out.append(ObjectDrift(address=addresses.client(f"(untracked {cp.id})"), kind="ClientPackage", name=cp.id,
                               remote_id=cp.id, status="created_outside", notes=(printable(note, limit=400),)))
    return out


def pending_match(view: dict[str, Any], state: State) -> PendingCreate | None:
    """The pending client-package create whose sent values (client, catalog package, and the dates
    and price it sent) ``view`` has, if any."""
    for pc in state.pending.values():
        if pc.kind == "ClientPackage" and has_sent(view, pc.details):
            return pc
    return None


def pending_note(address: str, state: State) -> str | None:
    """What drift says of a manifest object whose create an interrupted run left pending (None:
    none is)."""
    held = state.pending_for(address)
    if not held:
        return None
    pc = held[0]
    return (f"a create of unknown outcome: an interrupted run sent it (intent {pc.id}, {pc.opened_at}) and never heard "
            "back; 'reconciler plan' settles it (it adopts the package when vcita's payment requests show it, "
            "and says what to do when they do not); it is never sent again on its own")


async def look(api: VcitaClient, desired: ManifestSet, state: State, actual: Actual
               ) -> tuple[list[ObjectDrift], str]:
    """The client packages created outside reconciler, and how they were looked for."""
    clients, catalog = managed(desired, state, actual)
    if not clients or not catalog:
        return [], "no managed client and catalog package to look for"
    try:
        found = await discover(api, known=frozenset(rs.id for rs in state.resources.values()))
    except DiscoveryUnavailable as exc:
        return [], f"client packages created outside reconciler cannot be seen: {printable(exc.message, limit=300)}"
    objects = outside_objects(found, state, clients, catalog)
    searched = "; ".join(s.describe() for s in found.searches)
    return objects, f"searched {searched}: {len(objects)} created outside reconciler"
