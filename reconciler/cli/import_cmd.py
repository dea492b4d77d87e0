"""``reconciler import ADDRESS ID``: adopt one existing vcita object into state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from reconciler.cli.common import open_business, run_async
from reconciler.cli.options import manifest_paths, state_option, target_options

T = TypeVar("T")


@click.command("import")
@click.argument("address", required=False)
@click.argument("remote_id", metavar="ID", required=False)
@click.option("--from", "from_file", type=click.Path(dir_okay=False), default=None,
              help="A CSV (address,id per line) or YAML file of many objects to adopt in one state write.")
@click.option("--discover", is_flag=True,
              help="Find the business's client packages through its payment requests and adopt each one that "
                   "matches a manifest object by identity, in one state write.")
@click.option("--manifests", "manifests", type=click.Path(), multiple=True,
              help="Manifest files or folders (default: manifests).")
@state_option
@target_options
@click.pass_obj
def import_(obj: Any, /, address: str | None, remote_id: str | None, from_file: str | None, discover: bool,
            manifests: tuple[str, ...], state_path: str | None, **kw: Any) -> int:
    """Adopt existing objects: track vcita object ID as ADDRESS.

    \b
    reconciler import client_package.alice-piano m73jkvg4bf2z71b2
    reconciler import --from onboarding.csv      # address,id per line (a header is allowed)
    reconciler import --discover                 # find them through vcita's payment requests

    ADDRESS is catalog_package.NAME, client_package.NAME (NAME being a manifest's
    metadata.name. Each object is read from vcita and must match its manifest (a catalog
    package's name; a client package's client and catalog package): a mismatch is refused and
    shown. With --from, every object is checked first and all are recorded in one state write,
    or none. This is also how an 'unknown outcome' create is resolved once you have found the
    client package in vcita. Nothing in vcita is changed.

    With --discover, vcita's payment requests (the second memory) find every client package of
    the business; each untracked manifest object whose identity (client, catalog package,
    valid_from when declared) matches one is adopted, with the catalog packages they name (by
    their unique display name), in one state write; packages matching nothing are listed.
    """
    from reconciler.adopt.named import adopt_many, read_pairs

    if discover:
        if from_file is not None or address or remote_id:
            raise click.UsageError("--discover takes no ADDRESS, ID or --from")
        return _discover(obj, manifests, state_path, kw)
    if from_file is not None and (address or remote_id):
        raise click.UsageError("give either ADDRESS ID or --from FILE, not both")
    if from_file is None and not (address and remote_id):
        raise click.UsageError("give ADDRESS and ID (or --from FILE)")
    pairs = read_pairs(from_file) if from_file is not None else [(str(address), str(remote_id))]
    _, described = _with_state(manifests, state_path, kw,
                               lambda api, desired, state, store: adopt_many(api, desired, state, pairs, store))
    for (addr, _), what in zip(pairs, described, strict=True):
        obj.console.out(f"{addr}: imported {what}", style="green")
    return 0


def _with_state(manifests: tuple[str, ...], state_path: str | None, kw: dict[str, Any],
                work: Callable[[Any, Any, Any, Any], Awaitable[T]]) -> T:
    """``work(api, desired, state, store)`` under the state's lock, for the target the manifests
    and flags name (a state of another target is refused first)."""
    from reconciler.manifest.load import load_manifests
    from reconciler.refresh.full import target_ref

    paths = manifest_paths(manifests)
    desired = load_manifests(paths)
    biz = open_business(kw, paths, state_path, writes=True)
    target, store = biz.target, biz.store
    with store.lock("import"):
        state = store.load()
        store.check_target(state, target_ref(target))
        if state.target is None:
            state = state.for_target(target_ref(target))

        async def go() -> T:
            async with biz.client() as api:
                return await work(api, desired, state, store)

        return run_async(go())


def _discover(obj: Any, manifests: tuple[str, ...], state_path: str | None, kw: dict[str, Any]) -> int:
    from reconciler.adopt.discover import discover_and_adopt
    from reconciler.core.safetext import printable

    result = _with_state(manifests, state_path, kw, discover_and_adopt)
    say = obj.console.out
    assert result.discovery is not None
    for search in result.discovery.searches:
        say(f"searched {printable(search.describe())}")
    for address, rid in result.catalog:
        say(f"{address}: imported catalog package {rid} (by its name)", style="green")
    for address, cp in result.adopted:
        say(f"{address}: imported client package {cp.id} (client {cp.client_id}, package {cp.package_id}, "
            f"valid from {cp.valid_from})", style="green")
    for addresses, ids in result.ambiguous:
        say(f"{', '.join(addresses)}: {len(ids)} client packages match ({', '.join(ids)}): not adopted; choose with "
            f"'reconciler import ADDRESS ID'", style="yellow")
    for address, why in result.unresolved:
        say(f"{address}: not matched: {why}", style="yellow")
    if result.unmatched:
        say(f"{len(result.unmatched)} client package(s) in vcita match no manifest object (left alone):")
        for cp in result.unmatched:
            say(f"  {cp.id}: client {cp.client_id}, package {cp.package_id}, valid from {cp.valid_from}")
    say(f"{len(result.adopted)} client package(s) adopted" + (
        f", {len(result.catalog)} catalog package(s)" if result.catalog else "") +
        ("; the state was not changed" if result.state is None else " in one state write"))
    return 0
