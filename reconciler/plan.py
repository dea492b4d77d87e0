"""Plan data: what will change, why, and against which remote object — and its JSON form.

A Plan is frozen and serialisable.  It is built by the planner, rendered by ``render``, saved by
``plan --out`` and executed by the applier exactly as it is: every change carries the request
body apply will send, the state it expects to find, and a fingerprint of the remote object it
was computed against, so nothing is decided again at apply time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from reconciler.model.base import Frozen

PLAN_FORMAT_VERSION = 1

Action = Literal["create", "update", "replace", "import", "forget", "noop"]
Kind = Literal["CatalogPackage", "ClientPackage"]

#: A value not known until apply (e.g. the id of a package created earlier in the same apply).
KNOWN_AFTER_APPLY = "(known after apply)"


def fingerprint(view: dict[str, Any]) -> str:
    """A stable digest of a normalised object view (sorted-key JSON)."""
    data = json.dumps(view, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()[:32]


# The per-change records are frozen dataclasses, not models: a large plan builds hundreds of
# thousands of them, and a dataclass costs a microsecond where a model costs fifteen.  Plan (a
# model) still validates and serialises them.


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: ``path`` in the manifest's terms, before (remote) and after (desired)."""

    path: str
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class ExpectedState:
    """What the state must hold for this change to apply: absent for a create, else id+fingerprint."""

    present: bool
    id: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class Request:
    """An API call apply will make.  Body values may be ``{"$ref": "<address>.id"}``."""

    operation: str  # e.g. "create_catalog_package"; the remote route table maps it to a path
    method: str
    path: str
    door: str = ""  # filled from the route table: "gateway" | "fallback"
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Change:
    address: str
    kind: Kind
    action: Action
    name: str  # metadata.name
    remote_id: str | None = None
    before: dict[str, Any] | None = None  # normalised remote view (managed fields)
    after: dict[str, Any] | None = None  # normalised desired view
    field_changes: tuple[FieldChange, ...] = ()
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    requests: tuple[Request, ...] = ()
    depends_on: tuple[str, ...] = ()
    remote_fingerprint: str | None = None
    expected_state: ExpectedState = ExpectedState(present=False)
    #: Why apply would refuse this change as planned (e.g. replace without --allow-replace).
    blocked: str | None = None


class Problem(Frozen):
    """Something the plan found that a person must fix; ``error`` blocks apply."""

    address: str
    severity: Literal["error", "warning"]
    message: str
    hint: str | None = None


class Unmanaged(Frozen):
    """A remote catalog package no manifest declares: listed, never touched."""

    id: str
    name: str
    active: bool = True


class PlanTarget(Frozen):
    gateway_url: str
    fallback_url: str = ""
    business_id: str
    embedded: bool = False


class Plan(Frozen):
    format_version: Literal[1] = PLAN_FORMAT_VERSION
    created_at: str
    target: PlanTarget
    manifest_digest: str
    state_lineage: str
    state_serial: int
    refreshed: bool = True
    allow_replace: bool = False
    changes: tuple[Change, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    problems: tuple[Problem, ...] = ()
    noop_count: int = 0
    notes: tuple[str, ...] = Field(default=())

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action != "noop")

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def blocked(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.blocked)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.model_validate_json(text)
