"""Factories shared by the state tests (imported by name: tests/state is on sys.path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import reconciler
from reconciler.state.store import ResourceState, TargetRef

REPO = Path(reconciler.__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("worker.py")

TARGET = TargetRef(gateway_url="https://app.example.com/apigw", business_id="biz1")
OTHER = TargetRef(gateway_url="https://app.example.com/apigw", business_id="biz2")


def resource(kind: str = "ClientPackage", rid: str = "9yxsdkr1hdjtocpv", **applied: Any) -> ResourceState:
    """A valid ResourceState; ``applied`` defaults to a small price/currency pair."""
    return ResourceState(kind=kind, id=rid, fingerprint="sha256:" + "0" * 64,  # type: ignore[arg-type]
                         applied=applied or {"price": 100.0, "currency": "USD"},
                         booking_credit_ids={"svcA,svcB": "cr1"}, updated_at="2025-01-31T09:30:00Z")
