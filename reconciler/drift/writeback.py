"""``drift --write-back``: accept vcita's values — into the manifests, and as the new baseline.

For each object with remote drift (optionally only the addresses named with ``--only``):

* a managed field changed only in vcita is rewritten in its manifest file to vcita's value, in
  place (``reconciler.manifest.yamledit``: ruamel round-trip, comments and formatting kept);
* a field changed in vcita *and* in the manifest to another value is a conflict: it is left
  alone and reported (the manifest edit is someone's intent too); a field changed on both sides
  to the same value needs no edit;
* fields the manifest does not set are not added to it (they stay unmanaged);
* the object's state entry then records vcita's current view as last applied (``applied`` and
  ``fingerprint``), so the drift is not reported again — unless something was left alone.

Every edited document is validated and checked to mean exactly vcita's values before any file
is written; files are replaced atomically (same mode), then the state is written (under the lock
the caller holds).  Vanished objects and pending changes are never touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.core.errors import ConfigError
from reconciler.core.fsutil import atomic_write_text
from reconciler.drift.compare import compare, flatten
from reconciler.drift.model import DriftReport, ObjectDrift, WriteBack, WriteBackSkip, WriteBackValue
from reconciler.manifest.load import load_manifests
from reconciler.manifest.setedit import parse_member, set_member
from reconciler.manifest.yamledit import RoundTripFile, WriteBackError, plain, set_catalog, set_client
from reconciler.model import address as addr
from reconciler.model import views as nz
from reconciler.model.manifest import DOCUMENT_ADAPTER, CatalogPackage, ClientPackage, ClientPackageSet, set_member_spec
from reconciler.model.manifest_set import ManifestSet
from reconciler.planner.actual import Actual
from reconciler.state.store import ResourceState, State, StateStore, utc_now

__all__ = ["WriteBackError", "plan_edits", "write_back"]

ACCEPTABLE = ("drift", "drift_and_pending", "unmanaged_drift")


def plan_edits(report: DriftReport, only: Sequence[str] = ()) -> tuple[
        list[WriteBackValue], list[WriteBackSkip], list[str]]:
    """What write-back would do: values to write (file left empty), skips, addresses to accept."""
    chosen = [o for o in report.objects if o.status in ACCEPTABLE]
    if only:
        known = {o.address for o in chosen}
        unknown = [a for a in only if a not in known]
        if unknown:
            raise ConfigError(f"{', '.join(unknown)}: no remote drift to accept",
                              hint="'reconciler drift' lists the objects that drifted in vcita.")
        chosen = [o for o in chosen if o.address in only]
    values: list[WriteBackValue] = []
    skips: list[WriteBackSkip] = []
    accepted: list[str] = []
    for o in chosen:
        left_alone = _object_edits(o, values, skips)
        if not left_alone and any(f.remote_drift for f in o.fields):
            accepted.append(o.address)
    for o in report.objects:
        if o.status == "vanished" and (not only or o.address in only):
            skips.append(WriteBackSkip(address=o.address, path="(object)",
                                       reason="no longer exists in vcita; nothing to write back"))
    return values, skips, accepted


def _object_edits(o: ObjectDrift, values: list[WriteBackValue], skips: list[WriteBackSkip]) -> bool:
    """Collect the edits of one object; True when some drift had to be left alone."""
    left = False
    for f in o.fields:
        if not f.remote_drift or not f.managed:
            continue
        if f.pending and f.remote != f.desired:
            skips.append(WriteBackSkip(address=o.address, path=f.path, reason=(
                f"conflict: changed in vcita to {f.remote!r} and in the manifest to {f.desired!r}; "
                "edit the manifest (or apply it), then run drift again")))
            left = True
        elif not f.pending:
            values.append(WriteBackValue(address=o.address, path=f.path, file="", value=f.remote))
    return left


def write_back(report: DriftReport, desired: ManifestSet, state: State, actual: Actual, store: StateStore, *,
               paths: Sequence[str], only: Sequence[str] = ()) -> DriftReport:
    """Accept the remote drift of ``report``; return the report of after, with what was done."""
    values, skips, accepted = plan_edits(report, only)
    by_file: dict[str, list[WriteBackValue]] = {}
    for v in values:
        member = parse_member(v.address)
        src = desired.sources.get(addr.client_set(member[0]) if member else v.address)
        if src is None:
            raise WriteBackError(f"{v.address}: not found in the manifests")
        by_file.setdefault(src.file, []).append(v.model_copy(update={"file": src.file}))
    refused = {s.address for s in skips}
    new_texts: dict[str, str] = {}
    for file, edits in sorted(by_file.items()):
        text, skipped = _rewrite(Path(file), edits)
        skips.extend(skipped)
        refused |= {s.address for s in skipped}
        new_texts[file] = text
    written = [v.model_copy(update={"file": f}) for f, edits in sorted(by_file.items()) for v in edits
               if not any(s.address == v.address and s.path == v.path for s in skips)]
    accepted = [a for a in accepted if a not in refused]
    for file, text in new_texts.items():
        p = Path(file)
        atomic_write_text(p, text, mode=os.stat(p).st_mode & 0o777)
    new_state = state
    if accepted:
        new_state = store.write(_baselines(state, actual, accepted), expected_serial=state.serial)
    after = load_manifests(list(paths)) if new_texts else desired
    fresh = compare(after, new_state.resources, actual, target=report.target, created_at=report.created_at,
                    state_lineage=new_state.lineage, state_serial=new_state.serial)
    wb = WriteBack(files=tuple(sorted({v.file for v in written})), values=tuple(written),
                   accepted=tuple(accepted), skipped=tuple(skips))
    return fresh.model_copy(update={"write_back": wb})


def _rewrite(path: Path, edits: list[WriteBackValue]) -> tuple[str, list[WriteBackSkip]]:
    """The new text of one file with ``edits`` applied, each edited document validated."""
    try:
        text = path.read_text("utf-8")
    except OSError as e:
        raise WriteBackError(f"cannot read {path}: {e.strerror or e}") from None
    rt = RoundTripFile(text, str(path))
    skips: list[WriteBackSkip] = []
    touched: dict[str, Any] = {}
    before: dict[str, dict[str, Any]] = {}  # a set member's view as the set says it before the edits
    for v in edits:
        member = parse_member(v.address)
        if member is not None:
            doc = rt.find("ClientPackageSet", member[0])
            if v.address not in before:
                before[v.address] = _member_view(path, v.address, doc, member[1])
            reason = set_member(doc.get("spec"), member[1], v.path, v.value, before[v.address])
        else:
            prefix, name = v.address.split(".", 1)
            kind = "CatalogPackage" if prefix == "catalog_package" else "ClientPackage"
            doc = rt.find(kind, name)
            setter = set_catalog if kind == "CatalogPackage" else set_client
            reason = setter(doc.get("spec"), v.path, v.value)
        if reason:
            skips.append(WriteBackSkip(address=v.address, path=v.path, reason=reason))
            continue
        touched[v.address] = doc
    for address, doc in touched.items():
        done = [v for v in edits if v.address == address and
                not any(s.path == v.path for s in skips if s.address == address)]
        if address in before:
            _check_member(path, address, doc, done, before[address])
        else:
            _check(path, address, doc, done)
    return rt.dump(), skips


def _member_view(path: Path, address: str, doc: Any, key: str) -> dict[str, Any]:
    """The flattened view of the set member ``key`` as the set document ``doc`` says it."""
    try:
        model = DOCUMENT_ADAPTER.validate_python(plain(doc))
    except ValueError as e:
        first = str(e).splitlines()[1:3]
        raise WriteBackError(f"{path}: {address}: the set is not valid: {' '.join(s.strip() for s in first)}",
                             hint="Nothing was written. Run 'reconciler validate'.") from None
    assert isinstance(model, ClientPackageSet)
    member = next((c for c in model.spec.clients if c.key == key), None)
    if member is None:
        raise WriteBackError(f"{path}: {address}: no such member in the set any more; run drift again")
    spec = set_member_spec(model.spec, member)
    return flatten(nz.client_desired(spec, spec.client.id, spec.package.id))


def _check_member(path: Path, address: str, doc: Any, edits: list[WriteBackValue], before: dict[str, Any]) -> None:
    """The edited set is valid and now means, for this member, what it meant but for the edited
    values, which read back as vcita's (a member's end computed from valid_for must not move)."""
    member = parse_member(address)
    assert member is not None
    try:
        after = _member_view(path, address, doc, member[1])
    except WriteBackError as e:
        raise WriteBackError(f"{path}: {address} would become invalid ({e.message})",
                             hint="Nothing was written. Change the set by hand.") from None
    wanted = {**before, **{v.path: v.value for v in edits}}
    wanted = {k: v for k, v in wanted.items() if v is not None}
    after = {k: v for k, v in after.items() if v is not None}
    if after != wanted:
        diff = sorted(k for k in wanted.keys() | after.keys() if wanted.get(k) != after.get(k))
        raise WriteBackError(f"{path}: {address}: the rewritten set reads back differently for {', '.join(diff)}; "
                             "nothing was written", hint="Change the set by hand.")


def _check(path: Path, address: str, doc: Any, edits: list[WriteBackValue]) -> None:
    """The edited document is valid and now means vcita's value for every edited field."""
    try:
        model = DOCUMENT_ADAPTER.validate_python(plain(doc))
    except ValueError as e:
        first = str(e).splitlines()[1:3]
        raise WriteBackError(f"{path}: {address} would become invalid: {' '.join(s.strip() for s in first)}",
                             hint="Nothing was written. Change the manifest by hand.") from None
    if isinstance(model, CatalogPackage):
        view = flatten(nz.catalog_desired(model.spec))
    else:
        assert isinstance(model, ClientPackage)  # write-back edits catalog packages and client packages only
        view = flatten(nz.client_desired(model.spec, model.spec.client.id, model.spec.package.id))
    for v in edits:
        if view.get(v.path) != v.value:
            raise WriteBackError(f"{path}: {address} {v.path}: the rewritten value reads back as "
                                 f"{view.get(v.path)!r}, not {v.value!r}; nothing was written")


def _baselines(state: State, actual: Actual, addresses: list[str]) -> State:
    """``state`` with vcita's current view recorded as last applied for ``addresses``."""
    from reconciler.plan.document import fingerprint

    new = state
    for address in addresses:
        tracked = state.resources[address]
        if addr.is_catalog(address):
            obj = actual.catalog_packages[tracked.id]
            credit_ids: dict[str, str] = {}
        else:
            cobj = actual.client_packages[tracked.id]
            assert cobj is not None
            obj, credit_ids = cobj, dict(cobj.credit_ids)
        new = new.with_resource(address, ResourceState(
            kind=tracked.kind, id=tracked.id, fingerprint=fingerprint(obj.view), applied=dict(obj.view),
            booking_credit_ids=credit_ids or dict(tracked.booking_credit_ids), updated_at=utc_now()))
    return new
