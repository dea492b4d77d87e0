"""Adoption of one existing remote object into state: ``reconciler import ADDRESS ID``.

Client packages cannot be listed, so after an unknown outcome (or when starting to manage an
existing business) a person names the object.  It is adopted only after checking that it exists
and matches the manifest's client and package; a pending create of the address is resolved by
the same state write.
"""

from __future__ import annotations

from reconciler.errors import NotFoundError, ReconcilerError
from reconciler.manifest import ManifestSet
from reconciler.plan import fingerprint
from reconciler.planner import normalize as nz
from reconciler.remote.client import VcitaClient
from reconciler.state import ADDRESS_RE, ResourceState, State, StateStore, utc_now


class ImportRefused(ReconcilerError):
    """The object cannot be adopted for that address."""


async def adopt(api: VcitaClient, desired: ManifestSet, state: State, address: str, remote_id: str,
                store: StateStore) -> tuple[State, str]:
    """Check and record ``remote_id`` as ``address``; return the new state and a description."""
    if not ADDRESS_RE.match(address):
        raise ImportRefused(f"{address!r} is not an address",
                            hint="Write catalog_package.NAME or client_package.NAME (NAME is the manifest's metadata.name).")
    kind, name = address.split(".", 1)
    if address in state.resources:
        raise ImportRefused(f"{address} is already tracked as {state.resources[address].id}",
                            hint=f"Stop tracking it first with 'reconciler state rm {address}' if that is wrong.")
    for other, rs in state.resources.items():
        if rs.id == remote_id:
            raise ImportRefused(f"{remote_id} is already tracked as {other}")
    try:
        if kind == "catalog_package":
            doc = desired.catalog_packages.get(name)
            if doc is None:
                raise ImportRefused(f"no CatalogPackage named {name!r} in the manifests")
            pkg = await api.get_catalog_package(remote_id)
            view = nz.catalog_remote(pkg)
            rs = ResourceState(kind="CatalogPackage", id=pkg.id, fingerprint=fingerprint(view), applied=view,
                               updated_at=utc_now())
            what = f"catalog package {pkg.id} ({pkg.name!r})"
        else:
            cdoc = desired.client_packages.get(name)
            if cdoc is None:
                raise ImportRefused(f"no ClientPackage named {name!r} in the manifests")
            cp = await api.get_client_package(remote_id)
            problems = []
            ref = cdoc.spec.client
            if ref.id is not None and cp.client_id != ref.id:
                problems.append(f"its client is {cp.client_id}, the manifest says {ref.id}")
            elif ref.email is not None:
                found = await api.find_client_by_email(ref.email)
                if found is None or found.id != cp.client_id:
                    problems.append(f"its client {cp.client_id} is not the client with e-mail {ref.email}")
            pref = cdoc.spec.package
            want_pkg = pref.id if pref.id is not None else (
                state.resources.get(f"catalog_package.{pref.name}").id  # type: ignore[union-attr]
                if f"catalog_package.{pref.name}" in state.resources else None)
            if want_pkg is None:
                problems.append(f"catalog_package.{pref.name} is not tracked yet: apply or import it first")
            elif cp.package_id != want_pkg:
                problems.append(f"its package is {cp.package_id}, the manifest's is {want_pkg}")
            if problems:
                raise ImportRefused(f"{remote_id} does not match {address}: " + "; ".join(problems))
            view = nz.client_remote(cp)
            rs = ResourceState(kind="ClientPackage", id=cp.id, fingerprint=fingerprint(view), applied=view,
                               booking_credit_ids=nz.client_credit_ids(cp), updated_at=utc_now())
            what = f"client package {cp.id} (client {cp.client_id}, package {cp.package_id})"
    except NotFoundError:
        raise ImportRefused(f"vcita has no {kind.replace('_', ' ')} {remote_id} in business {api.target.business_id}") from None
    settled = {pc.id for pc in state.pending_for(address)}
    pending = {k: v for k, v in state.pending.items() if k not in settled}
    archived = {k: v for k, v in state.archived.items() if k != rs.id}
    new = store.write(state.replace(resources={**state.resources, address: rs}, pending=pending, archived=archived),
                      expected_serial=state.serial)
    if settled:
        what += "; its pending create is resolved"
    return new, what
