"""Drift detection: what changed in vcita behind reconciler's back, and what is not applied yet.

    model.py    DriftReport / ObjectDrift / FieldDrift (the stable JSON form) and the verdict
    compare.py  the pure comparison of applied (state), remote (refresh) and desired (manifests)
    outside.py  client packages created outside reconciler, through vcita's payment requests
    render.py   text and Markdown renderings (JSON is ``DriftReport.to_json``)
    writeback.py  ``drift --write-back``: vcita's values into the manifests and the baseline

:func:`detect` is the one place where drift meets I/O: one refresh (the same reads as ``plan``),
then the pure comparison.  It never writes anything; ``reconciler.drift.writeback`` is the separate,
explicit step that accepts remote drift into the manifests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.drift.compare import compare, field_drifts, flatten
from reconciler.drift.model import (
    DRIFT_FORMAT_VERSION,
    DriftReport,
    FieldDrift,
    ObjectDrift,
    Verdict,
    WriteBack,
    verdict_for,
)
from reconciler.drift.render import render_drift
from reconciler.state.store import State, utc_now

if TYPE_CHECKING:
    from reconciler.core.progress import ProgressSink
    from reconciler.model.manifest_set import ManifestSet
    from reconciler.planner.actual import Actual
    from reconciler.remote.client import VcitaClient
    from reconciler.remote.target import Target

__all__ = [
    "DRIFT_FORMAT_VERSION", "DriftReport", "FieldDrift", "ObjectDrift", "Verdict", "WriteBack", "compare",
    "detect", "field_drifts", "flatten", "render_drift", "verdict_for",
]


async def detect(api: VcitaClient, desired: ManifestSet, state: State, *, target: Target,
                 progress: ProgressSink | None = None) -> tuple[DriftReport, Actual]:
    """Refresh the objects of ``desired`` and ``state`` from vcita and compare: the report and
    the refreshed remote (which ``--write-back`` needs to record new baselines).  ``progress``
    gets the refresh's reads as they end."""
    from reconciler.drift.model import summarise
    from reconciler.drift.outside import look
    from reconciler.refresh.full import plan_target, refresh

    actual = await refresh(api, desired, state.resources, progress=progress)
    report = compare(desired, state.resources, actual, target=plan_target(target), created_at=utc_now(),
                     state_lineage=state.lineage, state_serial=state.serial)
    if state.pending:  # an interrupted run's creates: the next plan settles them, none is created again
        from reconciler.drift.outside import pending_note

        objects = tuple(o.model_copy(update={"notes": (note, *o.notes[1:])})
                        if o.status == "untracked" and (note := pending_note(o.address, state)) else o
                        for o in report.objects)
        report = report.model_copy(update={"objects": objects})
    outside, how = await look(api, desired, state, actual)
    if outside:
        objects = (*report.objects, *outside)
        report = report.model_copy(update={
            "objects": objects, "verdict": verdict_for(objects),
            "summary": summarise(objects, report.summary.objects + len(outside))})
    return report.model_copy(update={"second_memory": how}), actual
