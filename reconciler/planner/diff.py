"""Field-level differences between two views.  deepdiff stays in here: only FieldChange leaves.

Views key their lists (items, products, credits) by identity, so deepdiff reports
``items[svcA,svcB]`` changing from 10 to 12, never "item 0 became item 1".
"""

from __future__ import annotations

from typing import Any

from deepdiff import DeepDiff

from reconciler.plan import FieldChange

_MISSING = None


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    """The differences from ``before`` (remote) to ``after`` (desired), sorted by path."""
    if before == after:
        return ()
    tree = DeepDiff(before, after, view="tree", verbose_level=2)
    changes: dict[str, FieldChange] = {}
    for report, levels in tree.items():
        for level in levels:
            parts = level.path(output_format="list")
            path = _render(parts)
            if report.endswith("_added"):
                fc = FieldChange.model_construct(path=path, before=_MISSING, after=level.t2)
            elif report.endswith("_removed"):
                fc = FieldChange.model_construct(path=path, before=level.t1, after=_MISSING)
            else:
                fc = FieldChange.model_construct(path=path, before=level.t1, after=level.t2)
            changes[path] = fc
    return tuple(changes[p] for p in sorted(changes))


def _render(parts: list[Any]) -> str:
    if not parts:
        return "(object)"
    head, *rest = parts
    return str(head) + "".join(f"[{p}]" for p in rest)
