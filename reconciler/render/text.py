"""The terminal rendering of a plan, in Terraform's grammar (+ create, ~ update, -/+ replace), with a
legend of the symbols it uses (where reconciler's differ from Terraform's, it says so)."""

from __future__ import annotations

from reconciler.plan.document import Plan
from reconciler.plan.operations import Operation
from reconciler.render.blocks import Block, block, named
from reconciler.render.common import legend, money_lines, scope_line, summary_line, target_line, unread_line


def render_text(plan: Plan) -> str:
    lines: list[str] = [target_line(plan)]
    if not plan.refreshed:
        lines.append("Note: planned from state alone (--no-refresh): changes made in vcita are not visible.")
        if plan.unchecked_creates:
            lines.append("Note: nothing was looked up in vcita, so apply refuses this plan: it creates objects that a "
                         "lost or older state could create twice. Plan without --no-refresh to apply.")
    lines.append("")
    if plan.operations:
        lines.append("Actions are shown with these symbols:")
        lines.extend(f"  {sym:>3} {meaning}" for sym, meaning in legend(plan))
        lines.append("")
        lines.append("reconciler will perform the following actions:")
        lines.append("")
        for op in plan.operations:
            lines.extend(op_lines(op, named(block(op), plan.names)))
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
    lines.extend(money_lines(plan))
    for extra in (scope_line(plan), unread_line(plan)):
        if extra:
            lines.append(extra)
    if plan.errors:
        lines.append(f"{len(plan.errors)} error(s) above must be fixed before this plan can be applied.")
    blocked = plan.blocked
    if blocked:
        lines.append(f"{len(blocked)} change(s) need --allow-replace to be applied.")
    return "\n".join(lines) + "\n"


def op_lines(op: Operation, b: Block | None = None) -> list[str]:
    """The lines of one operation (also the body of its Markdown section); ``b``: its block,
    when the caller has it already."""
    b = b or block(op)
    out = [f"  # {b.address} {b.says}"]
    if b.reason:
        out.append(f"  # ({b.reason})")
    if b.rows:
        width = max(len(k) for _, k, _ in b.rows)
        out.append(f"{b.symbol:>3} {b.title} {{")
        out.extend(f"      {s} {k.ljust(width)} = {v}" for s, k, v in b.rows)
        out.append("    }")
    else:
        out.append(f"{b.symbol:>3} {b.title}")
    for r in b.requests:
        door = f" via {r.door}" if r.door else ""
        out.append(f"    {r.method} {r.path}{door}")
    for w in b.warnings:
        out.append(f"    ! {w}")
    if b.after:
        out.append(f"    after: {', '.join(b.after)}")
    if b.blocked:
        out.append(f"    BLOCKED: {b.blocked}")
    return out
