"""``plan --all``, ``drift --all`` and ``apply --all``: every business folder of ROOT,
concurrently, one table.

The exit code is the worst of the businesses' (an error beats drift or changes, which beat
pending, which beats in sync; for apply, an interruption beats an error).  ``--format json``
prints every business's row and full report (drift report, plan, or apply outcomes); ``--out
FILE`` saves that JSON as well (for plan: the fleet plan that ``apply --all FILE`` applies).
"""

from __future__ import annotations

import functools
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli import exit_codes
from reconciler.cli.common import run_async, stopping_on_signals
from reconciler.core.errors import ConfigError

if TYPE_CHECKING:
    from reconciler.fleet.businesses import Outcome, WorkOptions

TARGET_FLAGS = ("target_name", "gateway_url", "fallback_url", "business_id", "token_file", "directory_token_file")
COLUMNS = {
    "drift": ("drift", "pending", "in_sync"),
    "plan": ("create", "update", "replace", "import", "archive", "errors"),
    "apply": ("done", "failed", "skipped", "unknown", "refused", "remaining"),
}


def run_fleet_command(obj: Any, command: str, paths: tuple[str, ...], *, fmt: str, shard: str | None, jobs: int,
                      out: str | None, kw: dict[str, Any], state_path: str | None = None,
                      detailed_exitcode: bool = True) -> int:
    """Run ``command`` (drift | plan) over the business folders of ``paths[0]``; the exit code."""
    from reconciler.fleet import businesses as fleet

    if len(paths) > 1:
        raise ConfigError("--all takes one folder (default manifests), holding one folder per business")
    _no_single_business_flags(kw, state_path)
    root = Path(paths[0] if paths else "manifests")
    chosen = fleet.parse_shard(shard) if shard else None
    everyone = fleet.discover(root)
    selected = fleet.select(everyone, chosen)
    opts = _work_options(kw)
    work: Any = functools.partial(fleet.drift_business if command == "drift" else fleet.plan_business, opts=opts)
    if command == "plan":  # a fleet plan of two folders of one business is refused before it is applied
        work = fleet.refusing(work, fleet.shared_targets(everyone, cwd=opts.cwd, env=opts.env))
    from reconciler.cli.progress import Spinner

    spinner = Spinner(obj.console)
    with spinner.showing(f"{command} --all"):
        outcomes = run_async(fleet.run_all(selected, work, jobs=jobs,
                                           progress=spinner, phase=f"{command} --all"))
    codes = [exit_codes.for_business(command, o.status, detailed=detailed_exitcode) for o in outcomes]
    code = exit_codes.worst(codes, command)
    where = f"shard {shard} ({len(selected)} of {len(everyone)} businesses)" if shard else f"{len(selected)} businesses"
    if out:
        from reconciler.core.fsutil import atomic_write_text

        text = fleet_json(command, outcomes, codes, code, shard)
        if command == "plan":  # a fleet plan is applied as it was reviewed: sealed like a saved plan
            from reconciler.fleet.apply import sealed_fleet_plan

            text = sealed_fleet_plan(text)
        atomic_write_text(Path(out), text, mode=0o600 if command == "plan" else 0o644)
    if fmt == "json":
        click.echo(fleet_json(command, outcomes, codes, code, shard), nl=False)
    else:
        click.echo(render_table(command, outcomes, fmt, where, code), nl=False)
    return code


def _no_single_business_flags(kw: dict[str, Any], state_path: str | None) -> None:
    given = [f"--{k.replace('_name', '').replace('_', '-')}" for k in TARGET_FLAGS if kw.get(k)]
    if given or state_path:
        raise ConfigError(f"{', '.join(given + (['--state'] if state_path else []))} cannot be used with --all: "
                          "each business folder has its own target and state",
                          hint="Give each folder a [targets.<folder>] table in reconciler.toml or a target.toml.")


def _work_options(kw: dict[str, Any]) -> WorkOptions:
    from reconciler.cli.embedded import embedded_transport
    from reconciler.fleet import businesses as fleet

    return fleet.WorkOptions(cwd=Path.cwd(), env=dict(os.environ), concurrency=kw.get("concurrency"),
                             rate=kw.get("rate"), state_backend=kw.get("state_backend"),
                             state_dsn_env=kw.get("state_dsn_env"), embedded=embedded_transport)


