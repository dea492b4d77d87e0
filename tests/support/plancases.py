"""Shared by the planner and render tests: turn a planner case (YAML) into a Plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from reconciler.manifest.load import load_manifests
from reconciler.plan.document import PlanTarget
from reconciler.planner import Actual, PlanOptions, from_catalog, from_client_package, from_state, plan
from reconciler.remote import DEFAULT_ROUTES
from reconciler.remote import normalize as api
from reconciler.remote.calls import Offline


@dataclass(frozen=True)
class Pending:
    """A pending create of the state, as the planner reads it."""

    id: str
    address: str
    kind: str
    details: dict[str, Any]
    opened_at: str = "2026-11-20T10:00:00Z"


@dataclass(frozen=True)
class Archived:
    """An archived record of the state (an object that left the manifests), as the planner reads it."""

    id: str
    address: str
    identity: dict[str, Any]
    kind: str = "ClientPackage"


@dataclass
class Tracked:
    kind: str
    id: str
    fingerprint: str = "sha256:state"
    applied: dict[str, Any] = field(default_factory=dict)
    booking_credit_ids: dict[str, str] = field(default_factory=dict)


def run_case(case: dict[str, Any], tmp_path: Path):  # type: ignore[no-untyped-def]
    """``case["manifests"]`` is one file's text, or a mapping of file names to texts."""
    files = case["manifests"] if isinstance(case["manifests"], dict) else {"m.yaml": case["manifests"]}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    desired = load_manifests([tmp_path / name for name in files])
    state = {
        addr: Tracked(kind="CatalogPackage" if addr.startswith("catalog") else "ClientPackage", **v)
        for addr, v in (case.get("state") or {}).items()
    }
    remote = case.get("remote") or {}
    catalog = {}
    for raw in remote.get("catalog_packages") or []:
        obj = from_catalog(api.catalog_package(raw))
        catalog[obj.id] = obj
    clients: dict[str, Any] = {}
    for rid, raw in (remote.get("client_packages") or {}).items():
        clients[rid] = None if raw is None else from_client_package(api.client_package(raw))
    services = remote.get("service_ids")
    actual = Actual(
        catalog_packages=catalog, client_packages=clients,
        clients_by_email={k.lower(): v for k, v in (remote.get("clients_by_email") or {}).items()},
        service_ids=frozenset(services) if services is not None else None,
        refreshed=bool(case.get("refreshed", True)),
        pending=tuple(Pending(**p) for p in case.get("pending") or ()),
        catalog_listed_at=str(case.get("listed_at", "2026-11-21T00:00:00Z")),
    )
    if not case.get("refreshed", True):  # --no-refresh: what state says was last applied
        actual = from_state(state, actual.pending)
    opts = PlanOptions(
        target=PlanTarget(gateway_url="http://127.0.0.1/apigw", business_id="biz"),
        today=date.fromisoformat(str(case.get("today", "2026-11-21"))),
        created_at="2026-11-21T00:00:00Z", state_lineage="lineage", state_serial=1,
        allow_replace=bool(case.get("allow_replace", False)),
        archived={rid: Archived(id=rid, **v) for rid, v in (case.get("archived") or {}).items()},
        partial=bool(case.get("partial", False)),
    )
    return plan(desired, state, actual, opts, Offline(DEFAULT_ROUTES))
