"""What the remote-facing commands share: opening the target, the state and the client, running
async code, confirming, stopping on signals (their flags: ``reconciler.cli.options``)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler.cli.options import DEFAULT_MAX_PAYMENT_REQUESTS

if TYPE_CHECKING:
    from reconciler.business.open import OpenBusiness
    from reconciler.remote.client import VcitaClient
    from reconciler.remote.target import Target
    from reconciler.state.backends.config import StateConfig

T = TypeVar("T")


def state_config(kw: dict[str, Any], paths: list[str] | None, target: Target | None) -> StateConfig:
    """The run's state backend (flags popped from ``kw``, then target.toml of the manifest
    folder, the target's table and the top level of reconciler.toml): a StateConfig."""
    from reconciler.business.open import state_config as configured

    return configured(paths, target_name=getattr(target, "name", None), backend=kw.pop("state_backend", None),
                      dsn_env=kw.pop("state_dsn_env", None), cwd=Path.cwd())


def open_business(kw: dict[str, Any], paths: list[str], state_path: str | None, *,
                  writes: bool = False) -> OpenBusiness:
    """The business a command works on (``reconciler.business.open``): the target the flags in
    ``kw`` choose (see :func:`resolve`), its state store, and its client with the run's limits
    and the embedded sandbox wired in.  Pops the target, state and limit flags from ``kw``."""
    from reconciler.business.open import open_business as opened
    from reconciler.cli.embedded import embedded_transport

    target = resolve(kw, paths)
    return opened(target, paths, state_path=state_path, state_backend=kw.pop("state_backend", None),
                  state_dsn_env=kw.pop("state_dsn_env", None), cwd=Path.cwd(), env=os.environ,
                  concurrency=kw.pop("concurrency", None), rate=kw.pop("rate", None), embedded=embedded_transport,
                  writes=writes)


def resolve(kw: dict[str, Any], paths: list[str] | None = None) -> Target:
    """The Target chosen by the flags in ``kw`` (popped), the environment and reconciler.toml.

    When none of those names a target and the (single) manifest folder has one of its own (its
    ``target.toml``, or a ``[targets.<folder>]`` table: the per-business targets of ``--all``),
    that is the target, so ``reconciler plan manifests/acme`` and ``reconciler plan --all`` agree.
    """
    from reconciler.remote.target import load_project_targets, resolve_target

    flags = {k: kw.pop(k, None) for k in ("gateway_url", "fallback_url", "business_id", "token_file",
                                          "directory_token_file")}
    # RECONCILER_TARGET is read here rather than by click, so that --all (whose businesses each
    # have their own target) refuses only a --target given on its command line.
    name = kw.pop("target_name", None) or os.environ.get("RECONCILER_TARGET", "").strip() or None
    env, cwd = dict(os.environ), Path.cwd()

    def folder_of_manifests() -> Target | None:
        if not paths:
            return None
        folder = Path(paths[0]) if Path(paths[0]).is_dir() else Path(paths[0]).parent
        folder = folder.absolute()
        if not (folder / "target.toml").is_file() and folder.name not in load_project_targets(cwd)[0]:
            return None
        from reconciler.fleet.businesses import Business, folder_target

        return folder_target(Business(name=folder.name, path=folder), cwd=cwd, env=env)

    return resolve_target(flags=flags, env=env, cwd=cwd, target_name=name, unselected=folder_of_manifests)


def client_for(target: Target, kw: dict[str, Any]) -> VcitaClient:
    """A client of ``target`` with the limits in ``kw`` (popped), for a command that opens no state."""
    from reconciler.business.open import open_client
    from reconciler.cli.embedded import embedded_transport

    return open_client(target, concurrency=kw.pop("concurrency", None), rate=kw.pop("rate", None),
                       embedded=embedded_transport)


