"""``reconciler apply``: execute a saved plan exactly, or plan + confirm + execute."""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import click

from reconciler.cli import exit_codes
from reconciler.cli.common import confirm, open_business, plan_safety, run_async, scoped, stopping_on_signals
from reconciler.cli.options import (
    manifest_paths,
    only_option,
    safety_options,
    shard_option,
    state_option,
    target_options,
)
from reconciler.cli.output import print_plan
from reconciler.cli.saved_plan import read_plan
from reconciler.core.errors import ConfigError


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--auto-approve", is_flag=True, help="Apply without asking (required when not in a terminal).")
@click.option("--allow-replace", is_flag=True,
              help="Accept replacing client packages (each opens a new payment request).")
@click.option("--stale", type=click.Choice(["skip", "abort"]), default="skip", show_default=True,
              help="An object changed in vcita since a saved plan was made: skip it (and what depends on it), "
                   "or apply nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
              help="json prints one JSON event per line (a stream for tools); markdown prints a report for the "
                   "pull request once done (the progress lines go to stderr).")
@click.option("--no-verify", is_flag=True, help="Skip the verification plan after applying.")
@click.option("--refresh", "refresh_mode", type=click.Choice(["full", "changed"]), default="full", show_default=True,
              help="changed: plan from the catalog and only the tracked client packages whose manifests changed since "
                   "they were applied (as plan --refresh=changed; each change is still checked against vcita right "
                   "before it is sent); the verification then reads again only what was changed.")
