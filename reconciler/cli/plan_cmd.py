"""``reconciler plan``: refresh, diff, and show (or save) exactly what apply would do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli import exit_codes
from reconciler.cli.common import open_business, plan_safety, run_async, scoped
from reconciler.cli.options import (
    manifest_paths,
    only_option,
    safety_options,
    shard_option,
    state_option,
    target_options,
)
from reconciler.cli.output import print_plan
from reconciler.core.errors import ConfigError

if TYPE_CHECKING:
    from reconciler.plan.document import Plan

FORMATS = ["text", "markdown", "github-summary", "json"]
FORMAT_HELP = ("markdown is made for a pull-request comment (under GitHub's size limit); github-summary for "
               "$GITHUB_STEP_SUMMARY (no comment marker, room for more); json is the saved-plan format.")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Save the plan (JSON) for 'reconciler apply FILE' (with --all: the JSON of every business's plan).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help=FORMAT_HELP)
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there are no changes, 2 when there are, 1 on error (as Terraform).")
@click.option("--no-refresh", is_flag=True,
              help="Plan from the state file alone (fast; misses changes made in vcita; for review: apply "
                   "refuses such a plan when it creates anything).")
@click.option("--refresh", "refresh_mode", type=click.Choice(["full", "changed"]), default="full", show_default=True,
              help="changed: read the catalog and only the tracked client packages whose manifests changed since "
                   "they were applied (a change made in vcita to the others is not seen; 'drift' reads everything).")
@click.option("--allow-replace", is_flag=True,
              help="Accept replacing client packages whose client/package/price/valid_from changed "
                   "(each replacement opens a new payment request).")
@only_option
@safety_options
@shard_option
@state_option
@target_options
@click.pass_obj
def plan(obj: Any, /, paths: tuple[str, ...], out: str | None, fmt: str, detailed_exitcode: bool,
         no_refresh: bool, refresh_mode: str, allow_replace: bool, state_path: str | None, all_: bool = False,
         shard: str | None = None, jobs: int = 8, max_payment_requests: int | None = None,
         confirm_new_business: bool = False, checked_clients: tuple[str, ...] = (), only: tuple[str, ...] = (),
         **kw: Any) -> int:
    """Show what apply would change in vcita to match the manifests.

    PATHS are manifest files or directories (default: manifests/). Nothing is changed, in vcita
    or on disk (except the file named by --out).
    """
    if all_ or shard:
        from reconciler.cli.fleet_run import run_fleet_command

        if not all_ or no_refresh or allow_replace or only or refresh_mode != "full":
            raise ConfigError("--shard needs --all; --no-refresh, --refresh, --allow-replace and --only are not "
                              "available with --all")
        return run_fleet_command(obj, "plan", paths, fmt="markdown" if fmt == "github-summary" else fmt,
                                 shard=shard, jobs=jobs, out=out, kw=kw,
                                 state_path=state_path, detailed_exitcode=detailed_exitcode)
    from reconciler.core.fsutil import atomic_write_text
    from reconciler.manifest.load import load_manifests
    from reconciler.plan.document import sealed_json
    from reconciler.refresh.full import make_plan, target_ref

    if no_refresh and refresh_mode != "full":
        raise ConfigError("--no-refresh reads nothing, --refresh=changed reads what changed: give one of them")
    paths_l = manifest_paths(paths)
    desired, selection = scoped(load_manifests(paths_l), only)
    biz = open_business(kw, paths_l, state_path)
    target, store = biz.target, biz.store
    state = store.load()
    store.check_target(state, target_ref(target))

    safety = plan_safety(paths_l, target, max_payment_requests, confirm_new_business, checked_clients,
                         store=store)
    from reconciler.cli.progress import Spinner

    spinner = Spinner(obj.console, enabled=None if not no_refresh else False)

    async def go() -> Plan:
        async with biz.client() as api:
            return await make_plan(api, desired, state, target=target, no_refresh=no_refresh,
                                   refresh_mode=refresh_mode, allow_replace=allow_replace, progress=spinner,
                                   **{**safety, "partial": safety["partial"] or bool(only)})

    with spinner.showing("refreshing"):
        p = run_async(go())
    if selection:
        p = p.model_copy(update=selection)
    if out:
        atomic_write_text(Path(out), sealed_json(p), mode=0o600)
    print_plan(obj.console, p, fmt)
    if out:
        obj.console.info(f"Saved the plan to {out}. Apply exactly this plan with: reconciler apply {out}")
    return exit_codes.for_plan(p, detailed=detailed_exitcode)


@click.command()
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help=FORMAT_HELP)
@click.pass_obj
def show(obj: Any, plan_file: str, fmt: str) -> int:
    """Show a saved plan (made by 'plan --out'), in any format, without reading vcita.

    The plan is checked as apply checks it (complete, sealed, of a format this version reads), so
    what is shown is what 'reconciler apply PLAN.json' would run. One refresh can then feed a
    pull-request comment and a step summary.
    """
    from reconciler.cli.saved_plan import read_plan

    print_plan(obj.console, read_plan(plan_file), fmt)
    return 0
