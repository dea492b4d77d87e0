"""``reconciler state push|pull|businesses``: move a state between the file and a database.

``push`` copies the state file (``--manifests PATH`` or ``--state FILE``) into the database
backend the configuration or ``--state-backend postgres`` names, for the business of the run's
target (onboarding a team or a fleet); ``pull`` copies it back into the file (a backup, or
leaving the database).  Neither overwrites a newer serial (see
:mod:`reconciler.state.backends.transfer`).  ``businesses`` lists the states a database holds.
None of these contacts vcita.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.common import state_config
from reconciler.cli.options import F, backend_options
from reconciler.cli.state_cmds import DEFAULT_MANIFESTS
from reconciler.core.errors import ConfigError

if TYPE_CHECKING:  # reconciler.state.store (pydantic) is imported when a subcommand runs, not for --help
    from reconciler.state.store import StateStore


def _both(f: F) -> F:
    f = backend_options(f)
    f = click.option("--target", "target_name", metavar="NAME", default=None,
                     help="The target (reconciler.toml) whose business's row to use; "
                          "by default the one plan would use.")(f)
    f = click.option("--state", "state_file", type=click.Path(dir_okay=False), default=None,
                     help="The state file (overrides --manifests).")(f)
    return click.option("--manifests", "manifests", type=click.Path(), default=DEFAULT_MANIFESTS, show_default=True,
                        help="Manifest folder whose .reconciler/ folder holds the state file.")(f)


def _stores(manifests: str, state_file: str | None, target_name: str | None, backend: str | None,
            dsn_env: str | None) -> tuple[StateStore, Any]:
    from reconciler.cli.state_cmds import _store

    config = state_config({"state_backend": backend, "state_dsn_env": dsn_env}, [manifests], None)
    if config.is_local:
        raise ConfigError("push and pull move a state between the file and a database, but the configured state "
                          "backend is local",
                          hint="Pass --state-backend postgres (and --state-dsn-env VAR), or set state = \"postgres\" "
                               "in reconciler.toml or the folder's target.toml.")
    from reconciler.state.store import StateStore

    file = StateStore.locate([manifests], state_file)
    database = _store(manifests, None, target_name, backend, dsn_env)
    return file, database


@click.command("push")
@_both
@click.pass_obj
def push(obj: Any, manifests: str, state_file: str | None, target_name: str | None, state_backend: str | None,
         state_dsn_env: str | None) -> int:
    """Copy the state file into the database backend (same serial).

    Refused, with nothing written, when the database already holds a newer serial of this
    business's state, another state, or the same serial with other content.
    """
    from reconciler.state.backends.transfer import transfer

    file, database = _stores(manifests, state_file, target_name, state_backend, state_dsn_env)
    done = transfer(file, database, "state push")
    obj.console.out(done.message, style="green" if done.copied else None)
    return 0


@click.command("pull")
@_both
@click.pass_obj
def pull(obj: Any, manifests: str, state_file: str | None, target_name: str | None, state_backend: str | None,
         state_dsn_env: str | None) -> int:
    """Copy the database backend's state into the state file (same serial).

    Refused, with nothing written, when the file holds a newer serial, another state, or the
    same serial with other content. The file's previous content is kept as its .backup.
    """
    from reconciler.state.backends.transfer import transfer

    file, database = _stores(manifests, state_file, target_name, state_backend, state_dsn_env)
    done = transfer(database, file, "state pull")
    obj.console.out(done.message, style="green" if done.copied else None)
    return 0


@click.command("businesses")
@backend_options
@click.pass_obj
def businesses(obj: Any, state_backend: str | None, state_dsn_env: str | None) -> int:
    """List the businesses whose state the database backend holds, and who holds their locks."""
    from reconciler.state.backends import list_businesses

    config = state_config({"state_backend": state_backend, "state_dsn_env": state_dsn_env}, None, None)
    rows = list_businesses(config)
    if not rows:
        obj.console.info("The state database holds no state yet.")
    for r in rows:
        lock = f"  {r.lock}" if r.lock else ""
        obj.console.out(f"{r.gateway_url}  {r.business_id}  serial {r.serial}  {r.resources} tracked, "
                        f"{r.archived} archived, {r.pending} pending  written {r.updated_at:%Y-%m-%d %H:%M:%S} "
                        f"by {r.updated_by}{lock}")
    return 0
