"""The Markdown report of an apply (``apply --format markdown``), for the pull request the plan
came from: the outcome and the money first, then one row per object, failures first in mind.

Under the comment limit by the policy of ``fold.py``: objects done are listed by name first, then
skipped ones; failed, unknown and refused ones keep their row longest.  Nothing is cut inside a
row.  Pure: the CLI passes the outcomes it collected (``reconciler.applier.Event`` values).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.render import fold
from reconciler.render.common import target_line

MARKER = "<!-- reconciler-apply -->"
LIMIT = 65_000
RESERVE = 1_500
ROW, NAME, COUNTED = 0, 1, 2
LEVEL = {"done": fold.TRIVIAL, "skipped": fold.NOTABLE}  # failed, unknown, refused: IMPORTANT
SIGN = {"done": "+", "failed": "x", "unknown": "?", "refused": "x", "skipped": "."}


def render_apply_markdown(plan: Any, outcomes: Mapping[str, Any], *, summary: str, notes: Sequence[str] = (),
                          limit: int = LIMIT) -> str:
    """``outcomes``: address -> an object with ``action``, ``status``, ``message``, ``remote_id``;
    ``summary``: the apply's one-line result; ``notes``: Markdown paragraphs for the reader
    (verification, interruption, objects vcita has that the state could not record), with any
    server text already passed through :func:`escape`."""
    order = [a for a in plan.addresses if a in outcomes] + [a for a in outcomes if a not in set(plan.addresses)]
    rows = [_row(a, outcomes[a]) for a in order]
    names = [f"- `{_code(a)}` {outcomes[a].action.replace('_', ' ')}: {outcomes[a].status}" for a in order]
    levels = [LEVEL.get(outcomes[a].status or "", fold.IMPORTANT) for a in order]
    costs = [(fold.cost(r), fold.cost(n), 0) for r, n in zip(rows, names, strict=True)]
    idx = list(range(len(order)))
    groups = [*fold.by_level(idx, levels, NAME, [fold.TRIVIAL], whole=True),
              *fold.by_level(idx, levels, NAME, [fold.NOTABLE], whole=True),
              *fold.by_level(idx, levels, COUNTED, [fold.TRIVIAL, fold.NOTABLE]),
              *fold.by_level(idx, levels, NAME, [fold.IMPORTANT]),
              *fold.by_level(idx, levels, COUNTED, [fold.IMPORTANT])]
    opened = [item for item in plan.payment_requests.items
              if getattr(outcomes.get(item.address), "status", None) == "done"]

    def layout(budget: int) -> str:
        chosen = fold.fit(costs, groups, budget)
        lines = [MARKER, "## reconciler apply", "", f"**{escape(summary)}**", "", _money(opened), "",
                 target_line(plan) + "."]
        lines += [f"\n{n}" for n in notes]  # Markdown the CLI wrote (server text in it escaped there)
        kept = [rows[i] for i in idx if chosen.forms[i] == ROW]
        if kept:
            lines += ["", "| | address | action | result | remote id | message |", "|---|---|---|---|---|---|", *kept]
        listed = [names[i] for i in idx if chosen.forms[i] == NAME]
        unlisted = _tally(outcomes[order[i]].status for i in idx if chosen.forms[i] == COUNTED)
        if listed:
            also = [f"- ... and {unlisted}: the apply's log has them all."] if unlisted else []
            lines += ["", f"<details><summary>{len(listed)} more object(s), by name</summary>", "", *listed, *also,
                      "", "</details>"]
        elif unlisted:
            lines += ["", f"Not listed here: {unlisted}; the apply's log has them all."]
        return "\n".join(lines) + "\n"

    budget = limit - RESERVE - sum(len(n) + 2 for n in notes)
    doc = layout(budget)
    while len(doc) > limit and budget > 0:
        budget -= max(len(doc) - limit, RESERVE)
        doc = layout(budget)
    return doc if len(doc) <= limit else f"{MARKER}\n## reconciler apply\n\n**{escape(summary)[: limit // 2]}**\n"


def _row(address: str, ev: Any) -> str:
    status = ev.status or ""
    return (f"| `{SIGN.get(status, '?')}` | `{_code(address)}` | {ev.action.replace('_', ' ')} | **{status}** | "
            f"{escape(ev.remote_id or '')} | {escape(ev.message or '')} |")


def _money(opened: Sequence[Any]) -> str:
    if not opened:
        return "Payment requests opened: none."
    from decimal import Decimal

    totals: dict[str, Decimal] = {}
    for item in opened:
        if item.amount is not None:
            totals[item.currency or ""] = totals.get(item.currency or "", Decimal(0)) + Decimal(str(item.amount))
    total = " + ".join(f"{amount} {currency}".strip() for currency, amount in totals.items()) or "amount unknown"
    return (f"**Payment requests opened: {len(opened)}**, one per client package created; total {total} "
            "(amounts as sent: vcita may add taxes).")


def _tally(statuses: Iterable[str | None]) -> str:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s or "?"] = counts.get(s or "?", 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _code(s: str) -> str:
    return s.replace("|", "\\|").replace("`", "'")


def escape(s: str) -> str:
    """Server text (an error message, an id) for a table cell: no HTML, no column break, one line."""
    return " ".join(s.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").split())
