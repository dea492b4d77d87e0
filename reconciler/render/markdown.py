"""The pull-request rendering of a plan: summary first, a table, folded per-object diffs.

GitHub refuses comments over 65,536 characters; the rendering stays under LIMIT by folding the
largest per-object sections into a one-line note, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.operations import Operation
from reconciler.plan import Plan
from reconciler.render.blocks import block
from reconciler.render.common import money_lines, scope_line, summary_line, unread_line, target_line
from reconciler.render.groups import grouped_rows
from reconciler.render.text import op_lines

LIMIT = 65_000
MARKER = "<!-- reconciler-plan -->"


def render_markdown(plan: Plan, limit: int = LIMIT) -> str:
    head = [MARKER, "## reconciler plan", "", f"**{summary_line(plan)}**", ""]
    money = money_lines(plan, markdown=True)
    head += [f"**{_escape(money[0])}**", *money[1:], ""]
    for extra in (scope_line(plan), unread_line(plan)):
        if extra:
            head += [_escape(extra), ""]
    head.append(target_line(plan) + ".")
    if not plan.refreshed:
        head.append("")
        head.append("> [!NOTE]\n> Planned from state alone (`--no-refresh`): changes made in vcita are not visible.")
    replaces = [op for op in plan.operations if op.action == "replace"]
    if replaces:
        head.append("")
        head.append("> [!WARNING]")
        head.append(f"> {len(replaces)} client package(s) must be **replaced**: a new client package opens a new "
                    "payment request for the client, and the old one stays in vcita.")
        for op in replaces:
            head.append(f"> - `{op.address}`: {op.reason}")
    if plan.errors:
        head.append("")
        head.append("> [!CAUTION]")
        head.append(f"> {len(plan.errors)} error(s) must be fixed before this plan can be applied:")
        for p in plan.errors:
            head.append(f"> - `{p.address}`: {_escape(p.message)}")
    warnings = [p for p in plan.problems if p.severity == "warning"]
    for p in warnings:
        head.append(f"\n- :warning: `{p.address}`: {_escape(p.message)}")
    blocks = [block(op) for op in plan.operations]
    table: list[str] = grouped_rows(plan.operations, plan.names, _escape) or []
    if blocks and not table:
        table += ["", "| | address | action | remote id | fields |", "|---|---|---|---|---|"]
        for b in blocks:
            fields = ", ".join(f"`{path}`" for path in b.fields[:6])
            if len(b.fields) > 6:
                fields += f" (+{len(b.fields) - 6})"
            action = b.action.replace("_", " ")
            table.append(f"| `{b.symbol}` | `{b.address}` | {action} | {b.remote_id or ''} | {fields} |")
    sections = [_details(op, plan.names) for op in plan.operations]
    tail: list[str] = []
    if plan.unmanaged:
        tail.append("")
        tail.append(f"<details><summary>{len(plan.unmanaged)} unmanaged remote catalog package(s), never touched</summary>\n")
        tail.extend(f"- {_escape(u.name)} (`{u.id}`){'' if u.active else ' (inactive)'}" for u in plan.unmanaged)
        tail.append("\n</details>")
    return _fit("\n".join(head + table), sections, "\n".join(tail), limit)


def _details(op: Operation, names: Mapping[str, str]) -> str:
    # Lines start with their sign so GitHub's diff highlighting colours + and - lines.
    b = block(op)
    body = "\n".join(line.strip() for line in op_lines(op, names))
    summary = _escape(f"{b.symbol} {b.title}")
    return (f"<details><summary><code>{summary}</code> {b.says}</summary>\n\n"
            f"```diff\n{body.replace('```', '` ` `')}\n```\n\n</details>")


def _fit(head: str, sections: list[str], tail: str, limit: int) -> str:
    def join(parts: list[str], note: str) -> str:
        return "\n".join([head, "", *parts, tail, note]).rstrip() + "\n"

    doc = join(sections, "")
    if len(doc) <= limit:
        return doc
    folded = list(sections)
    order = sorted(range(len(sections)), key=lambda i: len(sections[i]), reverse=True)
    n = 0
    for i in order:
        folded[i] = f"- section {i + 1} folded ({len(sections[i]):,} characters): see the JSON plan."
        n += 1
        note = (f"\n> [!NOTE]\n> {n} of {len(sections)} per-object diffs were folded to keep this comment under "
                f"{limit:,} characters; the saved plan (JSON) has every change.")
        doc = join(folded, note)
        if len(doc) <= limit:
            return doc
    # Even one line per change is too long: keep the summary and say where the rest is.
    note = (f"\n> [!NOTE]\n> All {len(sections)} per-object diffs and part of the table were left out to stay under "
            f"{limit:,} characters; the saved plan (JSON) has every change.")
    return (head[: max(0, limit - len(note) - 200)] + "\n\n(table truncated)\n" + note + "\n")


def _escape(s: str) -> str:
    return s.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
