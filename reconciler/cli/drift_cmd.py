"""``reconciler drift``: tell remote drift apart from pending changes; optionally accept the drift.

Exit codes (``exit_codes.py``): 0 in sync, 2 remote drift (vcita changed since reconciler last
applied), 3 only pending changes (the manifests changed and were not applied), 1 error.  Without
``--write-back`` nothing is written anywhere (not the state, not the manifests, not vcita).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli import exit_codes
from reconciler.cli.common import open_business, run_async
from reconciler.cli.options import (
    manifest_paths,
    shard_option,
    state_option,
    target_options,
)
from reconciler.core.errors import ConfigError

if TYPE_CHECKING:
    from reconciler.drift.model import DriftReport
    from reconciler.planner.actual import Actual
    from reconciler.state.store import State

@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True,
              help="markdown is made for an issue or a PR comment; json is a stable report (format_version 1).")
@click.option("--out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also save the JSON report to FILE (e.g. to upload it from CI).")
@click.option("--write-back", is_flag=True,
              help="Accept vcita's values: rewrite the drifted manifest values in place (comments and "
                   "formatting kept) and record vcita's current values as last applied.")
@click.option("--only", "only", multiple=True, metavar="ADDRESS",
              help="With --write-back: accept the drift of this object only (repeatable).")
@shard_option
@state_option
@target_options
@click.pass_obj
def drift(obj: Any, /, paths: tuple[str, ...], fmt: str, out: str | None, write_back: bool, only: tuple[str, ...],
          all_: bool, shard: str | None, jobs: int, state_path: str | None, **kw: Any) -> int:
    """Show what changed in vcita since the last apply, apart from what is not applied yet.

    For every object: remote drift (vcita differs from what reconciler last applied, by the
    fingerprints in state) and pending changes (the manifests differ from it); both can hold,
    field by field. Exit code 0 in sync, 2 remote drift, 3 only pending changes, 1 error.

    Nothing is written unless --write-back is given, which rewrites only the drifted values in the
    manifests (never a field also changed in the manifest) and updates the state's record.
    """
    from reconciler.drift import detect, render_drift
    from reconciler.manifest.load import load_manifests
    from reconciler.refresh.full import target_ref

    if all_:
        if write_back:
            raise ConfigError("--write-back works on one business at a time",
                              hint="Run 'reconciler drift --write-back manifests/BUSINESS' for the business to accept.")
        from reconciler.cli.fleet_run import run_fleet_command

        return run_fleet_command(obj, "drift", paths, fmt=fmt, shard=shard, jobs=jobs, out=out, kw=kw,
                                 state_path=state_path)
    if shard:
        raise ConfigError("--shard selects businesses of a fleet; it needs --all")
    if only and not write_back:
        raise ConfigError("--only selects what --write-back accepts; add --write-back")
    paths_l = manifest_paths(paths)
    desired = load_manifests(paths_l)
    biz = open_business(kw, paths_l, state_path, writes=write_back)
    target, store = biz.target, biz.store

    def load() -> State:
        state: State = store.load()
        store.check_target(state, target_ref(target))
        return state

    from reconciler.cli.progress import Spinner

    spinner = Spinner(obj.console)

    async def go(state: State) -> tuple[DriftReport, Actual]:
        async with biz.client() as api:
            with spinner.showing("refreshing"):
                return await detect(api, desired, state, target=target, progress=spinner)

    if not write_back:
        report, _ = run_async(go(load()))
    else:
        from reconciler.drift.writeback import write_back as accept

        with store.lock("drift --write-back"):
            state = load()
            report, actual = run_async(go(state))
            report = accept(report, desired, state, actual, store, paths=paths_l, only=only)
    code = exit_codes.for_drift(report.verdict)
    report = report.model_copy(update={"exit_code": code})
    if out:
        from reconciler.core.fsutil import atomic_write_text

        atomic_write_text(Path(out), report.to_json(), mode=0o644)
    from reconciler.core.safetext import printable, printable_json

    text = render_drift(report, fmt)  # names and values from the server: never raw on a terminal
    text = printable_json(text) if fmt == "json" else printable(text, keep="\n\t")
    click.echo(text, nl=False)
    return code
