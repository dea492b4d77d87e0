"""Field-level differences between two views.  Only FieldChange leaves this module.

Views key their lists (items, products, credits) by identity, so a difference reads
``items[svcA,svcB]`` from 10 to 12, never "item 0 became item 1".  Views are shallow (scalars,
and mappings of scalars), and those are compared directly: deepdiff costs about half a
millisecond per object, which is seconds on a large business.  Any deeper value goes through
deepdiff, and a property test holds the direct comparison to deepdiff's answer.
"""

from __future__ import annotations

from typing import Any

from reconciler.plan.operations import FieldChange

_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    """The differences from ``before`` (remote) to ``after`` (desired), sorted by path."""
    if _same(before, after):
        return ()
    out: dict[str, FieldChange] = {}
    for key in before.keys() | after.keys():
        b, a = before.get(key), after.get(key)
        if key in before and key in after and _same(b, a):
            continue
        if isinstance(b, dict) and isinstance(a, dict) and _flat(b) and _flat(a):
            for sub in b.keys() | a.keys():
                sb, sa = b.get(sub), a.get(sub)
                if sub in b and sub in a and _same(sb, sa):
                    continue
                path = f"{key}[{sub}]"
                out[path] = FieldChange(path=path, before=sb, after=sa)
        elif _flat_value(b) and _flat_value(a):
            out[str(key)] = FieldChange(path=str(key), before=b, after=a)
        else:
            for fc in deep_changes({key: b} if key in before else {}, {key: a} if key in after else {}):
                out[fc.path] = fc
    return tuple(out[p] for p in sorted(out))


def _same(b: Any, a: Any) -> bool:
    """Equal values of equal types, all the way down: 1 == 1.0 == True in Python, and so
    ``{"x": False} == {"x": 0}``; a view's types are part of its value."""
    if type(b) is not type(a):
        return False
    if isinstance(b, dict):
        if b.keys() != a.keys():
            return False
        for k, v in b.items():  # scalars compared here, not one call each (100,000 objects a plan)
            w = a[k]
            if type(v) is not type(w):
                return False
            if type(v) in _SCALAR_TYPES:
                if v != w:
                    return False
            elif not _same(v, w):
                return False
        return True
    if isinstance(b, (list, tuple)):
        return len(b) == len(a) and all(_same(x, y) for x, y in zip(b, a, strict=True))
    return bool(b == a)


def _flat_value(v: Any) -> bool:
    return isinstance(v, _SCALARS)


def _flat(d: dict[Any, Any]) -> bool:
    return all(isinstance(v, _SCALARS) for v in d.values())


def deep_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    """The same differences computed by deepdiff, for values deeper than a view's usual shape."""
    if _same(before, after):
        return ()
    from deepdiff import (
        DeepDiff,  # here: it imports numpy, 70 ms of every start-up otherwise
    )

    # threshold 0: always report per key, never "the whole mapping changed" (deepdiff's default).
    tree = DeepDiff(before, after, view="tree", verbose_level=2, threshold_to_diff_deeper=0)
    changes: dict[str, FieldChange] = {}
    for report, levels in tree.items():
        for level in levels:
            path = _render(level.path(output_format="list"))
            if report.endswith("_added"):
                fc = FieldChange(path=path, before=None, after=level.t2)
            elif report.endswith("_removed"):
                fc = FieldChange(path=path, before=level.t1, after=None)
            else:
                fc = FieldChange(path=path, before=level.t1, after=level.t2)
            changes[path] = fc
    return tuple(changes[p] for p in sorted(changes))


def _render(parts: list[Any]) -> str:
    if not parts:
        return "(object)"
    head, *rest = parts
    return str(head) + "".join(f"[{p}]" for p in rest)
