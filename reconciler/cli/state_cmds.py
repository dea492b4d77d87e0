"""``reconciler state ...``: look at and repair the state file, its lock and the journal.

Every subcommand finds the state the same way: ``--state FILE`` names the state file; without
it, the state is ``.reconciler/state.json`` next to the manifests given by ``--manifests PATH``
(a folder, or a manifest file whose folder is used), by default ``manifests``.  None of these
commands contacts vcita.  A refused command changes nothing on disk.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler.cli.common import resolve, state_config
from reconciler.cli.options import backend_options
from reconciler.core.errors import StateError

if TYPE_CHECKING:
    from reconciler.state.backends import StateBackend
    from reconciler.state.store import State

# reconciler.state.store (pydantic) is imported when a subcommand runs, not for --help or completion.
DEFAULT_MANIFESTS = "manifests"  # = reconciler.state.store.DEFAULT_MANIFESTS (a test holds them equal)

F = TypeVar("F", bound=Callable[..., Any])


def _where(f: F) -> F:
    """The options that locate the state, identical on every subcommand."""
    f = backend_options(f)
    f = click.option("--target", "target_name", metavar="NAME", default=None,
                     help="With a database backend: the target (reconciler.toml) whose business's state to use; "
                          "by default the one plan would use.")(f)
    f = click.option("--state", "state_file", type=click.Path(dir_okay=False), default=None,
                     help="The state file to use (overrides --manifests).")(f)
    f = click.option("--manifests", "manifests", type=click.Path(), default=DEFAULT_MANIFESTS, show_default=True,
                     help="Manifest folder (or file) whose .reconciler/ folder holds the state.")(f)
    return _resolving(f)


def _resolving(f: F) -> F:
    """Replace the location options by one ``store`` argument (the configured backend's), and,
    for a command that asks for it (a ``lag`` parameter), the list-lag bounds of its target."""
    import functools
    import inspect

    wants_lag = "lag" in inspect.signature(f).parameters

    @functools.wraps(f)
    def wrapper(*args: Any, manifests: str, state_file: str | None, target_name: str | None,
                state_backend: str | None, state_dsn_env: str | None, **kw: Any) -> Any:
        if wants_lag:
            from reconciler.cli.state_intents import list_lag

            kw["lag"] = list_lag(manifests, target_name)
        return f(*args, store=_store(manifests, state_file, target_name, state_backend, state_dsn_env), **kw)

    return wrapper  # type: ignore[return-value]


def _store(manifests: str, state_file: str | None, target_name: str | None = None, backend: str | None = None,
           dsn_env: str | None = None) -> StateBackend:
    """The state the flags and the configuration name: the file, or a database row, whose
    business is then the target plan would use (flags, VCITA_* variables, reconciler.toml)."""
    flags = {"state_backend": backend, "state_dsn_env": dsn_env}
    config = state_config(dict(flags), [manifests], None)
    if config.is_local:
        if target_name:
            raise StateError("--target chooses a business's row in a state database; the state here is a file",
                             hint="Use --state FILE or --manifests PATH to choose a state file.")
        from reconciler.state.store import StateStore

        local: StateBackend = StateStore.locate([manifests], state_file)
        return local
    from reconciler.state.store import StateStore

    target = resolve({"target_name": target_name}, [manifests])
    config = state_config(dict(flags), [manifests], target)
    chosen: StateBackend = StateStore.locate([manifests], state_file, target=target, backend=config)
    return chosen


def _lock_note(console: Any, store: Any) -> None:
    """Who holds the state lock now, if anyone (on stderr: stdout stays the listing): the lock
    file's holder, or a state database's advisory lock and its holder record."""
    from reconciler.state.lock import lock_status

    status = lock_status(store.lock_path) if store.kind == "local" else store.lock_status()
    if status.held:
        console.info(f"The state is {status.describe()}.")


def kind_of_address(address: str) -> str:
    from reconciler.state.store import kind_of_address as kind

    return kind(address)


def _address_ok(address: str) -> bool:
    from reconciler.state.store import ADDRESS_RE

    return bool(ADDRESS_RE.match(address))


def _tracked(st: State, store: Any, address: str) -> None:
    if address in st.resources:
        return
    guesses = [a for a in st.resources if a.split(".", 1)[1] == address]
    hint = f"Did you mean {' or '.join(guesses)}?" if guesses else "'reconciler state list' shows what is tracked."
    raise StateError(f"{address} is not tracked in {store.where}", hint=hint)


@click.group()
def state() -> None:
    """Inspect and repair the state: what reconciler tracks, its lock, pending creates.

    Each subcommand takes --state FILE, or --manifests PATH (default: manifests) to use the
    state in PATH/.reconciler/. Nothing here contacts vcita.
    """


@state.command("list")
@_where
@click.pass_obj
def list_cmd(obj: Any, store: Any) -> int:
    """List tracked addresses and their vcita ids.

    Also lists archived objects (left the manifests, kept by id) and warns about creates whose
    outcome is unknown (pending records).
    """
    console = obj.console
    st = store.load()
    if not store.exists():
        console.info(f"No state yet ({store.where}): nothing is tracked yet.")
    else:
        target = st.target.describe() if st.target else "no target yet"
        console.info(f"State: {store.where} (serial {st.serial}, {target}):")
        width = max((len(a) for a in st.resources), default=0)
        for address in sorted(st.resources):
            console.out(f"{address:<{width}}  {st.resources[address].id}")
        if not st.resources:
            console.info("(no resources)")
        for ar in sorted(st.archived.values(), key=lambda a: a.address):
            why = ar.reason or 'left the manifests'
            console.out(f"{ar.address:<{width}}  {ar.id}  (archived {ar.archived_at}: {why})")
    _lock_note(console, store)
    for it in sorted(st.pending.values(), key=lambda p: p.address):
        console.warn(f"{it.address}: a create sent at {it.opened_at} has an unknown outcome; "
                     f"check vcita, then 'reconciler import {it.address} ID' or "
                     f"'reconciler state forget-intent {it.address}'")
    return 0


@state.command("show")
@click.argument("address")
@_where
@click.pass_obj
def show(obj: Any, address: str, store: Any) -> int:
    """Print what is tracked for ADDRESS, as JSON.

    ADDRESS is catalog_package.NAME or client_package.NAME, as 'state list' shows it.
    """
    st = store.load()
    _tracked(st, store, address)
    _lock_note(obj.console, store)
    obj.console.out(json.dumps(st.resources[address].model_dump(mode="json"), sort_keys=True, indent=2,
                               ensure_ascii=False))
    return 0


@state.command("unlock")
@click.argument("lock_id")
@_where
@click.pass_obj
def unlock_cmd(obj: Any, lock_id: str, store: Any) -> int:
    """Break a lock left by an older reconciler whose run is gone.

    The state lock is released by the system when the process holding it ends, even when it is
    killed, so there is normally nothing to break: this command says so. It remains for lock
    files left by older versions of reconciler, which did not go away with their process.
    LOCK_ID is the id printed by the command that found the state locked. Only that lock is
    broken: if it was released and taken again meanwhile, the id no longer matches and nothing
    happens. A lock held by a running process is never broken.
    """
    if store.kind != "local":  # a database lock ends with its session: never broken by hand
        obj.console.out(store.unlock(lock_id))
        return 0
    from reconciler.state.store import unlock

    result = unlock(store.dir, lock_id, name=store.lock_path.name)
    obj.console.out(result.message)
    return 0


@state.command("forget-intent")
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@click.option("--force", is_flag=True,
              help="Forget a create recorded so recently that vcita may still be executing it or not list it yet "
                   "(you checked the client's packages in vcita by hand).")
@_where
@click.pass_obj
def forget_intent(obj: Any, names: tuple[str, ...], force: bool, store: Any, lag: Any) -> int:
    """Drop pending creates whose outcome is unknown, one per NAME, in one state write.

    NAME is an address (client_package.alice-10) or a bare name, meaning client_package.NAME.
    Run it only after checking in vcita by hand that the object was NOT created: otherwise
    import it instead ('reconciler import ADDRESS ID'), or the next apply creates it again.
    When one NAME has no pending create, none is dropped.

    A create recorded less than the target's send window + list lag + clock skew ago (56 s by
    default) is refused without --force: it may still be on its way, or vcita's lists may not
    show it yet, and the next plan would then create it a second time.
    """
    console = obj.console
    from reconciler.model.address import CLIENT

    addresses: list[str] = []
    for name in names:
        address = name if "." in name else CLIENT + name
        if not _address_ok(address):
            raise click.BadParameter(f"{name!r} is not client_package.NAME, catalog_package.NAME or NAME",
                                     param_hint="NAME")
        if address not in addresses:
            addresses.append(address)
    pending = sorted({it.address for it in store.load().pending.values()})
    missing = [a for a in addresses if a not in pending]
    if missing:  # refused before taking the lock, so nothing is touched
        listed = f"Pending creates: {', '.join(pending)}." if pending else "There are no pending creates."
        raise StateError(f"no pending create of {', '.join(missing)} in {store.where}; nothing was forgotten",
                         hint=listed)
    with store.lock(f"state forget-intent {' '.join(addresses)}"):
        st = store.load()
        intents = {a: st.pending_for(a) for a in addresses}
        gone = [a for a, found in intents.items() if not found]
        if gone:
            raise StateError(f"no pending create of {', '.join(gone)} in {store.where} (resolved meanwhile); "
                             "nothing was forgotten")
        if not force:
            from reconciler.cli.state_intents import refuse_recent

            refuse_recent(intents, lag)
        dropped = {found[0].id for found in intents.values()}
        store.write(st.replace(pending={k: v for k, v in st.pending.items() if k not in dropped}),
                    expected_serial=st.serial)
    for address, found in intents.items():
        intent = found[0]
        console.out(f"Forgot the pending create of {address} (intent {intent.id}, sent at {intent.opened_at}).")
        for key in sorted(intent.details):
            console.out(f"  {key}: {intent.details[key]}")
    if len(addresses) == 1:
        console.warn(f"reconciler did not check vcita. Check by hand that {addresses[0]} was not created "
                     f"(the details above identify it). If it exists, run 'reconciler import {addresses[0]} ID' "
                     "before the next apply, or that apply will create it a second time.")
    else:
        console.warn(f"reconciler did not check vcita. Check by hand that none of these {len(addresses)} was "
                     "created (the details above identify each). For any that exists, run 'reconciler import "
                     "ADDRESS ID' before the next apply, or that apply will create it a second time.")
    return 0


@state.command("rm")
@click.argument("addresses", metavar="ADDRESS...", nargs=-1, required=True)
@click.option("--archived", is_flag=True,
              help="The arguments are vcita ids of archived objects: erase those records for good.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@_where
@click.pass_obj
def rm(obj: Any, addresses: tuple[str, ...], archived: bool, yes: bool, store: Any) -> int:
    """Stop tracking each ADDRESS without touching vcita.

    \b
    reconciler state rm client_package.alice-10           archive it (kept by id)
    reconciler state rm --archived m73jkvg4bf2z71b2 -y    erase an archived record

    The objects stay in vcita, unmanaged. Their records are archived, not erased: a manifest
    object of the same identity (client, catalog package, valid_from, price) is re-adopted by
    the next plan instead of being created again (a second payment request). --archived erases
    archived records for good: only for objects you know are gone from vcita. Asks for
    confirmation unless --yes is given; without a terminal, --yes is required. All or nothing:
    if one argument is unknown, nothing is changed.
    """
    console = obj.console
    st = store.load()
    wanted = list(dict.fromkeys(addresses))
    for key in wanted:
        _archived(st, store, key) if archived else _tracked(st, store, key)
    if archived:
        listing = ", ".join(f"{k} (last {st.archived[k].address})" for k in wanted)
        question = f"Erase the archived records of {listing}? reconciler will no longer know it created them"
    else:
        listing = ", ".join(f"{a} (vcita id {st.resources[a].id})" for a in wanted)
        question = f"Stop tracking {listing}? The objects stay in vcita"
    if not yes:
        if not sys.stdin.isatty():
            raise StateError(f"refusing to change {len(wanted)} record(s) of the state without confirmation: "
                             "no terminal to ask on", hint="Pass --yes to confirm.")
        if not click.confirm(question, default=False):
            console.error("cancelled; nothing was changed")
            return 1
    with store.lock(f"state rm {' '.join(wanted)}"):
        current = store.load()
        new = current
        for key in wanted:
            if archived:
                _archived(current, store, key)
                new = new.replace(archived={k: v for k, v in new.archived.items() if k != key})
            else:
                _tracked(current, store, key)
                new = new.archive(key, reason="removed with 'reconciler state rm'")
        store.write(new, expected_serial=current.serial)
    for key in wanted:
        if archived:
            console.out(f"Erased the archived record of {key} from {store.where}.")
        else:
            console.out(f"Removed {key} (vcita id {st.resources[key].id}) from {store.where}; "
                        "the object still exists in vcita (its record is archived: 'reconciler state list').")
    return 0


def _archived(st: State, store: Any, rid: str) -> None:
    if rid not in st.archived:
        listed = ", ".join(sorted(st.archived)) or "none"
        raise StateError(f"{rid} is not an archived vcita id in {store.where}", hint=f"Archived ids: {listed}.")


@state.command("mv")
@click.argument("old")
@click.argument("new")
@_where
@click.pass_obj
def mv(obj: Any, old: str, new: str, store: Any) -> int:
    """Rename a tracked object (and its pending create, if any) from OLD to NEW.

    \b
    reconciler state mv client_package.alice-10 client_package.alice-piano-2026
    reconciler state mv client_package.alice-10 'client_package_set.piano["alice@example.com"]'

    For a renamed manifest object (metadata.name) whose match the plan could not settle on its
    own. Nothing in vcita changes; the object keeps its id. NEW must be of the same kind and
    not tracked yet.
    """
    for address in (old, new):
        if not _address_ok(address):
            raise click.BadParameter(f"{address!r} is not catalog_package.NAME, client_package.NAME or "
                                     'client_package_set.NAME["CLIENT"]')
    if kind_of_address(old) != kind_of_address(new):
        raise StateError(f"{old} and {new} are not of the same kind; an object cannot change kind")
    with store.lock(f"state mv {old} {new}"):
        st = store.load()
        pending = {k: v.model_copy(update={"address": new}) if v.address == old else v for k, v in st.pending.items()}
        if old not in st.resources and pending == st.pending:
            _tracked(st, store, old)
        if new in st.resources or st.pending_for(new):
            raise StateError(f"{new} is already tracked (or has a pending create) in {store.where}",
                             hint=f"'reconciler state rm {new}' first if that record is wrong.")
        resources = {(new if a == old else a): r for a, r in st.resources.items()}
        store.write(st.replace(resources=resources, pending=pending), expected_serial=st.serial)
    rid = st.resources[old].id if old in st.resources else "a pending create"
    obj.console.out(f"Moved {old} to {new} ({rid}) in {store.where}; nothing in vcita changed.")
    return 0


def _register_transfers() -> None:
    from reconciler.cli.state_transfer_cmd import businesses, pull, push

    for command in (push, pull, businesses):
        state.add_command(command)


_register_transfers()
