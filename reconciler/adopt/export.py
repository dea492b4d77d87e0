"""Adoption of a whole business: ``reconciler export`` writes a manifest per catalog package and
records each one in state, so that the next plan shows no changes.

* Names: ``metadata.name`` and the file name come from the package name, slugified
  (``"10 Piano Lessons"`` -> ``10-piano-lessons``).  Packages whose names slugify alike all get a
  suffix made from their vcita id (``bulk-package-x7k2q9``), so a name never depends on which
  other packages exist or on the order vcita lists them in.
* Values: normalised (money as numbers, enums upper-case, services as UIDs with their names in
  comments).  Every field reconciler can manage is written (a zero discount too), so later changes
  in vcita show up as drift; ``image_path`` only when set.  A header holds the editor schema line
  and the package's vcita id.
* Refusals, before anything is written: an existing file (unless ``force``; and even then a file
  holding other documents than the package export writes there, which overwriting would drop), a
  name already used
  by another manifest in the folder, a package another manifest in the folder already declares
  (its display name: a second manifest of it is refused by every plan), a package the state tracks
  under another address or an address the state tracks as another package (unless
  ``skip_tracked``, which leaves those out).
* ``force`` over a file that differs from what export writes (comments, edits not applied yet):
  the file as it was is kept beside it, ``NAME.yaml.before-export-<UTC time>`` (no plan reads it),
  and the command names it, so nothing a person wrote is lost unseen.
* Left out, and reported: deleted packages, and packages no valid manifest can describe (no
  items, more than 5 of a product, ...).  They stay unmanaged.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from reconciler.core.errors import ManifestError, ReconcilerError
from reconciler.core.fsutil import atomic_write_text
from reconciler.core.interrupts import deferred
from reconciler.model import address as addresses
from reconciler.model import views as nz
from reconciler.model.manifest import API_VERSION, DOCUMENT_ADAPTER
from reconciler.model.remote import RemoteCatalogPackage
from reconciler.state.store import ResourceState, State, StateStore

MAX_NAME = 63
SCHEMA_FILE = Path("schema") / "reconciler-v1.schema.json"


class ExportRefused(ReconcilerError):
    """Export would overwrite files or contradict the state; nothing was written."""


@dataclass(frozen=True)
class ExportedFile:
    name: str  # metadata.name
    path: Path
    remote_id: str
    package_name: str
    text: str
    resource: ResourceState


@dataclass
class Export:
    """What export will write: files, the state entries, and what it left out (id, why)."""

    files: list[ExportedFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: files ``force`` overwrites whose text differs from the new one: (path, their text), kept beside
    replaced: list[tuple[Path, str]] = field(default_factory=list)
    #: where ``write`` kept each of them
    kept: list[tuple[Path, Path]] = field(default_factory=list)


def slugify(name: str) -> str:
    """A metadata.name from a package name: lower-case ASCII letters, digits and single dashes."""
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:MAX_NAME].rstrip("-") or "package"


def assign_names(packages: list[RemoteCatalogPackage]) -> dict[str, str]:
    """remote id -> metadata.name, unique and independent of listing order."""
    groups: dict[str, list[str]] = {}
    for p in packages:
        groups.setdefault(slugify(p.name), []).append(p.id)
    out: dict[str, str] = {}
    for slug, ids in groups.items():
        if len(ids) == 1:
            out[ids[0]] = slug
            continue
        for n in (6, 10, 64):  # the shortest id prefix that tells the group apart
            suffixes = {rid: re.sub(r"[^a-z0-9]", "", rid.lower())[:n] or "x" for rid in ids}
            if len(set(suffixes.values())) == len(ids):
                break
        for rid, suffix in suffixes.items():
            out[rid] = f"{slug[:MAX_NAME - len(suffix) - 1].rstrip('-')}-{suffix}"
    taken: dict[str, str] = {}
    for rid in sorted(out):  # a suffixed name may equal another package's plain slug
        name = out[rid]
        while name in taken:
            name = f"{name[:MAX_NAME - 2]}-x"
        taken[name] = rid
        out[rid] = name
    return out


def _document(p: RemoteCatalogPackage, name: str, services: dict[str, str]) -> CommentedMap:
    spec = CommentedMap()
    spec["name"] = p.name
    spec["description"] = p.description or ""
    spec["price"] = nz.number(nz.money(p.price))
    spec["currency"] = p.currency.upper()
    spec["expiration"] = p.expiration
    spec["expiration_unit"] = p.expiration_unit
    items = CommentedSeq()
    for it in p.items or ():
        item = CommentedMap()
        item["total_bookings"] = it.total_bookings
        uids = CommentedSeq(sorted(it.services))
        uids.fa.set_flow_style()
        item["services"] = uids
        names = [services[s] for s in uids if s in services]
        if names:
            item.yaml_add_eol_comment(", ".join(names), "services")
        items.append(item)
    spec["items"] = items
    products = CommentedSeq()
    for pr in sorted(p.products, key=lambda x: x.id):
        entry = CommentedMap()
        entry["id"] = pr.id
        entry["quantity"] = pr.quantity
        if pr.name:
            entry.yaml_add_eol_comment(pr.name, "id")
        products.append(entry)
    if not products:
        products.fa.set_flow_style()
    spec["products"] = products
    spec["discount_amount"] = nz.number(nz.money(p.discount_amount)) if p.discount_amount is not None else 0
    spec["discount_unit"] = p.discount_unit or "F"
    if p.image_path:
        spec["image_path"] = p.image_path
    if p.online_payment_enabled is not None:
        spec["online_payment_enabled"] = p.online_payment_enabled
    doc = CommentedMap()
    doc["apiVersion"] = API_VERSION
    doc["kind"] = "CatalogPackage"
    doc["metadata"] = CommentedMap([("name", name)])
    doc["spec"] = spec
    return doc


def render(p: RemoteCatalogPackage, name: str, services: dict[str, str], schema_ref: str) -> str:
    """The manifest file of one package: schema line, id comment, the document."""
    y = YAML(typ="rt")
    y.width = 1 << 16
    y.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    y.dump(_document(p, name, services), buf)
    state_note = "" if p.active else "# Deactivated in vcita: clients cannot be assigned this package.\n"
    return (f"# yaml-language-server: $schema={schema_ref}\n#\n"
            f"# Exported from vcita by 'reconciler export'.\n# vcita catalog package id: {p.id}\n"
            f"{state_note}{buf.getvalue()}")


def schema_ref_for(out_dir: Path, cwd: Path) -> str:
    """The editor schema path as seen from ``out_dir``: the project's schema/ file."""
    import os

    return Path(os.path.relpath((cwd / SCHEMA_FILE).resolve(), out_dir.resolve())).as_posix()


