"""The Markdown plan's summary table, grouped when that is shorter.

A plan that assigns one catalog package to 40 clients has 40 rows of "create" in its per-address
table; grouped by catalog package it has one ("+ 40 client packages of piano-10: Alice, Ben...").
Client-package creates (and replacements) are grouped by catalog package, or by client when that
gives fewer rows; every other operation keeps its own row.  The grouping is used only when it is
shorter than one row per address; the per-operation sections below the table are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from reconciler.operations import CreateClientPackage, IdOf, Operation, SetBookingCredits
from reconciler.render.blocks import label

#: Clients (or packages) named in a grouped row before the rest are only counted.
SHOWN = 8


def _package(op: CreateClientPackage, names: Mapping[str, str]) -> str:
    if isinstance(op.package_id, IdOf):
        return op.package_id.id_of.split(".", 1)[1]
    return label(names[op.package_id]) if op.package_id in names else op.package_id


def _client(op: CreateClientPackage, names: Mapping[str, str]) -> str:
    return f"{label(names[op.client_id])} ({op.client_id})" if op.client_id in names else op.client_id


def grouped_rows(operations: Sequence[Operation], names: Mapping[str, str],
                 escape: Callable[[str], str]) -> list[str] | None:
    """The table's rows grouped (header included), or None when one row per address is as short."""
    creates = [op for op in operations if isinstance(op, CreateClientPackage)]
    if len(creates) < 2:
        return None
    grouped = {op.address for op in creates}
    # A create's credits, set right after it, belong to its group's row.
    rest = [op for op in operations if not isinstance(op, CreateClientPackage)
            and not (isinstance(op, SetBookingCredits) and op.address in grouped)]
    best: list[str] | None = None
    for by, other, title in ((_package, _client, "client packages of"), (_client, _package, "packages for")):
        groups: dict[tuple[str, str], list[str]] = {}
        for op in creates:
            groups.setdefault((op.action, by(op, names)), []).append(other(op, names))
        rows = len(groups) + len(dict.fromkeys(op.address for op in rest))
        if rows >= len(operations) or (best is not None and rows >= len(best) - 3):
            continue
        lines = ["", "| | what | action | count |", "|---|---|---|---|"]
        for (action, key), members in groups.items():
            shown = ", ".join(members[:SHOWN]) + (f" and {len(members) - SHOWN} more" if len(members) > SHOWN else "")
            symbol = "+" if action == "create" else "-/+"
            lines.append(f"| `{symbol}` | {escape(f'{title} {key}: {shown}')} | {action} | {len(members)} |")
        for address in dict.fromkeys(op.address for op in rest):
            actions = ", ".join(dict.fromkeys(op.action.replace("_", " ") for op in rest if op.address == address))
            lines.append(f"| | `{address}` | {actions} | 1 |")
        best = lines
    return best
