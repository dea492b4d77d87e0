"""``plan --refresh=changed``: read only what a plan of the changed objects needs.

A full refresh reads every tracked client package, one GET each (vcita has no list of them), so
the plan of a business with 5,000 of them costs 5,000 requests whatever changed.  This one reads:

1. the catalog list, the services list and one lookup per client e-mail (as a full refresh does),
   concurrently;
2. then only the tracked client packages whose manifest differs from what was last applied to
   them (``ResourceState.applied``), plus those whose client or catalog package cannot be told
   without reading them.

Every other tracked client package is planned from what was last applied (as ``--no-refresh``
does): no operation is planned for it, since its manifest asks for what was applied.  A change
made in vcita to one of them is not seen (``reconciler drift`` reads everything).  Each change the
plan does make was computed against the object as read now, and apply's stale check reads each
object again before it acts on it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from reconciler.core import aio
from reconciler.core.listlag import ListLag
from reconciler.model import address as addresses
from reconciler.model import views as nz
from reconciler.model.manifest_set import ManifestSet
from reconciler.planner import Actual, RemoteObject, from_client_package
from reconciler.planner.diff import field_changes
from reconciler.remote.client import VcitaClient
from reconciler.state.store import ResourceState


def changed_addresses(desired: ManifestSet, resources: Mapping[str, ResourceState],
                      clients_by_email: Mapping[str, str | None]) -> list[str]:
    """The tracked client packages of ``desired`` whose manifest differs from what was last
    applied, or that cannot be compared without reading them (an e-mail no client has, a catalog
    package not tracked yet)."""
    out = []
    for cp in desired.client_packages.values():
        rs = resources.get(cp.address)
        if rs is None or rs.kind != "ClientPackage":
            continue
        ref = cp.spec.client
        cid = ref.id if ref.id is not None else clients_by_email.get((ref.email or "").lower())
        pref = cp.spec.package
        catalog = resources.get(addresses.catalog(pref.name)) if pref.name is not None else None
        pid = pref.id if pref.id is not None else (catalog.id if catalog is not None else None)
        if cid is None or pid is None:
            out.append(cp.address)
            continue
        want = nz.client_desired(cp.spec, cid, pid)
        if field_changes(nz.managed_part(rs.applied, want), want):
            out.append(cp.address)
    return out


async def refresh_changed(api: VcitaClient, desired: ManifestSet, resources: Mapping[str, ResourceState],
                          pending: Sequence[Any] = (), *, settle: bool = True,
                          also: Collection[str] = ()) -> tuple[Actual, int]:
    """The Actual of a ``--refresh=changed`` plan, and how many tracked client packages it did not
    read; the catalog is read as a full refresh reads it (waiting for a lagging list when
    ``settle``).  ``also``: addresses read whatever their manifests say (the verification after
    ``apply --refresh=changed`` reads again what the apply changed, which now matches the state)."""
    from reconciler.refresh.full import read_catalog_settled, read_lookups, refreshed_actual

    lag = getattr(api.target, "list_lag", None) or ListLag()
    (catalog, listed_at), found = await aio.gather(
        read_catalog_settled(api, resources, pending, lag, wait=settle), read_lookups(api, desired))
    by_email = found.clients_by_email
    wanted = dict.fromkeys([*changed_addresses(desired, resources, by_email),
                            *(a for a in also if a in resources and resources[a].kind == "ClientPackage")])
    read_ids = [resources[a].id for a in wanted]
    got = await api.get_client_packages(read_ids)
    clients: dict[str, RemoteObject | None] = {}
    for rs in resources.values():
        if rs.kind == "ClientPackage" and rs.id not in got:
            clients[rs.id] = RemoteObject(id=rs.id, view=dict(rs.applied), credit_ids=dict(rs.booking_credit_ids))
    clients.update({uid: (from_client_package(cp) if cp else None) for uid, cp in got.items()})
    actual = refreshed_actual(catalog, listed_at, clients, found, pending, lag)
    return actual, len(clients) - len(got)
