"""Adoption of existing remote objects into state: ``reconciler import ADDRESS ID`` and
``reconciler import --from FILE``.

Client packages cannot be listed, so after an unknown outcome (or when starting to manage an
existing business) a person names the object.  Each one is read from vcita and adopted only when
it matches its manifest: a catalog package's display name, a client package's client and
catalog package; a mismatch is refused with the differences.  All the objects of one import are
checked first and recorded by one state write (all or nothing); a pending create of an address
is resolved, and an archived record of the id is taken back, by that same write.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from reconciler.core.errors import NotFoundError, ReconcilerError
from reconciler.model import address as addresses
from reconciler.model.manifest_set import ManifestSet
from reconciler.remote.client import VcitaClient
from reconciler.state.store import ADDRESS_RE, ResourceState, State, StateStore

#: A file of pairs larger than this is not an onboarding list (it is read whole).
MAX_PAIRS_FILE = 16 << 20


class ImportRefused(ReconcilerError):
    """The object cannot be adopted for that address."""


def read_pairs(path: str) -> list[tuple[str, str]]:
    """``(address, id)`` pairs from a CSV file (``address,id`` per line, an optional header) or a
    YAML file (a list of ``{address: ..., id: ...}``, or a mapping of address to id)."""
    from reconciler.core.fsutil import read_regular

    try:
        data = read_regular(path)
    except FileNotFoundError:
        raise ImportRefused(f"no file at {path}") from None
    except OSError as e:
        raise ImportRefused(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_PAIRS_FILE:
        raise ImportRefused(f"{path} is larger than {MAX_PAIRS_FILE >> 20} MiB; split it")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ImportRefused(f"{path} is not UTF-8 text") from None
    pairs: list[tuple[str, str]] = []
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ImportRefused(f"{path} is not valid YAML: {e}".splitlines()[0]) from None
        rows = list(doc.items()) if isinstance(doc, dict) else doc
        if not isinstance(rows, list):
            raise ImportRefused(f"{path}: expected a list of {{address, id}} or a mapping of address to id")
        for n, row in enumerate(rows, start=1):
            if isinstance(row, dict):
                row = (row.get("address"), row.get("id"))
            if not (isinstance(row, (tuple, list)) and len(row) == 2 and all(isinstance(v, str) for v in row)):
                raise ImportRefused(f"{path}: entry {n} is not an address and an id (both strings)")
            pairs.append((row[0].strip(), row[1].strip()))
    else:
        for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if n == 1 and row[0].strip().lower() == "address":
                continue  # a header
            if len(row) != 2:
                raise ImportRefused(f"{path}:{n}: expected 'address,id', found {len(row)} column(s)")
            pairs.append((row[0].strip(), row[1].strip()))
    if not pairs:
        raise ImportRefused(f"{path} holds no address and id to import")
    return pairs


async def adopt(api: VcitaClient, desired: ManifestSet, state: State, address: str, remote_id: str,
                store: StateStore) -> tuple[State, str]:
    """Check and record ``remote_id`` as ``address``; return the new state and a description."""
    new, described = await adopt_many(api, desired, state, [(address, remote_id)], store)
    return new, described[0]


async def adopt_many(api: VcitaClient, desired: ManifestSet, state: State, pairs: Sequence[tuple[str, str]],
                     store: StateStore) -> tuple[State, list[str]]:
    """Check every ``(address, id)`` against vcita and the manifests, then record them all with one
    state write; ImportRefused (nothing written) naming every pair that cannot be adopted."""
    _check_pairs(state, pairs)
    records: dict[str, ResourceState] = {}
    described: list[str] = []
    problems: list[str] = []
    # Catalog packages first: a client package's catalog package may be adopted by the same import.
    ordered = sorted(pairs, key=lambda p: not addresses.is_catalog(p[0]))
    for address, remote_id in ordered:
        try:
            rs, what = await _check_one(api, desired, state, records, address, remote_id)
        except ImportRefused as e:
            problems.append(e.message)
            continue
        records[address] = rs
        described.append(what)
    if problems:
        head = problems[0] if len(problems) == 1 else f"{len(problems)} of {len(pairs)} objects cannot be imported"
        raise ImportRefused(head if len(problems) == 1 else head + ":\n  " + "\n  ".join(problems),
                            hint="Nothing was imported. Fix the manifests or the ids, then import again.")
    adopted = {rs.id for rs in records.values()}
    settled = {pc.id for pc in state.pending.values() if pc.address in records}
    for address in sorted(records):  # an interrupted replacement: the package it replaces is archived
        if _replacing(state, address):
            state = state.archive_replaced(address, state.resources[address].id, records[address].id)
    new = state.replace(
        resources={**state.resources, **records},
        pending={k: v for k, v in state.pending.items() if k not in settled},
        archived={k: v for k, v in state.archived.items() if k not in adopted})
    new = store.write(new, expected_serial=state.serial)
    pending_addresses = {pc.address for pc in state.pending.values() if pc.id in settled}
    by_address = dict(zip([a for a, _ in ordered if a in records], described, strict=True))
    out = [by_address[a] + ("; its pending create is resolved" if a in pending_addresses else "")
           for a, _ in pairs]
    return new, out


def _check_pairs(state: State, pairs: Sequence[tuple[str, str]]) -> None:
    problems = []
    seen_addresses: set[str] = set()
    seen_ids: set[str] = set()
    tracked_ids = {rs.id: a for a, rs in state.resources.items()}
    for address, remote_id in pairs:
        if not ADDRESS_RE.match(address):
            problems.append(f"{address!r} is not an address (catalog_package.NAME, client_package.NAME or "
                            'client_package_set.NAME["CLIENT"])')
        elif address in state.resources and not _replacing(state, address):
            problems.append(f"{address} is already tracked as {state.resources[address].id} "
                            f"('reconciler state rm {address}' first if that is wrong)")
        elif address in seen_addresses:
            problems.append(f"{address} appears twice")
        if not remote_id or not remote_id.isalnum() or len(remote_id) > 64:
            problems.append(f"{remote_id!r} is not a vcita id")
        elif remote_id in tracked_ids:
            problems.append(f"{remote_id} is already tracked as {tracked_ids[remote_id]}")
        elif remote_id in seen_ids:
            problems.append(f"{remote_id} appears twice")
        seen_addresses.add(address)
        seen_ids.add(remote_id)
    if problems:
        raise ImportRefused(problems[0] if len(problems) == 1 else
                            f"{len(problems)} problems:\n  " + "\n  ".join(problems),
                            hint="Nothing was imported. Write catalog_package.NAME or client_package.NAME "
                                 "(NAME is the manifest's metadata.name) and the object's vcita id.")


def _replacing(state: State, address: str) -> bool:
    """Whether ``address`` has a pending create that replaces the package it tracks (a replacement
    whose outcome is unknown): importing the replacement's id resolves it, and archives the old one."""
    held = state.resources.get(address)
    return held is not None and any(pc.details.get("replaces") == held.id for pc in state.pending_for(address))


