"""``reconciler import ADDRESS ID``: adopt one existing vcita object into state."""

from __future__ import annotations

from typing import Any

import click

from reconciler.cli.common import client_for, resolve, run_async, state_option, target_options
from reconciler.cli.manifest_cmds import manifest_paths


@click.command("import")
@click.argument("address")
@click.argument("remote_id", metavar="ID")
@click.option("--manifests", "manifests", type=click.Path(), multiple=True,
              help="Manifest files or folders (default: manifests).")
@state_option
@target_options
@click.pass_obj
def import_(obj: Any, address: str, remote_id: str, manifests: tuple[str, ...], state_path: str | None,
            **kw: Any) -> int:
    """Adopt an existing object: track vcita object ID as ADDRESS.

    ADDRESS is catalog_package.NAME or client_package.NAME, NAME being a manifest's
    metadata.name. A client package (vcita cannot list them) is checked to exist and to match
    the manifest's client and package; this is also how an 'unknown outcome' create is resolved
    once you have found the client package in vcita. Nothing in vcita is changed.
    """
    from reconciler.adopt import adopt
    from reconciler.manifest import load_manifests
    from reconciler.refresh import target_ref
    from reconciler.state import StateStore

    paths = manifest_paths(manifests)
    desired = load_manifests(paths)
    target = resolve(kw, paths)
    store = StateStore.locate(paths, state_path)
    with store.lock("import"):
        state = store.load()
        store.check_target(state, target_ref(target))
        if state.target is None:
            state = state.for_target(target_ref(target))

        async def go() -> Any:
            async with client_for(target, kw) as api:
                return await adopt(api, desired, state, address, remote_id, store)

        _, what = run_async(go())
    obj.console.out(f"{address}: imported {what}", style="green")
    return 0
