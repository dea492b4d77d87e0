"""The `sandbox` click group: `serve`, `reset`, `info` (registered as `reconciler sandbox ...`,
and runnable alone as `python -m reconciler.sandbox ...`).

The database defaults to `.reconciler/sandbox.db` under the working directory (its folder is
created); a new database is seeded with the demo business.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from reconciler.sandbox.store import Store

# The sandbox's modules are imported when a subcommand runs, not for --help or completion.
SERVE_EXTRA_HINT = ("serving the sandbox over HTTP needs uvicorn, from the serve extra: "
                    "pip install 'reconciler[serve]' (the embedded sandbox that every command uses "
                    "when no target is configured needs nothing more)")

DEFAULT_DB = Path(".reconciler") / "sandbox.db"

db_option = click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path),
                         default=DEFAULT_DB, show_default=True, help="SQLite database file.")


def _open(db: Path) -> Store:
    from reconciler.sandbox import seed
    from reconciler.sandbox.store import Store
    from reconciler.sandbox.values import Clock

    store = Store(db)
    seed.seed_demo(store, Clock())
    return store


def _open_or_explain(db: Path) -> Store:
    try:
        return _open(db)
    except sqlite3.DatabaseError as e:
        raise click.ClickException(
            f"the sandbox database {db} cannot be used ({e}); 'reconciler sandbox reset --db {db}' replaces it"
        ) from None


@click.group(name="sandbox")
def sandbox() -> None:
    """A local, faithful vcita API for trying and testing the reconciler."""


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0: any free).")
@db_option
@click.option("--operator/--no-operator", default=True, show_default=True,
              help="Mount the operator API under /_sandbox.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--list-lag", type=click.FloatRange(0, 3600), default=0, show_default=True, metavar="SECONDS",
              help="New catalog packages appear in the package list only after SECONDS (as vcita's list lags).")
@click.option("--list-refuses-staff", type=click.Choice(["gateway", "fallback"]), multiple=True,
              help="The package list refuses staff tokens on this door (422 Unauthorized), as a recipe saw.")
@click.option("--payment-request-lag", type=click.FloatRange(0, 3600), default=0, show_default=True,
              metavar="SECONDS", help="New payment requests appear in their list only after SECONDS.")
@click.option("--free-packages-open-no-request", is_flag=True,
              help="Client packages of price 0 open no payment request (an open question of the API).")
@click.option("--open-gateway", is_flag=True,
              help="A gateway that serves every route (no documented staging refusals): a gateway-only target.")
def serve(host: str, port: int, db: Path, operator: bool, log_level: str, list_lag: float,
          list_refuses_staff: tuple[str, ...], payment_request_lag: float, free_packages_open_no_request: bool,
          open_gateway: bool) -> None:
    """Serve the sandbox over HTTP on loopback until interrupted.

    Needs the serve extra (pip install 'reconciler[serve]').

    \b
    Examples:
      reconciler sandbox serve                 gateway and fallback on 127.0.0.1:8765
      reconciler sandbox serve --port 0 --list-lag 20 --list-refuses-staff gateway
    """
    try:
        from reconciler.sandbox.server import (
            NotLoopback,
            base_url_of,
            bind,
            make_server,
        )
    except ModuleNotFoundError as e:
        if e.name != "uvicorn":
            raise
        raise click.ClickException(SERVE_EXTRA_HINT) from None
    from reconciler.sandbox.app import create_app

    try:
        sock = bind(host, port)
    except NotLoopback as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    try:
        app = create_app(db, operator=operator, gateway_failures=[] if open_gateway else None,
                         behaviour={"list_lag_seconds": list_lag, "list_refuses_staff": list(list_refuses_staff),
                                    "payment_request_lag_seconds": payment_request_lag,
                                    "free_packages_open_no_request": free_packages_open_no_request})
    except sqlite3.DatabaseError as e:
        sock.close()
        raise click.ClickException(
            f"the sandbox database {db} cannot be used ({e}); 'reconciler sandbox reset --db {db}' replaces it"
        ) from None
    from reconciler.sandbox import seed

    data = seed.info(app.state.sandbox.store)
    base = base_url_of(sock)
    click.echo(f"gateway:   {base}/apigw")
    click.echo(f"fallback:  {base}/api2")
    if operator:
        click.echo(f"operator:  {base}/_sandbox")
    click.echo(f"database:  {db}")
    click.echo(f"business:  {data['business_id']}")
    click.echo(f"staff token:     {data['staff_token']}")
    click.echo(f"directory token: {data['directory_token']}", nl=True)
    server = make_server(app, log_level=log_level)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled once it has stopped
        click.echo("sandbox stopped")
    finally:
        sock.close()


@sandbox.command()
@db_option
def reset(db: Path) -> None:
    """Wipe the database and seed the demo business again (a damaged file is replaced)."""
    try:
        store = _open(db)
    except sqlite3.DatabaseError:
        # Not a database any more (truncated, overwritten): it only ever held the sandbox.
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        store = _open(db)
    from reconciler.sandbox import seed
    from reconciler.sandbox.values import Clock

    try:
        seed.reset(store, Clock())
        click.echo(json.dumps(seed.info(store), indent=2))
    finally:
        store.close()


@sandbox.command()
@db_option
def info(db: Path) -> None:
    """Print the businesses, ids and tokens of the database as JSON."""
    from reconciler.sandbox import seed

    store = _open_or_explain(db)
    try:
        data = seed.info(store)
        data.update(db_path=str(db), doors={"gateway": "/apigw", "fallback": "/api2",
                                            "operator": "/_sandbox"})
        click.echo(json.dumps(data, indent=2))
    finally:
        store.close()