def prepare(packages: list[RemoteCatalogPackage], services: dict[str, str], state: State, out_dir: Path, *,
            schema_ref: str, force: bool = False, skip_tracked: bool = False) -> Export:
    """Decide every file and state entry of an export; ExportRefused (nothing written) on conflict."""
    result = Export()
    live = []
    for p in sorted(packages, key=lambda x: x.id):
        if p.deleted_at:
            result.skipped.append((p.id, f"{p.name!r} is deleted in vcita"))
        else:
            live.append(p)
    names = assign_names(live)
    by_id = {rs.id: a for a, rs in state.resources.items() if addresses.is_catalog(a)}
    others, displayed = _catalog_in(out_dir)
    conflicts: list[str] = []
    for p in sorted(live, key=lambda x: names[x.id]):
        name = names[p.id]
        address = addresses.catalog(name)
        path = out_dir / f"{name}.yaml"
        text = render(p, name, services, schema_ref)
        try:
            DOCUMENT_ADAPTER.validate_python(_plain_doc(text))
        except ValueError as e:
            why = " ".join(s.strip() for s in str(e).splitlines()[1:3])
            result.skipped.append((p.id, f"{p.name!r} cannot be written as a valid manifest: {why}"))
            continue
        tracked_as = by_id.get(p.id)
        holder = state.resources.get(address)
        if (tracked_as is not None and tracked_as != address) or (holder is not None and holder.id != p.id):
            if skip_tracked:
                result.skipped.append((p.id, f"{p.name!r} is already tracked as {tracked_as or address}"))
                continue
            conflicts.append(f"{p.id} ({p.name!r}) is tracked as {tracked_as}" if tracked_as and tracked_as != address
                             else f"{address} is tracked as another package ({holder.id if holder else '?'})")
            continue
        if path.exists() and not force:
            conflicts.append(f"{path} exists")
            continue
        if name in others and others[name] != path.resolve():
            conflicts.append(f"CatalogPackage {name!r} is already defined in {others[name]}")
            continue
        twin = displayed.get(p.name)
        if twin is not None and twin[0] != name:
            # a second manifest of one package: a plan would refuse it, or, untracked, sell it again
            conflicts.append(f"{p.id} ({p.name!r}) is already declared as CatalogPackage {twin[0]!r} in {twin[1]}")
            continue
        if path.exists():
            old, lost = _overwritable(path, name, text)
            if lost is not None:
                conflicts.append(lost)
                continue
            if old is not None:
                result.replaced.append((path, old))
        rs = ResourceState.of_catalog(p)
        result.files.append(ExportedFile(name=name, path=path, remote_id=p.id, package_name=p.name, text=text,
                                         resource=rs))
    if conflicts:
        shown = "; ".join(conflicts[:5]) + (f"; and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        raise ExportRefused(f"export refused, nothing was written: {shown}",
                            hint="--force overwrites existing files; --skip-tracked leaves out packages the "
                                 "state already tracks under another name. Manifests that already declare the "
                                 "business (a lost state): 'reconciler import --discover' rebuilds the state from "
                                 "them instead.")
    return result


