"""Renderings of a drift report: pure ``DriftReport -> str`` (text for terminals and logs,
Markdown for an issue or a pull-request comment, JSON through ``DriftReport.to_json``).

Every field line shows the three values side by side, applied / vcita / manifest, and says which
side changed, so "someone edited it in vcita" and "nobody applied the manifest" never look alike.
"""

from __future__ import annotations

from reconciler.drift.model import DriftReport, FieldDrift, ObjectDrift
from reconciler.render.common import leaf_key, value

MARKER = "<!-- reconciler-drift -->"
LIMIT = 65_000  # GitHub refuses issue and comment bodies over 65,536 characters
SYMBOL = {"drift": "~", "drift_and_pending": "~", "pending": "~", "unmanaged_drift": ".", "vanished": "!",
          "untracked": "+", "removed": "-", "created_outside": "?"}
SECTIONS = (
    ("Remote drift (vcita differs from what reconciler last applied)", ("drift", "drift_and_pending", "vanished")),
    ("Created outside reconciler (client packages of managed clients and catalog packages, found through vcita's "
     "payment requests)", ("created_outside",)),
    ("Pending changes (the manifests differ from what was last applied)", ("pending", "untracked", "removed")),
    ("Informational (changed in vcita, but the manifests do not manage these fields)", ("unmanaged_drift",)),
)


def render_drift(report: DriftReport, fmt: str) -> str:
    """Render ``report`` as ``text``, ``markdown`` or ``json``."""
    if fmt == "text":
        return render_text(report)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "json":
        return report.to_json()
    raise ValueError(f"unknown format {fmt!r}")


def tag(f: FieldDrift) -> str:
    """Which side changed a field, in words."""
    if not f.managed:
        return "changed in vcita; not managed by the manifest (informational)"
    if f.remote_drift and f.pending:
        if f.remote == f.desired:
            return "changed in vcita to the manifest's value"
        return "CONFLICT: changed in vcita and in the manifest"
    if f.remote_drift:
        return "changed in vcita"
    return "changed in the manifest, not applied"


def _v(f: FieldDrift, which: str) -> str:
    if which == "desired" and not f.managed:
        return "(not set)"
    return value(leaf_key(f.path), getattr(f, which))


def headline(report: DriftReport) -> str:
    s = report.summary
    parts = [f"{s.remote_drift} drifted in vcita", f"{s.pending} with pending changes", f"{s.in_sync} in sync"]
    if s.unmanaged_drift:
        parts.append(f"{s.unmanaged_drift} with informational changes")
    return f"Drift: {', '.join(parts)} (of {s.objects} objects)."


def advice(report: DriftReport) -> str:
    if report.verdict == "drift":
        return ("Remote drift. Keep vcita's values with 'reconciler drift --write-back' (rewrites the manifests), "
                "or restore the manifests' values with 'reconciler apply'.")
    if report.verdict == "pending":
        return "Only pending changes: review them with 'reconciler plan' and apply them with 'reconciler apply'."
    return "In sync: vcita matches what was last applied, and nothing is pending."


def _target(report: DriftReport) -> str:
    t = report.target
    return f"Target: business {t.business_id} at {'the embedded sandbox' if t.embedded else t.gateway_url}"


def _object_head(o: ObjectDrift) -> str:
    rid = f" (id {o.remote_id})" if o.remote_id else ""
    return f"{o.address}{rid}"


def render_text(report: DriftReport) -> str:
    lines = [_target(report), ""]
    if report.second_memory:
        lines += [f"Second memory: {report.second_memory}", ""]
    for title, statuses in SECTIONS:
        objs = [o for o in report.objects if o.status in statuses]
        if not objs:
            continue
        lines.append(f"{title}:")
        for o in objs:
            lines.append(f"  {SYMBOL[o.status]} {_object_head(o)}: {o.status.replace('_', ' ')}")
            width = max((len(f.path) for f in o.fields), default=0)
            for f in o.fields:
                lines.append(f"      {f.path.ljust(width)}  applied {_v(f, 'applied')} | vcita {_v(f, 'remote')}"
                             f" | manifest {_v(f, 'desired')}   # {tag(f)}")
            lines.extend(f"      note: {n}" for n in o.notes)
        lines.append("")
    if report.write_back is not None:
        lines.extend(_write_back_text(report))
    lines.append(headline(report))
    lines.append(advice(report))
    return "\n".join(lines) + "\n"