async def _check_one(api: VcitaClient, desired: ManifestSet, state: State, records: dict[str, ResourceState],
                     address: str, remote_id: str) -> tuple[ResourceState, str]:
    kind, name = address.split(".", 1)
    try:
        if kind == "catalog_package":
            doc = desired.catalog_packages.get(name)
            if doc is None:
                raise ImportRefused(f"{address}: no CatalogPackage named {name!r} in the manifests")
            pkg = await api.get_catalog_package(remote_id)
            if pkg.name.strip() != doc.spec.name.strip():
                raise ImportRefused(f"{remote_id} does not match {address}: its name is {pkg.name!r}, "
                                    f"the manifest's is {doc.spec.name!r}")
            return (ResourceState.of_catalog(pkg),
                    f"catalog package {pkg.id} ({pkg.name!r})")
        cdoc = desired.client_packages.get(name)  # a set member's name is its address's tail
        if cdoc is None or cdoc.address != address:
            what = "member of a ClientPackageSet" if kind == "client_package_set" else "ClientPackage named"
            raise ImportRefused(f"{address}: no {what} {name!r} in the manifests")
        cp = await api.get_client_package(remote_id)
        problems = []
        ref = cdoc.spec.client
        if ref.id is not None and cp.client_id != ref.id:
            problems.append(f"its client is {cp.client_id}, the manifest says {ref.id}")
        elif ref.email is not None:
            found = await api.clients_with_email(ref.email)
            if len(found) > 1:
                problems.append(f"{len(found)} clients have the e-mail {ref.email} "
                                f"({', '.join(c.id for c in found)}): write the client's UID in the manifest")
            elif not found or found[0].id != cp.client_id:
                problems.append(f"its client {cp.client_id} is not the client with e-mail {ref.email}")
        pref = cdoc.spec.package
        if pref.id is not None:
            want_pkg: str | None = pref.id
        else:
            wanted = addresses.catalog(str(pref.name))
            catalog = records.get(wanted) or state.resources.get(wanted)
            want_pkg = catalog.id if catalog is not None else None
        if want_pkg is None:
            problems.append(f"{addresses.catalog(str(pref.name))} is not tracked yet: apply or import it first")
        elif cp.package_id != want_pkg:
            problems.append(f"its package is {cp.package_id}, the manifest's is {want_pkg}")
        if problems:
            raise ImportRefused(f"{remote_id} does not match {address}: " + "; ".join(problems))
        return (ResourceState.of_client(cp),
                f"client package {cp.id} (client {cp.client_id}, package {cp.package_id})")
    except NotFoundError:
        what = kind.replace('_set', '').replace('_', ' ')
        raise ImportRefused(f"{address}: vcita has no {what} {remote_id} in business "
                            f"{api.target.business_id}") from None
