"""What the renderers share: symbols, value formatting, the summary line."""

from __future__ import annotations

import json
from typing import Any

from reconciler.plan.document import Plan

# Terraform's symbols where the meaning is Terraform's (+ create, ~ update in place, -/+ replace,
# . forget: archive deletes nothing, like Terraform's "no longer managed"); the others are ours and
# the legend says so (Terraform's <= is a data source read; it shows moves and imports in words).
SYMBOL = {"create": "+", "update": "~", "replace": "-/+", "import": "<=", "archive": ".", "set_credits": "~",
          "resolve": "?", "move": "->", "readopt": "<="}
#: What each symbol means, in the order a legend lists them.
LEGEND = {
    "+": "create",
    "~": "update in place",
    "-/+": "replace: a new client package (and payment request); the old one stays in vcita",
    "<=": "import: track an object vcita already has, no request (not Terraform's data read)",
    "->": "move: the same object under a new name, no request",
    ".": "archive: no longer tracked; nothing is deleted in vcita (Terraform's forget)",
    "?": "settle a create an interrupted run left pending",
}


def legend(plan: Plan) -> list[tuple[str, str]]:
    """(symbol, meaning) for each symbol the plan's operations use, in :data:`LEGEND`'s order."""
    used = {SYMBOL[op.action] for op in plan.operations}
    return [(sym, meaning) for sym, meaning in LEGEND.items() if sym in used]


VERB = {
    "create": "will be created",
    "update": "will be updated in place",
    "replace": "must be replaced",
    "import": "will be imported (adopted into state)",
    "archive": "will be archived: no longer tracked by this address, remembered by id (it stays in vcita)",
    "move": "is the same object under a new name: its record moves, no request",
    "readopt": "matches an archived object: tracked again, no request",
    "set_credits": "will have its booking credits set once created",
}
MONEY = {"price", "discount_amount"}


def value(key: str, v: Any) -> str:
    """A value as a reviewer reads it: money and numbers bare, text quoted, lists as JSON."""
    if v is None:
        return "(none)"
    if key in MONEY and isinstance(v, str):
        return v
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return str(v)


def _label(name: str) -> str:
    from reconciler.render.blocks import label

    return label(name)


def leaf_key(path: str) -> str:
    return path.split("[", 1)[0]


def summary_line(plan: Plan) -> str:
    if not plan.has_changes and plan.errors:
        return "No changes can be planned until the errors above are fixed."
    if not plan.has_changes:
        return "No changes. The remote business matches the manifests."
    parts = [
        f"{plan.count('create')} to create",
        f"{plan.count('update')} to update",
        f"{plan.count('replace')} to replace",
    ]
    for action, word in (("import", "import"), ("move", "move"), ("readopt", "re-adopt"), ("archive", "archive")):
        if plan.count(action):
            parts.append(f"{plan.count(action)} to {word}")
    if plan.count("resolve"):
        parts.append(f"{plan.count('resolve')} pending create(s) to resolve")
    return "Plan: " + ", ".join(parts) + "."


def target_line(plan: Plan) -> str:
    t = plan.target
    where = "the embedded sandbox" if t.embedded else t.gateway_url
    return f"Target: business {t.business_id} at {where}"


def flat_fields(view: dict[str, Any]) -> list[tuple[str, Any]]:
    """A view's fields for display; keyed collections are expanded one line per key."""
    out: list[tuple[str, Any]] = []
    for k, v in view.items():
        if isinstance(v, dict):
            if not v:
                out.append((k, []))
            for sub, sv in v.items():
                out.append((f"{k}[{sub}]", sv))
        else:
            out.append((k, v))
    return out


def money_lines(plan: Plan, *, markdown: bool = False) -> list[str]:
    """How many payment requests apply would open, for whom, and the total per currency."""
    money = plan.payment_requests
    limit = f" (limit {money.limit})" if money.limit is not None else ""
    if not money.count:
        return [f"Payment requests: none would be opened{limit}."]
    totals = " + ".join(f"{amount} {currency}" for currency, amount in money.totals.items()) or "amount unknown"
    head = (f"Payment requests: apply would open {money.count}, one per client package created{limit}; "
            f"total {totals} (amounts as sent: vcita may add taxes).")
    lines = [head]
    for item in money.items:
        amount = f"{item.amount} {item.currency or ''}".strip() if item.amount is not None else "amount unknown"
        also = f" (replaces {item.replaces})" if item.replaces else ""
        who = f" ({_label(plan.names[item.client_id])})" if item.client_id in plan.names else ""
        row = f"{item.address}: client {item.client_id}{who}, {item.package}, {amount}{also}"
        lines.append(f"- `{row}`" if markdown else f"  {row}")
    return lines


#: The left-out addresses a plan names before it only counts the rest.
SHOWN_LEFT_OUT = 10


def unread_line(plan: Plan) -> str | None:
    if not plan.unread:
        return None
    return (f"Refreshed only what changed (--refresh=changed): {plan.unread} tracked client package(s) whose "
            "manifests ask for what was last applied were not read; 'reconciler drift' reads everything.")


def scope_line(plan: Plan) -> str | None:
    if plan.only:
        shown = ", ".join(plan.left_out[:SHOWN_LEFT_OUT]) + (", ..." if len(plan.left_out) > SHOWN_LEFT_OUT else "")
        deps = f"; added as dependencies: {', '.join(plan.dependencies)}" if plan.dependencies else ""
        left = f" ({shown})" if plan.left_out else ""
        return (f"--only {' '.join(plan.only)}: {len(plan.left_out)} manifest object(s) left out{left}{deps}; "
                f"{plan.out_of_scope} tracked object(s) outside the selection left alone (neither archived nor "
                "changed).")
    if not plan.out_of_scope:
        return None
    return (f"{plan.out_of_scope} tracked object(s) are outside the paths of this plan: left alone "
            "(neither archived nor changed).")
