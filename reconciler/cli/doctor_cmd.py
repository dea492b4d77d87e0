"""``reconciler doctor``: check a target (tokens, feature gate, every route on each door, clock)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.common import client_for, resolve, run_async
from reconciler.cli.options import target_options

if TYPE_CHECKING:
    from reconciler.doctor.report import Report


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@target_options
@click.pass_obj
def doctor(obj: Any, /, fmt: str, **kw: Any) -> int:
    """Check that a target works, before the first apply. Read-only: safe against production.

    Checks the tokens (valid, which kind, which business), the booking_packages feature, every
    read route on each configured door with each usable token, the clock, latency and rate-limit
    headers; prints a route x door table and the exact reconciler.toml lines that would make
    failing routes work. Sends only GETs, creates and changes nothing, writes no file. Exit 0 when
    every route reconciler needs works, 1 otherwise.
    """
    from reconciler.doctor import diagnose, render_text
    from reconciler.doctor.report import check_remote

    target = resolve(kw)
    check_remote(target)  # before a client exists: the embedded one would create its database

    async def go() -> Report:
        async with client_for(target, kw) as api:
            return await diagnose(api)

    report = run_async(go())
    if fmt == "json":
        click.echo(report.to_json(), nl=False)
    else:
        click.echo(render_text(report), nl=False)
    return 0 if report.ok else 1
