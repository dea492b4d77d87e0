"""``reconciler import --discover``: rebuild or onboard the state from vcita's second memory.

Every client package of the business is found through its payment requests (one business-wide
walk, each item confirmed by its client package's link back, ``remote/discovery.py``), and each
untracked manifest object is matched by **identity**: its client (a UID, or the client with its
e-mail), its catalog package (tracked, or an untracked one adopted by this same import because its
display name is unique in vcita), and its ``valid_from`` and price when declared (a replacement
leaves the package it replaced in vcita: the same client and catalog package at another price).
A match is adopted; several manifest objects of one identity (a declared second sale,
``repeat_purchase``) take as many packages, deterministically: identities that declare
``valid_from`` first, then those that declare a price (they are the narrower ones; an object
without it would otherwise take their package), then within one identity the address with a
pending create of it, then the original (not ``repeat_purchase``), then the repeats by address,
each taking the oldest payment request left (times compared as instants, ties by id).
Fewer packages than objects: the oldest objects adopt them and the next plan creates the rest; an
identity with more packages than objects is left for a person (``reconciler import ADDRESS ID``).
Everything adopted is recorded in one state write, and
a pending create of an adopted address is settled by it.  Packages that match no manifest object
are listed, never adopted.  Nothing in vcita changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from reconciler.model import address as addr
from reconciler.model import views as nz
from reconciler.model.manifest_set import ManifestSet
from reconciler.model.remote import RemoteClientPackage
from reconciler.remote.client import VcitaClient
from reconciler.remote.discovery import Discovery, discover
from reconciler.state.store import ResourceState, State, StateStore


def _instant(text: str | None) -> datetime:
    """When a payment request was opened, as an instant (unknown or unreadable: last)."""
    try:
        moment = datetime.fromisoformat((text or "").replace("Z", "+00:00"))
    except ValueError:
        return _LAST
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_LAST = datetime.max.replace(tzinfo=UTC)


@dataclass
class DiscoverResult:
    """What an ``import --discover`` adopted and what it left."""

    catalog: list[tuple[str, str]] = field(default_factory=list)  # (address, id)
    adopted: list[tuple[str, RemoteClientPackage]] = field(default_factory=list)
    unmatched: list[RemoteClientPackage] = field(default_factory=list)
    ambiguous: list[tuple[list[str], list[str]]] = field(default_factory=list)  # (addresses, ids)
    unresolved: list[tuple[str, str]] = field(default_factory=list)  # (address, why)
    discovery: Discovery | None = None
    state: State | None = None


async def discover_and_adopt(api: VcitaClient, desired: ManifestSet, state: State, store: StateStore) -> DiscoverResult:
    """Find, match and record (one state write when anything matched); see the module docstring."""
    out = DiscoverResult()
    found = await discover(api)
    out.discovery = found
    owned = {rs.id for rs in state.resources.values()}
    records: dict[str, ResourceState] = {}

    # Catalog packages the client packages name: tracked, or adopted now by their unique name.
    catalog_ids = {addr.name_of(a): rs.id for a, rs in state.resources.items() if addr.is_catalog(a)}
    wanted_catalog = {d.spec.package.name for d in desired.client_packages.values() if d.spec.package.name}
    untracked_names = [n for n in sorted(wanted_catalog) if n not in catalog_ids and n in desired.catalog_packages]
    if untracked_names:
        listed = await api.list_catalog_packages(include_items=True)
        for name in untracked_names:
            display = desired.catalog_packages[name].spec.name.strip()
            same = [p for p in listed if p.name.strip() == display and p.id not in owned]
            if len(same) == 1:
                pkg = same[0]
                records[addr.catalog(name)] = ResourceState.of_catalog(pkg)
                catalog_ids[name] = pkg.id
                out.catalog.append((addr.catalog(name), pkg.id))

    emails = sorted({(d.spec.client.email or "").lower()
                     for d in desired.client_packages.values() if d.spec.client.email})
    with_email = {e: (await api.clients_with_email(e)) for e in emails}
    # an e-mail several clients have names none of them: adopting either could be the wrong one
    by_email = {e: (found[0] if len(found) == 1 else None) for e, found in with_email.items()}

    # Identity of each untracked client-package object -> its addresses.
    groups: dict[tuple[str, str, str | None, str | None], list[str]] = {}
    for _name, doc in sorted(desired.client_packages.items()):
        address = doc.address
        if address in state.resources:
            continue
        ref = doc.spec.client
        client = ref.id if ref.id is not None else getattr(by_email.get((ref.email or "").lower()), "id", None)
        package = (doc.spec.package.id if doc.spec.package.id is not None
                   else catalog_ids.get(str(doc.spec.package.name)))
        if client is None or package is None:
            shared = len(with_email.get((ref.email or "").lower(), ())) > 1
            why = (("several clients have its e-mail: write the client's UID" if shared else
                    "its client is not in this business") if client is None else
                   f"{addr.catalog(str(doc.spec.package.name))} is neither tracked nor found by its name")
            out.unresolved.append((address, why))
            continue
        valid_from = doc.spec.valid_from.isoformat() if doc.spec.valid_from is not None else None
        price = nz.money(doc.spec.price) if doc.spec.price is not None else None
        groups.setdefault((client, package, valid_from, price), []).append(address)

    free = sorted((cp for cp in found.packages if cp.id not in owned),
                  key=lambda cp: (_instant(found.opened_at.get(cp.id)), cp.id))
    pending_at = {pc.address for pc in state.pending.values()}
    repeats = {d.address for d in desired.client_packages.values() if d.spec.repeat_purchase}
    for addresses in groups.values():
        addresses.sort(key=lambda a: (a not in pending_at, a in repeats, a))
    taken: set[str] = set()
    # the narrower identities first (declaring valid_from, then price): a wider one would take their package
    for (client, package, valid_from, price), addresses in sorted(
            groups.items(), key=lambda kv: (kv[0][2] is None, kv[0][3] is None)):
        candidates = [cp for cp in free if cp.id not in taken and cp.client_id == client and cp.package_id == package
                      and (valid_from is None
                           or (cp.valid_from is not None and cp.valid_from.isoformat() == valid_from))
                      and (price is None or (cp.price is not None and nz.money(cp.price) == price))]
        if not candidates:
            continue
        if len(candidates) > len(addresses):
            out.ambiguous.append((addresses, [cp.id for cp in candidates]))
            taken.update(cp.id for cp in candidates)
            continue
        for address, cp in zip(addresses, candidates, strict=False):  # fewer candidates than addresses
            records[address] = ResourceState.of_client(cp)
            taken.add(cp.id)
            out.adopted.append((address, cp))
    out.unmatched = [cp for cp in free if cp.id not in taken]
    if out.adopted or out.catalog:
        adopted_ids = {rs.id for rs in records.values()}
        settled = {k for k, pc in state.pending.items() if pc.address in records}
        new = state.replace(
            resources={**state.resources, **records},
            pending={k: v for k, v in state.pending.items() if k not in settled},
            archived={k: v for k, v in state.archived.items() if k not in adopted_ids})
        out.state = store.write(new, expected_serial=state.serial)
    return out