@only_option
@safety_options
@shard_option
@state_option
@target_options
@click.pass_obj
def apply(obj: Any, /, paths: tuple[str, ...], auto_approve: bool, allow_replace: bool, stale: str, fmt: str,
          no_verify: bool, state_path: str | None, refresh_mode: str = "full", max_payment_requests: int | None = None,
          confirm_new_business: bool = False, checked_clients: tuple[str, ...] = (), all_: bool = False,
          shard: str | None = None, jobs: int = 8,
          only: tuple[str, ...] = (), **kw: Any) -> int:
    """Change vcita to match the manifests.

    \b
    reconciler apply PLAN.json [PATHS...]   apply a saved plan exactly as reviewed
    reconciler apply [PATHS...]             plan, show, ask, then apply

    A saved plan applies once, only to the target, manifests and state it was made for; an
    object changed in vcita since then is refused. Every create is recorded as pending in the
    state before it is sent, so an interrupted apply never creates anything twice: re-run apply
    to continue. Ctrl-C (or SIGTERM) sends nothing more, records what was in flight and exits
    130 (143).

    \b
    reconciler apply --all [FLEET_PLAN.json] [ROOT]   every business folder of ROOT (see plan --all)
    """
    from reconciler.applier import Applier
    from reconciler.manifest.load import load_manifests
    from reconciler.refresh.full import make_plan, target_ref

    if all_ or shard:
        if not all_:
            raise ConfigError("--shard selects businesses of a fleet; it needs --all")
        if only or refresh_mode != "full":
            raise ConfigError("--only and --refresh are not available with --all")
        from reconciler.cli.fleet_run import run_fleet_apply
        from reconciler.fleet.apply import ApplyOptions

        fleet_plan = paths[0] if paths and paths[0].endswith(".json") else None
        return run_fleet_apply(obj, paths[1:] if fleet_plan else paths, saved=fleet_plan, fmt=fmt, shard=shard,
                               jobs=jobs, kw=kw, state_path=state_path, auto_approve=auto_approve,
                               how=ApplyOptions(stale=stale, allow_replace=allow_replace, verify=not no_verify,  # type: ignore[arg-type]
                                                max_payment_requests=max_payment_requests,
                                                safety=lambda p, t: plan_safety(p, t, max_payment_requests,
                                                                                confirm_new_business,
                                                                                checked_clients)))
    console = obj.console
    saved = None
    if paths and paths[0].endswith(".json"):
        saved = read_plan(paths[0])
        paths = paths[1:]
    if saved is not None and refresh_mode != "full":
        raise ConfigError("--refresh chooses what a plan reads: a saved plan was read when it was made (apply checks "
                          "each object it changes against vcita again before sending anything)",
                          hint="Apply the plan file without --refresh, or make it with 'reconciler plan "
                               "--refresh=changed --out FILE'.")
    if saved is not None and only and tuple(only) != saved.only:
        raise ConfigError("--only is part of a saved plan: apply the plan file without --only (it keeps the "
                          "selection it was made with)")
    paths_l = manifest_paths(paths)
    patterns = saved.only if saved is not None else tuple(only)
    desired, selection = scoped(load_manifests(paths_l), patterns)
    biz = open_business(kw, paths_l, state_path, writes=True)
    target, store = biz.target, biz.store
    safety = plan_safety(paths_l, target, max_payment_requests, confirm_new_business, checked_clients,
                         store=store)
    safety["partial"] = safety["partial"] or bool(patterns)
    interactive = sys.stdin.isatty()
    if saved is None and not auto_approve and not interactive:
        raise ConfigError("apply needs a confirmation, and there is no terminal to ask in",
                          hint="Review 'reconciler plan' and re-run with --auto-approve, or apply a saved plan file.")
    from reconciler.cli.progress import ApplyBar, Spinner

    bar = ApplyBar(enabled=fmt == "text" and sys.stdout.isatty() and not console.quiet)
    spinner = Spinner(console)

    def on_event(ev: Any) -> None:
        if fmt == "json":
            click.echo(json.dumps(ev.as_dict()))
            return
        if fmt == "markdown":  # stdout is the report: the log of the run goes to stderr
            if ev.kind == "note" or ev.kind == "end":
                console.info(f"{ev.address}: {ev.message}")
            return
        if ev.kind == "note":
            console.info(f"{ev.address}: {ev.message}")
        elif ev.kind == "start":
            bar.started(ev.address)
        elif ev.kind == "end":
            door = f" via {ev.door}" if ev.door else ""
            took = f" in {ev.elapsed:.2f} s" if ev.elapsed else ""
            style = {"done": "green", "failed": "red", "unknown": "bold red", "refused": "red", "skipped": "yellow"}
            line = f"{ev.address}: {ev.message}{door}{took}"
            bar.finished(ev.address, ev.status or "", line, style.get(ev.status or ""),
                         lambda: console.out(line, style=style.get(ev.status or "")))

    interrupted: list[signal.Signals] = []
    with store.lock("apply"):
        state = store.load()
        store.check_target(state, target_ref(target))
        if state.target is None:
            state = state.for_target(target_ref(target))

        async def go() -> tuple[Any, Any, Any]:
            async with biz.client() as api:
                plan = saved
                asked = False
                if plan is None:
                    with spinner.showing("refreshing"):
                        plan = await make_plan(api, desired, state, target=target, allow_replace=allow_replace,
                                               refresh_mode=refresh_mode, progress=spinner, **safety)
                    if selection:
                        plan = plan.model_copy(update=selection)
                    if fmt == "text":
                        print_plan(console, plan, "text")
                    if not plan.has_changes or plan.errors:
                        return plan, None, None
                    if not auto_approve:
                        if fmt != "text":  # stdout is kept for the report: the plan asked about goes to stderr
                            from reconciler.core.safetext import printable
                            from reconciler.render import render

                            sys.stderr.write(printable(render(plan, "text"), keep="\n\t"))
                        prompt = f"Apply these changes to business {target.business_id}?"
                        if not confirm(prompt):
                            raise click.exceptions.Abort()
                        asked = True
                if not plan.has_changes:
                    return plan, None, None
                applier = Applier(api, store, state, target_ref(target), on_event=on_event)
                applier.check_plan(plan, desired.digest(), max_payment_requests if saved is not None else None)
                if saved is not None or asked:  # made earlier (saved, or read at the prompt for as long
                    # as the user took): vcita may have got some of its creates since
                    from reconciler.refresh.second_memory import recheck_saved
                    with spinner.showing("checking vcita again"):
                        await recheck_saved(api, plan, state.resources, state.archived, state.pending,
                                            blind="warn" if saved is None else
                                            "refuse" if store.kind == "local" else "shared",
                                            checked=frozenset(checked_clients))
                with bar.running(len(plan.addresses)), stopping_on_signals(applier, interrupted, "apply"):
                    result = await applier.apply(plan, stale=stale)  # type: ignore[arg-type]
                verify = None
                if not no_verify and result.state is not None and not interrupted and not result.unrecorded:
                    with spinner.showing("verifying"):
                        # --refresh=changed: what was just applied matches the state now, so it
                        # is named to be read again (the rest was not read to plan either).
                        verify = await make_plan(api, desired, result.state, target=target,
                                                 allow_replace=allow_replace, progress=spinner, phase="verifying",
                                                 settle=False, refresh_mode=refresh_mode, read_also=plan.addresses,
                                                 **{**safety, "history_guard": False})
                return plan, result, verify

        plan, result, verify = run_async(go())
    if result is None:
        if saved is not None and not plan.has_changes:
            console.info("The saved plan has no changes: nothing to apply.")
        if fmt == "markdown":
            from reconciler.render.apply_md import escape

            errors = [f"- `{escape(p.address)}`: {escape(p.message)}" for p in plan.errors]
            _print_report(plan, {}, "No changes applied." if not plan.errors else
                          f"Nothing applied: the plan has {len(plan.errors)} error(s).", errors)
        return exit_codes.for_apply(plan, None, None)
    done, failed = result.count("done"), result.count("failed")
    other = {s: result.count(s) for s in ("skipped", "unknown", "refused")}
    extra = "".join(f", {n} {s}" for s, n in other.items() if n)
    summary = f"Apply {'complete' if result.ok else 'incomplete'}: {done} done, {failed} failed{extra}."
    if fmt == "json":
        click.echo(json.dumps({"kind": "summary", "ok": result.ok, "done": done, "failed": failed, **other,
                               "remaining_changes": len(verify.addresses) if verify else None}))
    elif fmt == "markdown":
        _print_report(plan, result.outcomes, summary, _report_notes(result, verify, interrupted))
    else:
        console.out(summary, style="bold green" if result.ok else "bold red")
    for address, rid in result.unrecorded:
        console.error(f"{address}: vcita has {rid}, but the state could not record it",
                      hint=f"Once the state can be written: reconciler import {address} {rid}")
    if interrupted:
        console.warn(f"Interrupted ({interrupted[0].name}): nothing more was sent; what was in flight is recorded. "
                     "Run apply again to continue.")
        return exit_codes.for_signal(interrupted[0])
    if verify is not None and (verify.has_changes or verify.errors) and result.ok:
        and_errors = f" and {len(verify.errors)} error(s)" if verify.errors else ""  # e.g. a package called vanished
        console.warn(f"verification: a fresh plan still shows {len(verify.addresses)} change(s){and_errors}; "
                     "run 'reconciler plan'")
    if verify is not None and not verify.has_changes and not verify.errors and fmt == "text":
        console.info(f"Verified: a fresh plan shows no changes{_unread(verify)}.")
    return exit_codes.for_apply(plan, result, verify)


