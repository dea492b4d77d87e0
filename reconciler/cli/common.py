"""What the remote-facing commands share: opening the target, the state and the client, running
async code, confirming, stopping on signals (their flags: ``reconciler.cli.options``)."""

from __future__ import annotations

import contextlib
import functools
import os
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
    (exit 130)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return click.confirm(prompt, default=False)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return click.confirm(prompt, default=False)
    finally:
        signal.signal(signal.SIGINT, previous)


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
    """Whether every manifest folder of the run lies strictly inside the folder the state belongs
    to (``manifests/clients`` with ``--state manifests/.reconciler/state.json``; with a database
    backend, the default ``manifests`` folder): the plan covers part of that folder's manifests, so
    a tracked object declared elsewhere in it is left alone, not archived as if it had left the
    manifests."""
    from reconciler.state.store import STATE_DIR

    if not paths:
        return False
    state_file = getattr(store, "path", None)
    if store is not None and not isinstance(state_file, Path):
        # a database's state is the business's, not a folder's: its home is the default manifests
        # folder, so that 'plan manifests/clients' is a plan over part of it there too
        home = Path("manifests").absolute()
    elif not isinstance(state_file, Path) or state_file.parent.name != STATE_DIR:
        return False
    else:
        home = state_file.parent.parent.absolute()
    folders = [Path(p).absolute() for p in paths]
    return all(home in folder.parents for folder in folders)


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
            task.cancel()
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