def _overwritable(path: Path, name: str, text: str) -> tuple[str | None, str | None]:
    """What ``force`` does with an existing file: (its text, to keep beside it, when it differs
    from ``text``; None when it is the same) and None, or (None, why it is refused): a file that
    cannot be read, or that holds documents besides CatalogPackage ``name`` (overwriting would
    drop them from the manifests: the objects they declare would be archived or never created)."""
    from reconciler.core.fsutil import read_regular

    try:
        old = read_regular(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, f"{path} cannot be read to check what overwriting it would lose ({getattr(e, 'strerror', e)})"
    if old == text:
        return None, None
    try:
        docs = [d for d in YAML(typ="rt").load_all(old) if d is not None]
    except YAMLError as e:
        return None, f"{path} is not YAML export can read ({type(e).__name__}): overwriting it could lose what it holds"
    others = [f"{d.get('kind', '?')} {(d.get('metadata') or {}).get('name', '?')}" if isinstance(d, dict) else "?"
              for d in docs if not (isinstance(d, dict) and d.get("kind") == "CatalogPackage"
                                    and isinstance(d.get("metadata"), dict) and d["metadata"].get("name") == name)]
    if others:
        return None, (f"{path} also declares {', '.join(others[:5])}{' and more' if len(others) > 5 else ''}, which "
                      "overwriting it would drop from the manifests (move them to another file first)")
    return old, None


def kept_name(path: Path) -> Path:
    """Where a file export overwrites is kept: beside it, under a name no plan reads and no run reuses."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return path.with_name(f"{path.name}.before-export-{stamp}")


def _plain_doc(text: str) -> Any:
    from reconciler.manifest.yamledit import plain

    return plain(YAML(typ="rt").load(text))


def _catalog_in(out_dir: Path) -> tuple[dict[str, Path], dict[str, tuple[str, Path]]]:
    """The CatalogPackages already declared by manifests in ``out_dir`` (when they load): by
    ``metadata.name`` (-> file), and by display name (-> ``metadata.name``, file)."""
    if not out_dir.is_dir():
        return {}, {}
    from reconciler.manifest.load import load_manifests

    try:
        ms = load_manifests([out_dir])
    except ManifestError:
        return {}, {}
    files = {name: Path(ms.sources[doc.address].file).resolve() for name, doc in ms.catalog_packages.items()}
    return files, {doc.spec.name: (name, files[name]) for name, doc in ms.catalog_packages.items()}


def write(export: Export, store: StateStore, state: State, *, extra_file: tuple[Path, str] | None = None,
          extra_resources: dict[str, ResourceState] | None = None) -> State:
    """Write the files (atomically, each), then the state recording them, in one write; the new
    state.  ``extra_file`` / ``extra_resources``: the client packages' file and records
    (``export_clients.py``).  A catalog file export replaces is kept beside it first
    (``export.replaced``).  A SIGINT/SIGTERM meanwhile is held until all are written
    (:func:`reconciler.core.interrupts.deferred`): never manifests without the state recording them."""
    new = state
    for f in export.files:
        new = new.with_resource(addresses.catalog(f.name), f.resource)
    for address, rs in (extra_resources or {}).items():
        new = new.with_resource(address, rs)
    with deferred():
        for path, old in export.replaced:  # kept before anything is overwritten
            beside = kept_name(path)
            atomic_write_text(beside, old, mode=0o644)
            export.kept.append((path, beside))
        for f in export.files:
            atomic_write_text(f.path, f.text, mode=0o644)
        if extra_file is not None:
            atomic_write_text(extra_file[0], extra_file[1], mode=0o644)
        if not export.files and not extra_resources:
            return state
        return store.write(new, expected_serial=state.serial)
