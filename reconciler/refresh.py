"""Refresh and plan: where the remote, the state file and the pure planner meet.

One paged list of catalog packages (with items), one GET per tracked client package, one lookup
per distinct client e-mail and one services list — concurrently, through the remote client's
limits — and the creates an interrupted run left pending (the state's pending records).  Then the pure planner, which has the client describe each operation it plans
(method, path, door, body) as it goes: the plan is complete when it is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from reconciler.manifest import ManifestSet
from reconciler.plan import Plan, PlanTarget
from reconciler.planner import (
    Actual,
    PlanOptions,
    from_catalog,
    from_client_package,
    from_state,
    plan,
)
from reconciler.remote.client import VcitaClient
from reconciler.remote.target import Target
from reconciler.state import ResourceState, State, TargetRef


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


async def refresh(api: VcitaClient, desired: ManifestSet, resources: Mapping[str, ResourceState],
                  pending: Sequence[Any] = ()) -> Actual:
    """Read what the planner needs from the remote business, concurrently; ``pending`` are the
    state's pending creates, passed on to the planner."""
    cp_ids = [rs.id for addr, rs in resources.items() if addr.startswith("client_package.")]
    emails = sorted({(d.spec.client.email or "").lower() for d in desired.client_packages.values()
                     if d.spec.client.email})
    need_services = bool(desired.catalog_packages)

    async def clients_by_email() -> dict[str, str | None]:
        found = await asyncio.gather(*(api.find_client_by_email(e) for e in emails))
        return {e: (c.id if c else None) for e, c in zip(emails, found)}

    async def services() -> frozenset[str] | None:
        if not need_services:
            return None
        return frozenset(s.id for s in await api.list_services())

    catalog, client_pkgs, by_email, service_ids = await asyncio.gather(
        api.list_catalog_packages(include_items=True),
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
        pending=tuple(pending),
    )


async def make_plan(
    api: VcitaClient,
    desired: ManifestSet,
    state: State,
    *,
    target: Target,
    no_refresh: bool = False,
    allow_replace: bool = False,
    today: date | None = None,
    partial: bool = False,
    history_guard: bool | None = None,
    max_payment_requests: int | None = None,
) -> Plan:
    """Refresh (unless ``no_refresh``) and plan; the state's pending creates (left by an
    interrupted run) are resolved by the plan.  ``partial``: the manifests are part of what the
    state tracks (nothing outside is archived); ``history_guard`` (default: any target but the
    embedded sandbox) refuses client-package creates against a business the state does not know;
    ``max_payment_requests`` bounds what the plan may open."""
    pending = tuple(state.pending.values())
    if no_refresh:
        actual = from_state(state.resources, pending)
    else:
        actual = await refresh(api, desired, state.resources, pending)
    now = datetime.now(UTC)
    opts = PlanOptions(
        target=plan_target(target),
        today=today or now.date(),
        created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        state_lineage=state.lineage,
        state_serial=state.serial,
        allow_replace=allow_replace,
        archived=state.archived,
        partial=partial,
        history_guard=(not target.embedded) if history_guard is None else history_guard,
        max_payment_requests=max_payment_requests,
    )
    return plan(desired, state.resources, actual, opts, api.describe)
