"""Refresh and plan: where the remote, the state file and the pure planner meet.

One paged list of catalog packages (with items), one GET per tracked client package, one lookup
per distinct client e-mail and one services list — concurrently, through the remote client's
limits.  The list lags behind creation (API-NOTES §8: up to 20 s), so a tracked catalog package
missing from it is read by id (:func:`read_catalog`) before the planner may call it vanished.
Then the pure planner, then each request of the plan is labelled with the door the client will
use for it, and a request the target has no token for becomes a plan error (a directory-only
target cannot create client packages, say) instead of an apply failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from reconciler.errors import NotFoundError
from reconciler.manifest import ManifestSet
from reconciler.model.remote import RemoteCatalogPackage
from reconciler.plan import Plan, PlanTarget, Problem
from reconciler.planner import Actual, PlanOptions, from_catalog, from_client_package, from_state, plan
from reconciler.remote.client import VcitaClient
from reconciler.remote.target import Target
from reconciler.state import ResourceState, State, TargetRef

log = logging.getLogger("reconciler.refresh")


def target_ref(target: Target) -> TargetRef:
    """The identity of a target as state records it (no secrets)."""
    return TargetRef(gateway_url="embedded" if target.embedded else target.gateway_url,
                     business_id=target.business_id)


def plan_target(target: Target) -> PlanTarget:
    return PlanTarget(
        gateway_url="embedded" if target.embedded else target.gateway_url,
        fallback_url="" if target.embedded else (target.fallback_url or ""),
        business_id=target.business_id, embedded=target.embedded,
    )


@dataclass(frozen=True)
class RefreshStats:
    catalog_packages: int
    client_packages: int
    requests: int


async def read_catalog(api: VcitaClient, tracked_ids: Iterable[str]) -> list[RemoteCatalogPackage]:
    """Every catalog package the list shows, plus each of ``tracked_ids`` the list does not show
    but that exists when read by id (the list lags behind creation, API-NOTES §8).

    A tracked id that reading by id does not find either (404, or 422 "not found") is left out:
    only then is it gone.  Any other error of a read by id is raised as it is.
    """
    listed = await api.list_catalog_packages(include_items=True)
    shown = {p.id for p in listed}
    missing = [rid for rid in dict.fromkeys(tracked_ids) if rid and rid not in shown]
    if not missing:
        return listed

    async def by_id(rid: str) -> RemoteCatalogPackage | None:
        try:
            return await api.get_catalog_package(rid)
        except NotFoundError:
            return None

    found = [p for p in await asyncio.gather(*(by_id(rid) for rid in missing)) if p is not None]
    if found:
        log.info("%d tracked catalog package(s) not in the list yet, found by id: %s", len(found),
                 ", ".join(p.id for p in found))
    return listed + found


async def refresh(api: VcitaClient, desired: ManifestSet, resources: Mapping[str, ResourceState]) -> Actual:
    """Read what the planner needs from the remote business, concurrently."""
    cp_ids = [rs.id for addr, rs in resources.items() if addr.startswith("client_package.")]
    catalog_ids = [rs.id for addr, rs in resources.items() if addr.startswith("catalog_package.")]
    emails = sorted({(d.spec.client.email or "").lower() for d in desired.client_packages.values()
                     if d.spec.client.email})
    # A directory-only target cannot list services (staff only): services are then not checked.
    need_services = bool(desired.catalog_packages) and api.can("list_services")

    async def clients_by_email() -> dict[str, str | None]:
        found = await asyncio.gather(*(api.find_client_by_email(e) for e in emails))
        return {e: (c.id if c else None) for e, c in zip(emails, found)}

    async def services() -> frozenset[str] | None:
        if not need_services:
            return None
        return frozenset(s.id for s in await api.list_services())

    catalog, client_pkgs, by_email, service_ids = await asyncio.gather(
        read_catalog(api, catalog_ids),
        api.get_client_packages(cp_ids),
        clients_by_email(),
        services(),
    )
    return Actual(
        catalog_packages={p.id: from_catalog(p) for p in catalog},
        client_packages={uid: (from_client_package(cp) if cp else None) for uid, cp in client_pkgs.items()},
        catalog_names={p.id: p.name for p in catalog},
        clients_by_email=by_email,
        service_ids=service_ids,
        refreshed=True,
    )


def label_doors(p: Plan, api: VcitaClient) -> Plan:
    """Each request of the plan, labelled with the door the client will send it through; and a
    plan error for each change with a request the target has no accepted token for."""
    changes, problems = [], []
    for c in p.changes:
        if not c.requests:
            changes.append(c)
            continue
        reqs = tuple(replace(r, door=_door(api, r.operation)) for r in c.requests)
        changes.append(replace(c, requests=reqs))
        cannot = sorted({f"{r.method} {api.routes[r.operation].template}" for r in c.requests
                         if r.operation in _operations(api) and not api.can(r.operation)})
        if cannot and c.action != "noop":
            problems.append(Problem(
                address=c.address, severity="error",
                message=f"target {api.target.name} cannot {c.action} this: vcita refuses its "
                        f"{_tokens(api)} on {', '.join(cannot)}",
                hint="Add a staff token to the target (VCITA_STAFF_TOKEN, --token-file, or token_env in "
                     "reconciler.toml); 'reconciler doctor' shows what each token can do.",
            ))
    update: dict[str, Any] = {"changes": tuple(changes)}
    if problems:
        update["problems"] = p.problems + tuple(problems)
    if not api.can("list_services") and any(c.kind == "CatalogPackage" for c in p.changes):
        update["problems"] = update.get("problems", p.problems) + (Problem(
            address="target", severity="warning",
            message=f"services were not checked: target {api.target.name} has no staff token, and vcita "
                    "lists services for staff tokens only"),)
    return p.model_copy(update=update)


def _operations(api: VcitaClient) -> set[str]:
    return {r.name for r in api.routes}


def _tokens(api: VcitaClient) -> str:
    kinds = [k for k, t in (("staff", api.target.staff_token), ("directory", api.target.directory_token)) if t]
    return " and ".join(kinds) + (" token" if len(kinds) == 1 else " tokens")


def _door(api: VcitaClient, operation: str) -> str:
    try:
        route = api.routes[operation]
    except KeyError:
        return ""
    door: Any = api.dispatcher.door_for(route)
    return str(getattr(door, "value", door))


async def make_plan(
    api: VcitaClient,
    desired: ManifestSet,
    state: State,
    *,
    target: Target,
    no_refresh: bool = False,
    allow_replace: bool = False,
    today: date | None = None,
) -> Plan:
    """Refresh (unless ``no_refresh``), plan, and label doors."""
    actual = from_state(state.resources) if no_refresh else await refresh(api, desired, state.resources)
    now = datetime.now(UTC)
    opts = PlanOptions(
        target=plan_target(target),
        today=today or now.date(),
        created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        state_lineage=state.lineage,
        state_serial=state.serial,
        allow_replace=allow_replace,
    )
    return label_doors(plan(desired, state.resources, actual, opts), api)
