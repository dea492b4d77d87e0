"""``reconciler export``: adopt a whole business — a manifest per catalog package, recorded in state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler.cli.common import open_business, run_async
from reconciler.cli.options import DEFAULT_MANIFESTS, state_option, target_options


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=DEFAULT_MANIFESTS, show_default=True,
              metavar="DIR", help="Folder to write the manifests to (its .reconciler/ folder holds the state).")
@click.option("--force", is_flag=True,
              help="Write over catalog-package files that exist (one that differs from what export writes is kept "
                   "beside it, one that holds other documents is refused) and add to an existing "
                   "client-packages.yaml (what it holds is kept as it is).")
@click.option("--skip-tracked", is_flag=True,
              help="Leave out packages the state already tracks under another name (instead of refusing).")
@click.option("--schema", "schema_ref", metavar="PATH_OR_URL",
              help="The $schema of the editor line (default: schema/reconciler-v1.schema.json of the "
                   "current folder, relative to DIR, written there when it does not exist).")
@state_option
@target_options
@click.pass_obj
def export(obj: Any, /, out_dir: str, force: bool, skip_tracked: bool, schema_ref: str | None,
           state_path: str | None, **kw: Any) -> int:
    """Write a manifest for every catalog package of the business, and track them.

    One file per package in DIR, named after the package (slugified; packages with names that
    slugify alike get a suffix from their vcita id), with normalised values and the vcita id in a
    comment. Each package is recorded in state as catalog_package.NAME, so the next 'reconciler
    plan DIR' shows no changes. Refused, with nothing written, when a file exists (see --force)
    or the state already tracks a package differently. Client packages are found through the
    business's payment requests (the second memory) and written to DIR/client-packages.yaml; when
    the target's API does not serve that list, they are left out (and it says so): adopt each
    with 'reconciler import client_package.NAME UID'.
    """
    from reconciler.adopt import export as ex
    from reconciler.refresh.full import target_ref

    out = Path(out_dir)
    biz = open_business(kw, [str(out)], state_path, writes=True)
    target, store = biz.target, biz.store
    ref = schema_ref or ex.schema_ref_for(out, Path.cwd())

    async def fetch() -> tuple[Any, dict[str, str], Any]:
        from reconciler.remote.discovery import DiscoveryUnavailable, discover

        async with biz.client() as api:
            packages = await api.list_catalog_packages(include_items=True)
            services = {s.id: s.name for s in await api.list_services()}
            try:
                found: Any = await discover(api)
            except DiscoveryUnavailable as exc:
                found = exc
            return packages, services, found

    with store.lock("export"):
        state = store.load()
        store.check_target(state, target_ref(target))
        state = state.for_target(target_ref(target))
        packages, services, found = run_async(fetch())
        plan = ex.prepare(packages, services, state, out, schema_ref=ref, force=force, skip_tracked=skip_tracked)
        clients = None
        if not isinstance(found, Exception):
            from reconciler.adopt.export_clients import prepare_clients
            from reconciler.model.address import is_catalog, name_of

            names = {f.remote_id: f.name for f in plan.files}
            names.update({rs.id: name_of(a) for a, rs in state.resources.items() if is_catalog(a)})
            clients = prepare_clients(found, names, state, out, schema_ref=ref, force=force)
        ex.write(plan, store, state,
                 extra_file=(clients.path, clients.text) if clients is not None and clients.path else None,
                 extra_resources=clients.resources if clients is not None else None)
    console = obj.console
    if isinstance(found, Exception):
        from reconciler.core.safetext import printable

        console.warn(f"client packages not exported: {printable(str(found), limit=400)}")
    schema_file = Path.cwd() / ex.SCHEMA_FILE
    if schema_ref is None and plan.files and not schema_file.exists():
        # The editor line points there: write the schema, so that it is not a dangling reference.
        import json

        from reconciler.core.fsutil import atomic_write_text
        from reconciler.model.schema import manifest_schema

        try:
            schema_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(schema_file, json.dumps(manifest_schema(), indent=2, sort_keys=True) + "\n", mode=0o644)
        except OSError as e:  # the export itself is done and recorded: say so, do not fail it
            console.warn(f"could not write {ex.SCHEMA_FILE} ({e.strerror or e}): the files' editor line points "
                         "to it; 'reconciler schema --out FILE' writes it")
        else:
            console.info(f"Wrote the manifest JSON Schema to {ex.SCHEMA_FILE} (the files' editor line points to it).")
    for rid, why in plan.skipped:
        console.warn(f"not exported: {rid}: {why}")
    for rid, why in clients.held if clients is not None else ():
        console.warn(f"client package not exported: {rid}: {why}")
    for path, beside in plan.kept:
        console.warn(f"{path} was overwritten with vcita's values; the file as it was (your comments, edits not "
                     f"applied yet) is kept as {beside}, which no plan reads: compare them and carry over what "
                     "you meant to keep")
    n = len(plan.files)
    console.out(f"Exported {n} catalog package{'s' if n != 1 else ''} to {out}/ and recorded "
                f"{'them' if n != 1 else 'it'} in {store.where}.", style="green")
    if clients is not None:
        m = len(clients.resources)
        added = (f", after the {clients.kept_documents} document(s) it held, kept as they were"
                 if clients.kept_documents is not None else "")
        console.out(f"Exported {m} client package{'s' if m != 1 else ''} (found through payment requests) to "
                    f"{clients.path or out / 'client-packages.yaml'}{added}, and recorded "
                    f"{'them' if m != 1 else 'it'}.", style="green")
    if n:
        hint = "" if clients is not None else (" Client packages: 'reconciler import client_package.NAME UID' "
                                                "for each.")
        console.info(f"Next: 'reconciler plan {out}' should show no changes.{hint}")
    return 0
