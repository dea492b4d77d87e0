"""The text form of a doctor :class:`Report` (the JSON form is ``Report.to_json``).

Everything quoted from the server was escaped when the probes read it (``probe.printable``).
"""

from __future__ import annotations

from reconciler.doctor.probe import Outcome
from reconciler.doctor.report import Report, RouteReport

SHORT = {"ok": "ok", "door_refused": "gateway refusal", "token_refused": "token refused",
         "feature_off": "feature off", "error": "error", "unreachable": "no answer",
         "not_found": "not found"}


def _cell(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "-"
    parts = []
    for o in outcomes:
        text = SHORT.get(o.status, o.status) + (f" {o.http_status}" if o.http_status and not o.ok else "")
        parts.append(text if len(outcomes) == 1 else f"{o.token}: {text}")
    return "; ".join(parts)


def _run_column(r: RouteReport) -> str:
    if not r.read:
        return f"{r.uses[0]}, {r.uses[1]} (write: not tried)" if r.uses else "NOT AVAILABLE"
    if r.works and r.path and r.path.via:
        return f"{r.path.via[0]}, {r.path.via[1]}"
    return "FAILS"


def render_text(report: Report) -> str:
    t = report.target
    lines = [f"reconciler doctor: target {t.describe()}", ""]
    if t.route_pins:
        lines.append("Route pins: " + ", ".join(f"{n} = {p.toml()}" for n, p in t.route_pins))
    lines.append("Tokens:")
    for tok in report.tokens:
        detail = f": {tok['detail']}" if tok["detail"] else ""
        lines.append(f"  {tok['kind']:<10} {tok['status']}{detail}")
    lines.append(f"Feature booking_packages: {report.feature}")
    clock = report.clock
    lines.append(f"Clock: {clock['status']}: {clock['detail']}")
    if report.latency:
        lines.append("Latency: " + "; ".join(
            f"{door} median {v['median_ms']} ms, max {v['max_ms']} ms ({v['requests']} requests)"
            for door, v in report.latency.items()))
    rate = report.rate_headers
    lines.append("Rate-limit headers: " + (", ".join(f"{k}: {v}" for k, v in rate.items()) if rate else "none seen"))
    lines.append("")

    doors = ["gateway"] + (["fallback"] if t.fallback_url else [])
    header = ["route", *doors, "a run uses"]
    rows = [[r.route.name, *(_cell([o for o in r.outcomes if o.door == d]) for d in doors), _run_column(r)]
            for r in report.routes]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines.append("Routes (reads are probed on each door; writes are never tried):")
    for row in [header, *rows]:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if report.unverified:
        lines.append("")
        lines.append("Unverified against vcita (reconciler sends them as documented; no verified recipe tried them):")
        lines.extend(f"  {u}" for u in report.unverified)
    problems = [(r, o) for r in report.routes for o in r.outcomes if not o.ok]
    if problems:
        lines.append("")
        lines.append("Answers other than ok:")
        for r, o in problems:
            lines.append(f"  {r.route.name} via {o.door} ({o.token} token): {o.detail}")
    if report.candidate:
        c = report.candidate
        lines.append("")
        served = ", ".join(c["serves"]) or "none of the refused routes"
        lines.append(f"Fallback candidate {c['fallback_url']} (same host as the gateway): serves {served}")
    if report.second_memory:
        lines.append("")
        lines.append(f"Second memory (client packages found through payment requests): "
                     f"{report.second_memory['status']}: {report.second_memory['detail']}")
    lines.append("")
    if report.ok:
        lines.append("Result: every route reconciler needs works.")
    else:
        lines.append(f"Result: {len(report.failures)} problem(s):")
        lines.extend(f"  {f}" for f in report.failures)
    if report.fix_toml:
        lines.append("")
        lines.append("Add to reconciler.toml:")
        lines.extend(f"  {line}" for line in report.fix_toml)
    if report.fix_env:
        lines.append("Or, for a target set by environment variables:")
        lines.extend(f"  {line}" for line in report.fix_env)
    if report.notes:
        lines.append("")
        lines.extend(f"Note: {n}" for n in report.notes)
    return "\n".join(lines) + "\n"