def confirm(prompt: str) -> bool:
    """click.confirm that Ctrl-C interrupts even inside ``asyncio.run``: asyncio's own SIGINT
    handler only cancels the main task, which a blocking input() never notices (the prompt then
    ignores the first Ctrl-C).  Ctrl-C raises click's Abort, which the CLI reports as interrupted
    (exit 130); SIGTERM likewise (exit 143), where the loop's handler would wait for an answer."""
    import signal
    import threading

    from reconciler.core.interrupts import Terminated

    if threading.current_thread() is not threading.main_thread():
        return click.confirm(prompt, default=False)

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, terminate)
    try:
        return click.confirm(prompt, default=False)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine on uvloop where it is installed (the serve extra, off Windows):
    the client's HTTP stack spends about a third less CPU per request on it than on asyncio's
    loop; a base install runs on asyncio's."""
    import asyncio  # here, not at the top: --help and completion never need it (nor uvloop)

    from reconciler.core.interrupts import run_interruptible

    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows, or a base install without the serve extra
        return run_interruptible(asyncio.run, coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return run_interruptible(runner.run, coro)


def async_command(f: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return run_async(f(*args, **kwargs))

    return wrapper


def scoped(desired: Any, only: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """The manifests ``--only`` selects (all of them without it), and what the plan records of
    the selection (``Plan.only``, ``left_out``, ``dependencies``)."""
    if not only:
        return desired, {}
    from reconciler.manifest.scope import select

    sel = select(desired, only)
    return sel.desired, {"only": sel.patterns, "left_out": sel.left_out, "dependencies": sel.dependencies}


def plan_safety(paths: Sequence[str], target: Any, max_payment_requests: int | None,
                confirm_new_business: bool, checked_clients: Sequence[str] = (), *,
                store: Any = None) -> dict[str, Any]:
    """make_plan's safety arguments: the scope (a file among the paths makes the plan partial, and
    so do folders inside the one whose ``.reconciler/`` holds ``store``'s state file), the history
    guard, the payment-request limit and the clients a person vouched for."""
    limit = max_payment_requests
    if limit is None and not target.embedded:
        limit = DEFAULT_MAX_PAYMENT_REQUESTS
    return {"partial": any(Path(p).is_file() for p in paths) or _inside_the_state_folder(paths, store),
            "history_guard": (not target.embedded) and not confirm_new_business,
            "max_payment_requests": limit, "checked_clients": frozenset(checked_clients)}


def _inside_the_state_folder(paths: Sequence[str], store: Any) -> bool:
    """Whether the run's manifest folders are part of the folder the state belongs to, so that
    a tracked object declared elsewhere in it is left alone, not archived as if it had left the
    manifests.

    A state file belongs to the folder holding its ``.reconciler/`` (``manifests/clients`` with
    ``--state manifests/.reconciler/state.json`` is part of ``manifests``).  A database's state is
    the business's, not a folder's: the folders are part of its manifests when they lie inside
    a business folder (its ``target.toml``) or the default ``manifests`` folder, or when a folder
    around them holds other manifests (:func:`_part_of_the_business`): ``plan other/clients``
    beside ``other/catalog.yaml``."""
    from reconciler.state.store import STATE_DIR

    if not paths:
        return False
    state_file = getattr(store, "path", None)
    folders = [Path(p).absolute() for p in paths]
    if store is not None and not isinstance(state_file, Path):
        return all(_part_of_the_business(folder, Path.cwd().absolute(), set(folders)) for folder in folders)
    if not isinstance(state_file, Path) or state_file.parent.name != STATE_DIR:
        return False
    home = state_file.parent.parent.absolute()
    return all(home in folder.parents for folder in folders)


#: how many directory entries :func:`_part_of_the_business` looks at before it stops and takes
#: the run as a part (the safe answer: nothing is archived that a whole plan would have archived)
_MAX_ENTRIES_LOOKED_AT = 20_000
#: a document's top-level ``apiVersion: reconciler/...`` (at the start of a line: not an example
#: quoted in a block of another YAML file)
_MANIFEST_MARK = re.compile(rb"""^["']?apiVersion["']?[ \t]*:[ \t]*["']?reconciler/""", re.MULTILINE)


def _part_of_the_business(folder: Path, cwd: Path, chosen: set[Path]) -> bool:
    """With a database state: whether ``folder`` (absolute; ``chosen``: all the run's folders) is
    part of its business's manifests rather than all of them.

    - inside a business folder (one with a ``target.toml``, as ``--all`` sees it): a part unless
      it is that folder;
    - else inside the default ``manifests`` folder: a part;
    - else a part when a folder around it, up to the working folder, holds reconciler manifests
      outside the run's folders (``other/clients`` beside ``other/catalog.yaml``); the working
      folder counts only by the files directly in it (its other sub-folders may be other
      businesses, examples, anything).  A YAML file is a manifest when one of its documents
      declares ``apiVersion: reconciler/...``; hidden folders and links are skipped, as the
      loader skips them.  The working folder itself is a whole.

    A folder outside the working folder (``plan /repo/manifests/catalog`` run from elsewhere: a
    CI step's other folder) has nothing around it to look at up to a bound: it is a part unless
    it is a business folder itself (its own ``target.toml``), the safe answer, which archives
    nothing (a whole plan over it archived every tracked object declared beside it)."""
    if cwd not in folder.parents:
        if folder == cwd:
            return False
        for above in folder.parents:
            if (above / "target.toml").is_file():
                return True
        return not (folder / "target.toml").is_file()
    for above in (folder, *folder.parents):
        if above == cwd:
            break
        if (above / "target.toml").is_file():
            return above != folder
    if (cwd / "manifests") in folder.parents:
        return True
    budget = [_MAX_ENTRIES_LOOKED_AT]

    def holds_manifests(where: Path, *, deep: bool, skip: Path) -> bool:
        stack = [where]
        while stack:
            here = stack.pop()
            try:
                entries = list(os.scandir(here))
            except OSError:
                continue
            for entry in entries:
                budget[0] -= 1
                if budget[0] < 0:
                    return True  # too much to look at: a part, to be safe
                if entry.name.startswith(".") or entry.is_symlink():
                    continue
                full = Path(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    if deep and full != skip and full not in chosen:
                        stack.append(full)
                elif entry.name.endswith((".yaml", ".yml")) and entry.is_file(follow_symlinks=False) \
                        and _is_manifest(full):
                    return True
        return False

    below = folder
    for above in folder.parents:
        if above == cwd:
            return holds_manifests(cwd, deep=False, skip=below)
        if holds_manifests(above, deep=True, skip=below):
            return True
        below = above
    return False  # pragma: no cover - cwd is among the parents (checked above)


def _is_manifest(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    return bool(_MANIFEST_MARK.search(head))


@contextlib.contextmanager
def stopping_on_signals(runner: Any, caught: list[signal.Signals], what: str) -> Iterator[None]:
    """SIGINT/SIGTERM while ``runner`` (an applier, or a fleet of them: anything with
    ``stop(why)``) runs: it sends nothing more and lets what is in flight finish and be recorded,
    then returns normally (locks are released on the way out).  A second signal cancels what is
    in flight too (its creates stay pending: unknown outcomes, never repeated)."""
    import asyncio  # not at the top: --help and completion never need it

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    installed = []

    def on_signal(sig: signal.Signals) -> None:
        if caught and task is not None:
            from reconciler.core.interrupts import cancel_for

            cancel_for(task, caught[0])  # the run ends as interrupted by the first signal, no traceback
            return
        caught.append(sig)
        runner.stop(f"{what} was interrupted ({sig.name})")

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            previous = signal.getsignal(sig)
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append((sig, previous))
    try:
        yield
    finally:
        for sig, previous in installed:
            loop.remove_signal_handler(sig)  # (which leaves SIG_DFL / default_int_handler)
            if previous is not None:  # the handler of the rest of the run: SIGTERM must not kill it silently
                signal.signal(sig, previous)
