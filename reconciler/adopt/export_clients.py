"""``reconciler export``, client packages: one ``client-packages.yaml`` of ``ClientPackage``
documents for every client package vcita's second memory shows (its payment requests, each item
confirmed by the link back, ``remote/discovery.py``), recorded in state so that the next plan shows
no changes.

* Names: ``<catalog manifest name>-<client id>`` (slugified, at most 63 characters); packages
  that would share a name get a suffix from their vcita id.
* Values: ``client`` (its UID), ``package`` (the ``metadata.name`` of its exported or tracked
  catalog package, else ``{id: UID}``), ``valid_from``, ``valid_until`` and ``price``: the fields of
  its identity and validity.  Credits and matter are left out (not managed).  Several packages of
  the same client, catalog package, ``valid_from`` and price (repeat purchases) get
  ``repeat_purchase: true`` on all but the oldest.
* Left out: packages the state already tracks (under any address) or has archived, and those of
  the client and catalog package of a pending create (a create whose answer was lost: such a
  package may be the one it made, which the next plan adopts at the create's address; recorded
  under an export name instead, the pending create could never be settled, and once forgotten
  its object would be sold again).
* An existing ``client-packages.yaml`` (with ``force``) is added to, never replaced: its documents,
  comments and formatting stay as they are (the team's own objects, applied or not), and the new
  documents follow it, named apart from every object the folder's manifests or the state hold.  A
  file that cannot be read is refused: what it holds cannot be told, so nothing is written.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from reconciler.adopt.export import MAX_NAME, ExportRefused, slugify
from reconciler.model import address as addresses
from reconciler.model import views as nz
from reconciler.model.manifest import API_VERSION
from reconciler.model.remote import RemoteClientPackage
from reconciler.remote.discovery import Discovery
from reconciler.state.store import ResourceState, State

FILE_NAME = "client-packages.yaml"


@dataclass
class ClientExport:
    """The client-package file and the state entries it brings (``path`` None: nothing to write)."""

    path: Path | None = None
    text: str = ""
    #: documents of the existing file kept as they were (``text`` adds to it); None: a new file
    kept_documents: int | None = None
    resources: dict[str, ResourceState] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: packages left out because a pending create may have made them (said as a warning)
    held: list[tuple[str, str]] = field(default_factory=list)


def _names(packages: list[RemoteClientPackage], catalog: Mapping[str, str]) -> dict[str, str]:
    groups: dict[str, list[str]] = {}
    for cp in packages:
        base = slugify(f"{catalog.get(cp.package_id, 'package')}-{cp.client_id}")
        groups.setdefault(base, []).append(cp.id)
    out = {}
    for base, ids in groups.items():
        for rid in ids:
            if len(ids) == 1:
                out[rid] = base
            else:
                suffix = slugify(rid)[:10]
                out[rid] = f"{base[:MAX_NAME - len(suffix) - 1].rstrip('-')}-{suffix}"
    return out


def prepare_clients(found: Discovery, catalog: Mapping[str, str], state: State, out_dir: Path, *, schema_ref: str,
                    force: bool = False) -> ClientExport:
    """``catalog``: remote catalog id -> its manifest name (exported now, or tracked)."""
    result = ClientExport()
    known = {rs.id for rs in state.resources.values()} | set(state.archived)
    held = _pending_for(state)
    fresh = [cp for cp in found.packages if cp.id not in known and held(cp) is None]
    result.skipped = [(cp.id, "already tracked or archived in the state") for cp in found.packages if cp.id in known]
    result.held = [(cp.id, f"it may be the client package of {held(cp)}, whose create's answer was lost: "
                               "'reconciler plan' settles it (adopts it there when found); export again after")
                       for cp in found.packages if cp.id not in known and held(cp) is not None]
    if not fresh:
        return result
    fresh.sort(key=lambda cp: (found.opened_at.get(cp.id, ""), cp.id))
    names = _names(fresh, catalog)
    path = out_dir / FILE_NAME
    existing: str | None = None
    if path.exists() and not force:
        raise ExportRefused(f"export refused, nothing was written: {path} exists",
                            hint="--force adds the client packages found to it, keeping everything it holds.")
    if path.exists():
        existing, kept = _existing(path)
        result.kept_documents = kept
    taken = set(state.resources) | _declared(out_dir)
    seen: set[tuple[str, str, str | None, str | None]] = set()
    docs = []
    for cp in fresh:
        name = names[cp.id]
        address = addresses.client(name)
        if address in taken:  # a name the team's manifests (or the state) use: told apart by the id
            suffix = slugify(cp.id)[:10]
            name = f"{name[:MAX_NAME - len(suffix) - 1].rstrip('-')}-{suffix}"
            address = addresses.client(name)
        if address in taken:
            result.skipped.append((cp.id, f"{address} is declared or tracked as another client package"))
            continue
        taken.add(address)
        spec = CommentedMap()
        spec["client"] = cp.client_id
        spec["package"] = catalog.get(cp.package_id, {"id": cp.package_id})
        if cp.valid_from is not None:
            spec["valid_from"] = cp.valid_from.isoformat()
        if cp.valid_until is not None:
            spec["valid_until"] = cp.valid_until.isoformat()
        price = nz.money(cp.price)
        if price is not None:
            spec["price"] = float(price) if "." in price else int(price)
        identity = (cp.client_id, cp.package_id, spec.get("valid_from"), price)
        if identity in seen:
            spec["repeat_purchase"] = True
        seen.add(identity)
        doc = CommentedMap()
        doc["apiVersion"] = API_VERSION
        doc["kind"] = "ClientPackage"
        doc["metadata"] = CommentedMap(name=name)
        doc["spec"] = spec
        doc.yaml_set_start_comment(f"vcita client package id: {cp.id}")
        docs.append(doc)
        result.resources[address] = ResourceState.of_client(cp)
    if not docs:
        return result
    y = YAML(typ="rt")
    y.width = 1 << 16
    buf = io.StringIO()
    y.dump_all(docs, buf)
    result.path = path
    if existing is not None:
        head = existing.rstrip()
        sep = "\n" if head.endswith("\n---") or head == "---" or not head else "\n---\n"
        result.text = (head + sep + "# Added by 'reconciler export': client packages its payment requests show.\n"
                       + buf.getvalue())
        return result
    result.text = (f"# yaml-language-server: $schema={schema_ref}\n#\n# Exported from vcita by 'reconciler export': "
                   "the client packages its payment requests show.\n" + buf.getvalue())
    return result


def _pending_for(state: State) -> Callable[[RemoteClientPackage], str | None]:
    """The address of a pending client-package create a package may belong to (same client and
    catalog package, as far as the intent recorded them), else None."""
    intents = [(pc.address, pc.details.get("client_id"), pc.details.get("package_id"))
               for pc in state.pending.values() if pc.kind == "ClientPackage"]

    def held(cp: RemoteClientPackage) -> str | None:
        for address, client_id, package_id in intents:
            if client_id in (None, cp.client_id) and package_id in (None, cp.package_id):
                return address
        return None

    return held


def _existing(path: Path) -> tuple[str, int]:
    """The text of the client-package file export adds to, and how many documents it holds;
    ExportRefused when it cannot be read (what it holds cannot be told: nothing is written)."""
    from ruamel.yaml.error import YAMLError

    from reconciler.core.fsutil import read_regular

    try:
        text = read_regular(path).decode("utf-8")
        docs = [d for d in YAML(typ="rt").load_all(text) if d is not None]
    except (OSError, UnicodeDecodeError, YAMLError) as e:
        raise ExportRefused(f"export refused, nothing was written: {path} cannot be read to add the client packages "
                            f"found to it ({getattr(e, 'strerror', None) or type(e).__name__})",
                            hint="Fix the file (reconciler validate locates its errors), or move it aside.") from None
    return text, len(docs)


def _declared(out_dir: Path) -> set[str]:
    """The addresses the manifests in ``out_dir`` declare (names export must not take), read
    document by document: a folder whose manifests do not load as a whole (a reference to a
    catalog package declared elsewhere, a file with errors) still has the names of its valid
    documents taken; what cannot be read at all the next plan reports at its file and line."""
    from reconciler.core.errors import ManifestError
    from reconciler.manifest.files import FileTooLarge, NotRegularFile, discover, read_bounded
    from reconciler.manifest.load import load_text

    if not out_dir.is_dir():
        return set()
    try:
        files = discover([out_dir])
    except ManifestError:  # no manifests there (or a folder that cannot be walked): no names taken
        return set()
    names: set[str] = set()
    for f in files:
        try:
            text = read_bounded(f).decode("utf-8")
        except (OSError, UnicodeDecodeError, FileTooLarge, NotRegularFile):
            continue
        docs, _ = load_text(text.removeprefix("\ufeff"), str(f))
        names.update(str(getattr(doc, "address", "")) for doc, _ in docs)
    return names
