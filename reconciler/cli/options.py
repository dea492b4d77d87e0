"""The options commands share (each defined once): the target flags, the state flags, the
money-safety options, ``--only``, the many-businesses flags, and the manifest paths' default.

Importing this module imports click only: ``--help`` and completion stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MANIFESTS = "manifests"


def manifest_paths(paths: tuple[str, ...]) -> list[str]:
    """The paths to read: as given, or the default ``manifests/`` folder."""
    return list(paths) if paths else [DEFAULT_MANIFESTS]


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


#: The payment requests a plan may open by default, for every target but the embedded sandbox.
DEFAULT_MAX_PAYMENT_REQUESTS = 25


def _client_ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from reconciler.core.safetext import printable

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


def shard_option(f: Any) -> Any:
    """``--all``, ``--shard I/N`` and ``--jobs N``: the many-businesses mode (reconciler.fleet.businesses)."""
    f = click.option("--jobs", type=click.IntRange(1, 256), default=8, show_default=True, metavar="N",
                     help="With --all: businesses worked on at the same time.")(f)
    f = click.option("--shard", metavar="I/N",
                     help="With --all: only the businesses of shard I of N (0 <= I < N), chosen by a stable "
                          "hash of the folder name; e.g. --shard \"$JOB_COMPLETION_INDEX/8\".")(f)
    f = click.option("--all", "all_", is_flag=True,
                     help="PATH (default manifests) holds one folder per business, each with its own "
                          "state and target: work on every one of them and print one summary table.")(f)
    return f
