"""What the remote-facing commands share: target flags, state location, running async code."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from reconciler.backends.config import StateConfig
    from reconciler.remote.client import VcitaClient
    from reconciler.remote.target import Target

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def target_options(f: F) -> F:
    """Flags that choose the vcita target (flags > environment > reconciler.toml > sandbox)."""
    opts = [
        click.option("--target", "target_name", metavar="NAME",
                     help="A target named in reconciler.toml ('embedded' forces the embedded sandbox) "
                          "[RECONCILER_TARGET]."),
        click.option("--gateway-url", metavar="URL",
                     help="Main API gateway, e.g. https://app.meet2know.com/apigw [VCITA_GATEWAY_URL]."),
        click.option("--fallback-url", metavar="URL",
                     help="Fallback API, e.g. https://app.meet2know.com/api2 [VCITA_FALLBACK_URL]."),
        click.option("--business-id", metavar="UID", help="The business to manage [VCITA_BUSINESS_ID]."),
        click.option("--token-file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Read the staff token from FILE (else VCITA_STAFF_TOKEN). Never pass a token as a flag."),
        click.option("--directory-token-file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Read a directory token from FILE (else VCITA_DIRECTORY_TOKEN); sent with X-On-Behalf-Of."),
        click.option("--concurrency", type=click.IntRange(1, 256), metavar="N",
                     help="Most requests in flight (default 8 for a remote API, 32 for the sandbox)."),
        click.option("--rate", type=click.FloatRange(0.1, 10_000), metavar="PER_S",
                     help="Most request starts per second (default 20 for a remote API)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def state_option(f: F) -> F:
    """``--state FILE`` and the backend flags (``--state-backend``, ``--state-dsn-env``)."""
    f = backend_options(f)
    return click.option("--state", "state_path", type=click.Path(dir_okay=False), metavar="PATH",
                        help="State file (default: .reconciler/state.json next to the manifests).")(f)


def backend_options(f: F) -> F:
    f = click.option("--state-dsn-env", "state_dsn_env", metavar="VAR",
                     help="With the postgres backend: the environment variable holding the database DSN "
                          "(default RECONCILER_STATE_DSN). Never pass the DSN itself.")(f)
    return click.option("--state-backend", "state_backend", type=click.Choice(["local", "postgres"]), metavar="KIND",
                        help="Where the state is kept: local (the state file) or postgres (a database "
                             "shared by a team or a fleet) [reconciler.toml / target.toml: state].")(f)


def state_config(kw: dict[str, Any], paths: list[str] | None, target: Target | None) -> StateConfig:
    """The run's state backend (flags popped from ``kw``, then target.toml of the manifest
    folder, the target's table and the top level of reconciler.toml): a StateConfig."""
    from reconciler.backends.config import resolve_state_config

    folder = None
    if paths:
        first = Path(paths[0])
        folder = first if first.is_dir() else first.parent
    return resolve_state_config(backend=kw.pop("state_backend", None), dsn_env=kw.pop("state_dsn_env", None),
                                cwd=Path.cwd(), target_name=getattr(target, "name", None), folder=folder)


def open_state(kw: dict[str, Any], paths: list[str], state_path: str | None,
               target: Target | None) -> Any:  # StateStore | PostgresStateStore: see StateStore.locate
    """The run's state store (``StateStore.locate`` with the configured backend)."""
    from reconciler.state import StateStore

    return StateStore.locate(paths, state_path, target=target, backend=state_config(kw, paths, target))


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
        from reconciler.fleet import Business, folder_target

        return folder_target(Business(name=folder.name, path=folder), cwd=cwd, env=env)

    return resolve_target(flags=flags, env=env, cwd=cwd, target_name=name, unselected=folder_of_manifests)


def client_for(target: Target, kw: dict[str, Any]) -> VcitaClient:
    from reconciler.remote.client import VcitaClient
    from reconciler.remote.dispatch import ClientSettings

    settings = ClientSettings.for_target(target, concurrency=kw.pop("concurrency", None), rate=kw.pop("rate", None))
    return VcitaClient(target, settings=settings)


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

    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows, or a base install without the serve extra
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


#: The payment requests a plan may open by default, for every target but the embedded sandbox.
DEFAULT_MAX_PAYMENT_REQUESTS = 25


def _client_ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from reconciler.safetext import printable

    for cid in value:
        if not (cid.isascii() and cid.isalnum() and len(cid) <= 64):
            raise click.BadParameter(f"'{printable(cid, limit=80)}' is not a vcita client id (letters and digits, "
                                     "as in the plan's refusal)", ctx=ctx, param=param)
    return tuple(dict.fromkeys(value))


def safety_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The money-safety options of plan and apply (the limit is part of the reviewed plan)."""
    f = click.option("--confirm-no-prior-client-packages", "confirm_new_business", is_flag=True,
                     help="Create client packages although the state does not know this business's past "
                          "(declared catalog packages already exist in vcita). Only if none was ever assigned.")(f)
    f = click.option("--checked-client", "checked_clients", multiple=True, metavar="CLIENT_ID",
                     callback=_client_ids,
                     help="You checked this client's packages in vcita: its creates are no longer refused because "
                          "its payment requests cannot vouch for it (one links back to no package, or the list "
                          "lags); the plan warns instead. A package vcita is seen to hold still refuses. "
                          "Repeatable.")(f)
    f = click.option("--max-payment-requests", "max_payment_requests", type=click.IntRange(min=0), default=None,
                     metavar="N",
                     help=f"Refuse a plan that would open more than N payment requests (default "
                          f"{DEFAULT_MAX_PAYMENT_REQUESTS}; none for the embedded sandbox).")(f)
    return f


def only_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--only ADDRESS`` (repeatable, * and ? wildcards) of plan and apply."""
    return click.option("--only", "only", multiple=True, metavar="ADDRESS",
                        help="Plan only the objects at ADDRESS (repeatable; * and ? are wildcards, e.g. "
                             "'client_package_set.spring-piano[*]') and what they depend on; nothing outside is "
                             "changed, archived or forgotten.")(f)


def scoped(desired: Any, only: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """The manifests ``--only`` selects (all of them without it), and what the plan records of
    the selection (``Plan.only``, ``left_out``, ``dependencies``)."""
    if not only:
        return desired, {}
    from reconciler.scope import select

    sel = select(desired, only)
    return sel.desired, {"only": sel.patterns, "left_out": sel.left_out, "dependencies": sel.dependencies}


def plan_safety(paths: Sequence[str], target: Any, max_payment_requests: int | None,
                confirm_new_business: bool, checked_clients: Sequence[str] = ()) -> dict[str, Any]:
    """make_plan's safety arguments: the scope (a file among the paths makes the plan partial),
    the history guard, the payment-request limit and the clients a person vouched for."""
    limit = max_payment_requests
    if limit is None and not target.embedded:
        limit = DEFAULT_MAX_PAYMENT_REQUESTS
    return {"partial": any(Path(p).is_file() for p in paths),
            "history_guard": (not target.embedded) and not confirm_new_business,
            "max_payment_requests": limit, "checked_clients": frozenset(checked_clients)}


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
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
