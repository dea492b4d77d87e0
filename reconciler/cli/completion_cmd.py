"""``reconciler completion bash|zsh|fish``: the shell completion script, printed to stdout.

The script calls ``reconciler`` with ``_RECONCILER_COMPLETE`` set on every Tab (click's shell
completion), so it always matches the installed version; start-up is kept short for that
(the commands import their heavy dependencies only when they run).
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")

_HELP = """Print the shell completion script for SHELL.

\b
Install it once (then open a new shell):
  bash:  reconciler completion bash > ~/.local/share/bash-completion/completions/reconciler
  zsh:   reconciler completion zsh > "${fpath[1]}/_reconciler"
  fish:  reconciler completion fish > ~/.config/fish/completions/reconciler.fish

\b
Or load it for this shell only:
  eval "$(reconciler completion bash)"
"""


@click.command(help=_HELP)
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    from click.shell_completion import get_completion_class

    root = ctx.find_root()
    cls = get_completion_class(shell)
    assert cls is not None  # every name of SHELLS is one click knows
    click.echo(cls(root.command, {}, root.info_name or "reconciler", "_RECONCILER_COMPLETE").source())