def run_fleet_apply(obj: Any, paths: tuple[str, ...], *, saved: str | None, fmt: str, shard: str | None, jobs: int,
                    kw: dict[str, Any], state_path: str | None, auto_approve: bool, how: Any) -> int:
    """``apply --all [FLEET_PLAN.json] [ROOT]``: apply every business (of the shard); the exit code."""
    from reconciler.fleet import businesses as fleet
    from reconciler.fleet.apply import (
        FleetStop,
        apply_business,
        plan_folders,
        read_fleet_plan,
    )

    if len(paths) > 1:
        raise ConfigError("--all takes one folder (default manifests), holding one folder per business")
    _no_single_business_flags(kw, state_path)
    if saved is None and not auto_approve:
        raise ConfigError("apply --all without a saved fleet plan needs --auto-approve (there is no one to ask "
                          "about every business)",
                          hint="Review 'reconciler plan --all --out fleet.json', "
                               "then: reconciler apply --all fleet.json")
    root = Path(paths[0] if paths else "manifests")
    chosen = fleet.parse_shard(shard) if shard else None
    plans: dict[str, Any] = {}
    if saved is not None:
        plans, _ = read_fleet_plan(saved)
        everyone = plan_folders(root, plans)
    else:
        everyone = fleet.discover(root)
    selected = fleet.select(everyone, chosen)
    opts = _work_options(kw)
    stop = FleetStop()
    caught: list[signal.Signals] = []

    from reconciler.cli.progress import Spinner

    spinner = Spinner(obj.console)

    # every folder of the root, not only this shard's: another machine applies the others meanwhile
    refused = fleet.shared_targets(everyone, cwd=opts.cwd, env=opts.env)

    async def main() -> list[Outcome]:
        with stopping_on_signals(stop, caught, "apply --all"):
            return await fleet.run_all(
                selected, fleet.refusing(lambda b: apply_business(b, opts, how, stop, plans.get(b.name)), refused),
                jobs=jobs, progress=spinner, phase="apply --all")

    with spinner.showing("apply --all"):
        outcomes = run_async(main())
    codes = [exit_codes.for_business("apply", o.status) for o in outcomes]
    code = exit_codes.for_signal(caught[0]) if caught else exit_codes.worst(codes, "apply")
    what = f"shard {shard} ({len(selected)} of {len(everyone)} businesses)" if shard else f"{len(selected)} businesses"
    if fmt == "json":
        click.echo(fleet_json("apply", outcomes, codes, code, shard), nl=False)
    else:
        click.echo(render_table("apply", outcomes, fmt, what, code), nl=False)
    if caught:
        obj.console.warn(f"Interrupted ({caught[0].name}): nothing more was sent; what was in flight is recorded. "
                         "Run apply --all again to continue.")
    return code


def fleet_json(command: str, outcomes: list[Any], codes: list[int], code: int, shard: str | None) -> str:
    rows = []
    for o, business_code in zip(outcomes, codes, strict=True):
        report = o.report if o.report is None or isinstance(o.report, dict) else json.loads(o.report.model_dump_json())
        if command == "drift" and report is not None:
            report["exit_code"] = business_code  # what 'reconciler drift' on that business alone exits with
        rows.append({"business": o.business, "path": o.path, "business_id": o.business_id, "status": o.status,
                     "exit_code": business_code, "counts": o.counts, "error": o.error, "seconds": o.seconds,
                     "report": report})
    doc = {"format_version": 1, "command": command, "shard": shard, "exit_code": code, "businesses": rows}
    return json.dumps(doc, indent=2) + "\n"


def render_table(command: str, outcomes: list[Any], fmt: str, where: str, code: int) -> str:
    cols = COLUMNS[command]
    head = ["business", "business id", "status", *cols, "seconds"]
    rows = []
    for o in sorted(outcomes, key=lambda o: o.business):
        counts = [str(o.counts.get(c, "")) for c in cols]
        rows.append([o.business, o.business_id, o.status, *counts, f"{o.seconds:.2f}"])
    errors = [(o.business, o.error) for o in sorted(outcomes, key=lambda o: o.business) if o.error]
    tally: dict[str, int] = {}
    for o in outcomes:
        tally[o.status] = tally.get(o.status, 0) + 1
    summary = (f"{command} --all: {where}: " + (", ".join(f"{n} {s}" for s, n in sorted(tally.items())) or "none")
               + f". Exit code {code}.")
    if fmt == "markdown":
        lines = [f"<!-- reconciler-{command}-all -->", f"## reconciler {command} --all", "", f"**{summary}**", ""]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        lines.extend("| " + " | ".join(r) + " |" for r in rows)
        lines.extend(f"\n- `{b}`: {e}" for b, e in errors)
        return "\n".join(lines) + "\n"
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    numeric = {i for i, h in enumerate(head) if h in cols or h == "seconds"}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    lines = [line(head), line(["-" * w for w in widths]), *(line(r) for r in rows), ""]
    lines.extend(f"Error: {b}: {e}" for b, e in errors)
    lines.append(summary)
    return "\n".join(line.rstrip() for line in lines) + "\n"
