"""The drift report: data only, frozen and serialisable (``format_version`` 1).

A report tells apart, per object and per field, two things Terraform folds into one exit code:

* **remote drift** — vcita differs from what reconciler last applied (state's ``applied`` view
  and fingerprint): someone changed it in the vcita UI or through the API;
* **pending changes** — the manifests differ from what was last applied: an edit not applied yet.

Values are the planner's normalised view values (money as canonical decimal text ``"540"``,
enums upper-case, dates ISO, keyed entries as ``items[svcA,svcB]``); ``null`` means absent.
Only objects that are not in sync are listed; the summary counts them all.  The JSON form is a
stable contract: fields are added, never renamed or removed, within a format version.
"""

from __future__ import annotations

from typing import Any, Literal

from reconciler.model.base import Frozen
from reconciler.plan.document import PlanTarget

DRIFT_FORMAT_VERSION = 1

#: The report's one-word answer (the CLI turns it into the exit code: ``cli/exit_codes.py``).
Verdict = Literal["in_sync", "drift", "pending"]

Status = Literal[
    "drift",              # managed fields changed in vcita since last applied
    "pending",            # the manifest changed since last applied
    "drift_and_pending",  # both, on the same or on different fields
    "unmanaged_drift",    # only fields the manifest does not set changed in vcita (informational)
    "vanished",           # tracked in state, no longer in vcita
    "untracked",          # in the manifests, not in state: not created (or imported) yet
    "removed",            # tracked in state, no longer in the manifests: apply stops tracking it
    "created_outside",    # a client package of a managed client and catalog package that reconciler
                          # did not create or adopt (found through payment requests): remote drift
]
DRIFT_STATUSES = frozenset({"drift", "drift_and_pending", "vanished", "created_outside"})
PENDING_STATUSES = frozenset({"pending", "drift_and_pending", "untracked", "removed"})


class FieldDrift(Frozen):
    """One field of one object: what was applied, what vcita has now, what the manifest wants.

    ``managed`` is false for a field the manifest leaves out: its remote changes are listed for
    information only and never count as drift or pending.  When ``remote_drift`` and ``pending``
    are both true the field changed on both sides; ``remote == desired`` then means both sides
    made the same change (nothing to apply, only the baseline to record).
    """

    path: str
    applied: Any = None
    remote: Any = None
    desired: Any = None
    managed: bool = True
    remote_drift: bool = False
    pending: bool = False

    @property
    def conflict(self) -> bool:
        """Changed in vcita and in the manifest, to different values."""
        return self.remote_drift and self.pending and self.remote != self.desired


class ObjectDrift(Frozen):
    address: str
    kind: Literal["CatalogPackage", "ClientPackage"]
    name: str
    remote_id: str | None = None
    status: Status
    fields: tuple[FieldDrift, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def remote_drift(self) -> bool:
        return self.status in DRIFT_STATUSES

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATUSES


class DriftSummary(Frozen):
    objects: int = 0  # every object looked at: manifests and state together
    in_sync: int = 0
    remote_drift: int = 0  # objects with drift (incl. vanished and drift_and_pending)
    pending: int = 0  # objects with pending changes (incl. untracked, removed, drift_and_pending)
    unmanaged_drift: int = 0
    vanished: int = 0
    untracked: int = 0
    removed: int = 0
    created_outside: int = 0


class WriteBackValue(Frozen):
    """A manifest value rewritten to vcita's current value."""

    address: str
    path: str
    file: str
    value: Any = None


class WriteBackSkip(Frozen):
    address: str
    path: str
    reason: str


class WriteBack(Frozen):
    """What ``drift --write-back`` did: values rewritten, baselines recorded, what it left alone."""

    files: tuple[str, ...] = ()
    values: tuple[WriteBackValue, ...] = ()
    accepted: tuple[str, ...] = ()  # addresses whose state baseline is now vcita's current view
    skipped: tuple[WriteBackSkip, ...] = ()


class DriftReport(Frozen):
    format_version: Literal[1] = 1  # DRIFT_FORMAT_VERSION
    created_at: str
    target: PlanTarget
    manifest_digest: str
    state_lineage: str
    state_serial: int
    #: the exit code of the ``reconciler drift`` that wrote this JSON (set by the CLI; None in a
    #: report made by library code)
    exit_code: int | None = None
    verdict: Verdict
    summary: DriftSummary
    objects: tuple[ObjectDrift, ...] = ()
    write_back: WriteBack | None = None
    #: how client packages created outside reconciler were looked for (vcita's payment requests),
    #: or why they could not be (None: not looked for)
    second_memory: str | None = None

    @property
    def drifted(self) -> tuple[ObjectDrift, ...]:
        return tuple(o for o in self.objects if o.remote_drift)

    @property
    def pending(self) -> tuple[ObjectDrift, ...]:
        return tuple(o for o in self.objects if o.pending)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DriftReport:
        return cls.model_validate_json(text)


def verdict_for(objects: tuple[ObjectDrift, ...] | list[ObjectDrift]) -> Verdict:
    """``drift`` when anything drifted in vcita, else ``pending`` when only pending changes, else
    ``in_sync``."""
    if any(o.remote_drift for o in objects):
        return "drift"
    if any(o.pending for o in objects):
        return "pending"
    return "in_sync"


def summarise(objects: tuple[ObjectDrift, ...] | list[ObjectDrift], total: int) -> DriftSummary:
    statuses = [o.status for o in objects]
    return DriftSummary(
        objects=total,
        in_sync=total - len([s for s in statuses if s != "unmanaged_drift"]),
        remote_drift=sum(1 for o in objects if o.remote_drift),
        pending=sum(1 for o in objects if o.pending),
        unmanaged_drift=statuses.count("unmanaged_drift"),
        vanished=statuses.count("vanished"),
        untracked=statuses.count("untracked"),
        removed=statuses.count("removed"),
        created_outside=statuses.count("created_outside"),
    )