def _report_notes(result: Any, verify: Any, interrupted: list[signal.Signals]) -> list[str]:
    from reconciler.render.apply_md import escape

    notes = [f"> [!CAUTION]\n> {escape(a)}: vcita has {escape(rid)}, but the state could not record it: once the "
             f"state can be written, run: reconciler import {escape(a)} {escape(rid)}" for a, rid in result.unrecorded]
    if interrupted:
        notes.append(f"> [!WARNING]\n> Interrupted ({interrupted[0].name}): nothing more was sent; what was in "
                     "flight is recorded. Run apply again to continue.")
    if verify is not None and (verify.has_changes or verify.errors):
        notes.append(f"> [!WARNING]\n> Verification: a fresh plan still shows {len(verify.addresses)} change(s) "
                     f"and {len(verify.errors)} error(s).")
    elif verify is not None:
        notes.append(f"Verified: a fresh plan shows no changes{_unread(verify)}.")
    return notes


def _unread(verify: Any) -> str:
    if not verify.unread:
        return ""
    return (f" (--refresh=changed: it read again what was changed; {verify.unread} other tracked client "
            "package(s) were not read)")


def _print_report(plan: Any, outcomes: Any, summary: str, notes: list[str]) -> None:
    from reconciler.core.safetext import printable
    from reconciler.render.apply_md import render_apply_markdown

    sys.stdout.write(printable(render_apply_markdown(plan, outcomes, summary=summary, notes=notes), keep="\n\t"))
