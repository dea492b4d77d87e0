"""Plan data: the operations a run will perform, what they were computed against, and the JSON form.

A Plan is frozen and serialisable.  It is built once, complete, by the planner (which has the
remote layer describe each operation's requests as it goes), rendered by ``render``, saved by
``plan --out`` and executed by the applier exactly as it is: every operation carries its
values, the requests apply will send, the state it expects to find and a fingerprint of the
remote object it was computed against, so nothing is decided again at apply time.

The JSON form is versioned (:data:`PLAN_FORMAT_VERSION`); a saved plan of another version is
refused by :func:`check_format_version` with a message saying so, never half-read.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field

from reconciler.core import jsontext
from reconciler.model.base import Frozen
from reconciler.plan.operations import (
    KNOWN_AFTER_APPLY,
    AnyOperation,
    CreateClientPackage,
    ExpectedState,
    FieldChange,
    Operation,
    Request,
)

#: 2: typed operations (``operations``, each with an ``op``), no-ops counted, not listed.
PLAN_FORMAT_VERSION: Literal[2] = 2

__all__ = [
    "KNOWN_AFTER_APPLY", "PLAN_FORMAT_VERSION", "ExpectedState", "FieldChange", "PaymentRequest",
    "PaymentRequests", "Plan", "PlanTarget",
    "Problem", "Request", "Unmanaged", "check_format_version", "fingerprint",
]


def fingerprint(view: dict[str, Any]) -> str:
    """A stable digest of a normalised object view: of ``json.dumps(view, sort_keys=True,
    separators=(",", ":"), default=str)``, the very bytes (``core.jsontext``; an apply fingerprints
    every object it records, and fingerprints are compared with those older versions wrote)."""
    return "sha256:" + hashlib.sha256(jsontext.dumps(view, sort_keys=True, default=str)).hexdigest()[:32]


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


class PaymentRequest(Frozen):
    """One payment request a create would open: for whom, for what, and how much (as sent)."""

    address: str
    client_id: str
    package: str  # the catalog package's manifest name, or its remote name and id
    amount: str | None = None  # decimal text; None when the catalog price is not known here
    currency: str | None = None
    replaces: str | None = None


class PaymentRequests(Frozen):
    """The payment requests a plan would open, summed per currency, and the reviewed limit."""

    count: int = 0
    items: tuple[PaymentRequest, ...] = ()
    totals: dict[str, str] = Field(default_factory=dict)  # currency -> decimal text
    limit: int | None = None


class PlanTarget(Frozen):
    gateway_url: str
    fallback_url: str = ""
    business_id: str
    embedded: bool = False


class Plan(Frozen):
    format_version: Literal[2] = PLAN_FORMAT_VERSION
    created_at: str
    target: PlanTarget
    manifest_digest: str
    state_lineage: str
    state_serial: int
    refreshed: bool = True
    allow_replace: bool = False
    operations: tuple[AnyOperation, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    problems: tuple[Problem, ...] = ()
    #: objects already as the manifests say (no operation)
    noop_count: int = 0
    #: the payment requests apply would open (every client package created opens one)
    payment_requests: PaymentRequests = Field(default_factory=PaymentRequests)
    #: tracked objects whose manifests are outside the paths of a partial plan: left alone
    out_of_scope: int = 0
    #: the --only patterns the plan was made for (empty: all the manifests given)
    only: tuple[str, ...] = ()
    #: manifest objects --only left out, and those it added as dependencies of the selection
    left_out: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    #: tracked client packages a --refresh=changed plan did not read (their manifests ask for what
    #: was last applied): planned from the state, a change made in vcita to them is not seen
    unread: int = 0
    #: what a reviewer calls the ids the plan shows (services, clients, catalog packages), from the
    #: lists the refresh read: shown next to each id in every format
    names: dict[str, str] = Field(default_factory=dict)
    #: the client and the catalog package (id, or the address of one created by this plan) of each
    #: client package the plan acts on: what the Markdown rendering groups changes by
    subjects: dict[str, tuple[str, str]] = Field(default_factory=dict)
    notes: tuple[str, ...] = Field(default=())

    def count(self, action: str) -> int:
        """How many operations have ``action`` (create, update, replace, import, forget, resolve...)."""
        return sum(1 for op in self.operations if op.action == action)

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def blocked(self) -> tuple[CreateClientPackage, ...]:
        """Replacements planned without --allow-replace (apply refuses the plan)."""
        return tuple(op for op in self.operations if isinstance(op, CreateClientPackage) and op.blocked)

    def chains(self) -> list[tuple[str, tuple[Operation, ...]]]:
        """The operations grouped by address, in plan order: each group runs in order, as one unit."""
        groups: dict[str, list[Operation]] = {}
        for op in self.operations:
            groups.setdefault(op.address, []).append(op)
        return [(address, tuple(ops)) for address, ops in groups.items()]

    @property
    def unchecked_creates(self) -> tuple[str, ...]:
        """What a plan made without a refresh (``--no-refresh``) would create or replace (apply
        refuses it): it never looked in vcita (by name, through the payment requests) for objects
        that already exist, which is what keeps a lost, older or empty state from creating them again."""
        if self.refreshed:
            return ()
        return tuple(op.address for op in self.operations if op.action in ("create", "replace"))

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses the plan acts on, in plan order."""
        return tuple(dict.fromkeys(op.address for op in self.operations))

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.model_validate_json(text)


def check_format_version(raw: Any) -> str | None:
    """Why a parsed plan file cannot be read by this reconciler (None: its version is ours)."""
    found = raw.get("format_version") if isinstance(raw, dict) else None
    if isinstance(found, int) and not isinstance(found, bool) and found == PLAN_FORMAT_VERSION:
        return None
    if isinstance(found, int) and not isinstance(found, bool):
        who = "an older" if found < PLAN_FORMAT_VERSION else "a newer"
        return (f"it is a plan of format_version {found}, made by {who} reconciler; this one reads "
                f"format_version {PLAN_FORMAT_VERSION} only")
    return f"it is not a reconciler plan (format_version {found!r})"


SEAL_KEY = "seal"


def _canonical_digest(raw: dict[str, Any]) -> str:
    data = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(data.encode("utf-8")).hexdigest()


def sealed_json(plan: Plan) -> str:
    """The saved-plan file: the plan's JSON with a ``seal``, a digest over all the rest of it."""
    raw = json.loads(plan.to_json())
    return json.dumps({**raw, SEAL_KEY: _canonical_digest(raw)}, indent=2, ensure_ascii=False) + "\n"


def unseal(raw: Any) -> dict[str, Any]:
    """A saved plan's content without its seal; ValueError saying why when the seal is missing or
    does not match (the file was edited after it was made, anywhere in it)."""
    if not isinstance(raw, dict) or SEAL_KEY not in raw:
        raise ValueError("it carries no seal: it was not saved by 'reconciler plan --out', or the seal was removed")
    content = {k: v for k, v in raw.items() if k != SEAL_KEY}
    if raw[SEAL_KEY] != _canonical_digest(content):
        raise ValueError("its content does not match its seal: it was edited after it was made")
    return content
