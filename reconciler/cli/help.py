"""Finding one's way in the CLI: examples at the end of every ``--help``, and
``reconciler completion bash|zsh|fish``.

The examples are kept here, apart from the commands' docstrings, so that
``tests/test_cli_conventions.py`` can check every command has some (a new command without one
fails it) and that each parses against the command it documents.  Commands whose docstring opens
with usage lines (apply, import, state rm, state mv) get further examples here.

The completion script calls ``reconciler`` with ``_RECONCILER_COMPLETE`` set on every Tab (click's
shell completion), so it always matches the installed version; start-up is kept short for that
(the commands import their heavy dependencies only when they run).
"""

from __future__ import annotations

import click

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "validate": [
        ("reconciler validate", "check manifests/ offline"),
        ("reconciler validate infra/ --format json", "every problem as JSON, for editors and CI"),
    ],
    "schema": [("reconciler schema --out schema/reconciler-v1.schema.json", "the JSON Schema, for editors")],
    "plan": [
        ("reconciler plan", "what apply would change"),
        ("reconciler plan --out plan.json --detailed-exitcode", "save it for review; exit 2 if there are changes"),
        ("reconciler plan --all --shard 0/4 manifests", "one shard of a folder of businesses"),
    ],
    "show": [
        ("reconciler show plan.json", "the saved plan as apply would run it"),
        ("reconciler show plan.json --format github-summary", "for a CI job's $GITHUB_STEP_SUMMARY"),
    ],
    "apply": [
        ("reconciler apply plan.json", "exactly the reviewed plan"),
        ("reconciler apply --auto-approve", "plan and apply in a script"),
    ],
    "drift": [
        ("reconciler drift", "exit 0 in sync, 2 remote drift, 3 pending only"),
        ("reconciler drift --write-back", "accept vcita's values into the manifests"),
    ],
    "import": [("reconciler import catalog_package.piano-10 7dq1mb2tyg9n4r6p", "adopt an existing package")],
    "export": [("reconciler export --out manifests", "manifests for every catalog package of the business")],
    "doctor": [
        ("reconciler doctor", "check the configured target before the first apply"),
        ("reconciler --target staging doctor --format json", "a named target of reconciler.toml"),
    ],
    "state": [("reconciler state list", "what is tracked")],
    "state list": [("reconciler state list --manifests infra/manifests", "the state next to other manifests")],
    "state show": [("reconciler state show catalog_package.piano-10", "one record, as JSON")],
    "state unlock": [("reconciler state unlock 3f9c2a", "the id the refused command printed")],
    "state forget-intent": [("reconciler state forget-intent alice-10", "after checking vcita has no such package"),
                            ("reconciler state forget-intent alice-10 bob-5", "several, in one state write")],
    "state push": [("reconciler state push --state-backend postgres", "the state file into the database, once")],
    "state pull": [("reconciler state pull --state-backend postgres", "the database's state into the file")],
    "state businesses": [("reconciler state businesses --state-backend postgres", "every business the database holds")],
    "state rm": [("reconciler state rm catalog_package.old-offer --yes", "stop managing it; vcita keeps it")],
    "state mv": [("reconciler state mv client_package.a client_package.b", "after renaming metadata.name"),
                 ("reconciler state mv client_package.a 'client_package_set.spring[\"alice@example.com\"]'",
                  "into a ClientPackageSet, by hand")],
    "sandbox": [("reconciler sandbox serve", "the local vcita API on 127.0.0.1:8765")],
    "sandbox serve": [("reconciler sandbox serve --port 0 --list-lag 20", "any free port; a lagging list")],
    "sandbox reset": [("reconciler sandbox reset", "back to the demo business")],
    "sandbox info": [("reconciler sandbox info", "ids, URLs and tokens of the local sandbox")],
    "completion": [("eval \"$(reconciler completion bash)\"", "Tab completion in this shell")],
}


def epilog(path: str) -> str | None:
    """The ``Examples:`` block for the command at ``path`` ("state rm"), unwrapped by click."""
    rows = EXAMPLES.get(path)
    if not rows:
        return None
    width = max(len(cmd) for cmd, _ in rows)
    return "\b\nExamples:\n" + "\n".join(f"  {cmd:<{width}}  # {what}" for cmd, what in rows)


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
