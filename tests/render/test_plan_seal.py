"""Saved plans are sealed: a digest over the whole file, checked before anything else is read."""

from __future__ import annotations

import json

import pytest

from reconciler.plan.document import SEAL_KEY, Plan, PlanTarget, sealed_json, unseal


def _plan() -> Plan:
    return Plan(created_at="2026-12-01T00:00:00Z", manifest_digest="sha256:00", state_lineage="a" * 32,
                state_serial=3, target=PlanTarget(gateway_url="https://x/apigw", business_id="b" * 16))


def test_a_sealed_plan_reads_back_and_any_edit_or_a_missing_seal_is_refused() -> None:
    raw = json.loads(sealed_json(_plan()))
    assert Plan.model_validate(unseal(raw)) == _plan()
    for key, value in (("state_serial", 4), ("notes", ["x"]), ("manifest_digest", "sha256:01")):
        with pytest.raises(ValueError, match="edited after it was made"):
            unseal({**raw, key: value})
    with pytest.raises(ValueError, match="carries no seal"):
        unseal({k: v for k, v in raw.items() if k != SEAL_KEY})
