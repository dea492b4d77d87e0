"""The terminal rendering of a plan, in Terraform's grammar (+ create, ~ update, -/+ replace, <= import)."""

from __future__ import annotations

from reconciler.plan import Change, Plan
from reconciler.render.common import SYMBOL, VERB, flat_fields, header, leaf_key, summary_line, target_line, value


def render_text(plan: Plan) -> str:
    lines: list[str] = [target_line(plan)]
    if not plan.refreshed:
        lines.append("Note: planned from state alone (--no-refresh): changes made in vcita are not visible.")
    lines.append("")
    changes = plan.actionable
    if changes:
        lines.append("reconciler will perform the following actions:")
        lines.append("")
        for c in changes:
            lines.extend(_change(c))
            lines.append("")
    if plan.unmanaged:
        lines.append(f"Unmanaged remote catalog packages ({len(plan.unmanaged)}, never touched):")
        for u in plan.unmanaged:
            lines.append(f"  . {u.name!r} (id {u.id}){'' if u.active else ' [inactive]'}")
        lines.append("")
    for p in plan.problems:
        label = "Error" if p.severity == "error" else "Warning"
        lines.append(f"{label}: {p.address}: {p.message}")
        if p.hint:
            lines.append(f"  {p.hint}")
    if plan.problems:
        lines.append("")
    lines.append(summary_line(plan))
    if plan.errors:
        lines.append(f"{len(plan.errors)} error(s) above must be fixed before this plan can be applied.")
    blocked = plan.blocked
    if blocked:
        lines.append(f"{len(blocked)} change(s) need --allow-replace to be applied.")
    return "\n".join(lines) + "\n"


def _change(c: Change) -> list[str]:
    sym = SYMBOL[c.action]
    out = [f"  # {c.address} {VERB[c.action]}"]
    if c.reason:
        out.append(f"  # ({c.reason})")
    rows = _rows(c)
    if rows:
        width = max(len(k) for _, k, _ in rows)
        out.append(f"{sym:>3} {header(c)} {{")
        out.extend(f"      {s} {k.ljust(width)} = {v}" for s, k, v in rows)
        out.append("    }")
    else:
        out.append(f"{sym:>3} {header(c)}")
    for r in c.requests:
        door = f" via {r.door}" if r.door else ""
        out.append(f"    {r.method} {r.path}{door}")
    for w in c.warnings:
        out.append(f"    ! {w}")
    if c.depends_on:
        out.append(f"    after: {', '.join(c.depends_on)}")
    if c.blocked:
        out.append(f"    BLOCKED: {c.blocked}")
    return out


def _rows(c: Change) -> list[tuple[str, str, str]]:
    """(sign, field, value text) per line of the change's body."""
    if c.action == "create":
        return [("+", k, value(leaf_key(k), v)) for k, v in flat_fields(c.after or {})]
    forcing: set[str] = set()
    if c.action == "replace":
        from reconciler.planner.normalize import REPLACE_FIELDS

        forcing = {fc.path for fc in c.field_changes if leaf_key(fc.path) in REPLACE_FIELDS}
    rows = []
    for fc in c.field_changes:
        k = leaf_key(fc.path)
        if fc.before is None:
            row = ("+", fc.path, value(k, fc.after))
        elif fc.after is None:
            row = ("-", fc.path, value(k, fc.before))
        else:
            row = ("~", fc.path, f"{value(k, fc.before)} -> {value(k, fc.after)}")
        if fc.path in forcing:
            row = (row[0], row[1], row[2] + "  # forces replacement")
        rows.append(row)
    return rows
