"""What end-to-end tests read of the served sandbox through its operator API."""

from __future__ import annotations

from typing import Any


def client_packages(operator: Any, demo: dict[str, Any]) -> list[dict[str, Any]]:
    """Every client package of the demo business, as the sandbox holds it (reconciler cannot list them)."""
    got = operator("GET", f"/client_packages?business_id={demo['business']['id']}")
    return got["client_packages"] if isinstance(got, dict) else got