def _write_back_text(report: DriftReport) -> list[str]:
    wb = report.write_back
    assert wb is not None
    lines = []
    if wb.values:
        lines.append(f"Write-back: {len(wb.values)} value(s) rewritten in {len(wb.files)} file(s):")
        lines.extend(f"  {v.file}: {v.address} {v.path} = {value(leaf_key(v.path), v.value)}" for v in wb.values)
    if wb.accepted:
        lines.append(f"Recorded vcita's current values as last applied for {len(wb.accepted)} object(s): "
                     + ", ".join(wb.accepted))
    for s in wb.skipped:
        lines.append(f"  not written: {s.address} {s.path}: {s.reason}")
    if not (wb.values or wb.accepted or wb.skipped):
        lines.append("Write-back: no remote drift to accept.")
    lines.append("")
    return lines


def render_markdown(report: DriftReport, limit: int = LIMIT) -> str:
    icon = {"in_sync": ":white_check_mark:", "drift": ":warning:", "pending": ":hourglass:"}[report.verdict]
    head = [MARKER, "## reconciler drift", "", f"{icon} **{headline(report)}**", "", _target(report) + ".",
            "", advice(report)]
    rows = ["", "| object | field | applied | vcita | manifest | what |", "|---|---|---|---|---|---|"]
    for _title, statuses in SECTIONS:
        for o in (o for o in report.objects if o.status in statuses):
            if not o.fields:
                note = _esc("; ".join(o.notes))
                rows.append(f"| `{o.address}` | | | | | {o.status.replace('_', ' ')}: {note} |")
            for f in o.fields:
                rows.append(f"| `{o.address}` | `{f.path}` | {_esc(_v(f, 'applied'))} | {_esc(_v(f, 'remote'))} | "
                            f"{_esc(_v(f, 'desired'))} | {_esc(tag(f))} |")
    if len(rows) == 3:
        rows = []
    if report.write_back is not None:
        rows = _write_back_markdown(report) + rows
    text = "\n".join(head)
    kept = 0
    for row in rows:
        if len(text) + len(row) + 400 > limit:
            break
        text += "\n" + row
        kept += 1
    if kept < len(rows):
        text += (f"\n\n> [!NOTE]\n> {len(rows) - kept} of {len(rows) - 3} rows were left out to stay under "
                 f"{limit:,} characters; 'reconciler drift --format json' has every field.")
    return text.rstrip() + "\n"


def _write_back_markdown(report: DriftReport) -> list[str]:
    # What --write-back changed: the body of the pull request that carries it.
    wb = report.write_back
    assert wb is not None
    if not (wb.values or wb.accepted or wb.skipped):
        return ["", "Write-back: no remote drift to accept."]
    lines = ["", f"### Written back: {len(wb.values)} value(s) of vcita in {len(wb.files)} file(s)", ""]
    if wb.values:
        lines += ["| file | object | field | vcita's value, now in the manifest |", "|---|---|---|---|"]
        lines += [f"| `{_esc(v.file)}` | `{v.address}` | `{v.path}` | {_esc(value(leaf_key(v.path), v.value))} |"
                  for v in wb.values]
    if wb.accepted:
        lines += ["", f"Recorded as last applied in the state: {len(wb.accepted)} object(s)."]
    lines += [f"- not written: `{s.address}` `{s.path}`: {_esc(s.reason)}" for s in wb.skipped]
    return lines


def _esc(s: str) -> str:
    return s.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
