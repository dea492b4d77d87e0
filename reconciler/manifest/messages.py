"""Positioned manifest values and pydantic's errors as located, readable messages.

:class:`PMap` and :class:`PSeq` are the values :mod:`reconciler.manifest.locate` builds from YAML
nodes: a mapping or a list that remembers where it, its keys, values and items were written.
:func:`located` turns a pydantic ValidationError on such a value into ``file:LINE:COL`` diagnostics
with plain-language messages (unknown fields get a "did you mean").  Quoted values are cut short:
a 10 MB string in a manifest never becomes a 10 MB message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.core.errors import Diagnostic
from reconciler.model.manifest import MEMBER_EMAIL_PATTERN
from reconciler.model.values import NAME_PATTERN, UID_PATTERN


class PMap(dict[Any, Any]):
    """A mapping that remembers where it, each of its keys and each of its values were written
    (0-based line and column, as libyaml counts them)."""

    __slots__ = ("key_pos", "pos", "value_pos")

    def __init__(self, pos: tuple[int, int]) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos: dict[Any, tuple[int, int]] = {}
        self.value_pos: dict[Any, tuple[int, int]] = {}


class PSeq(list[Any]):
    """A list that remembers where it and each of its items were written."""

    __slots__ = ("item_pos", "pos")

    def __init__(self, pos: tuple[int, int]) -> None:
        super().__init__()
        self.pos = pos
        self.item_pos: list[tuple[int, int]] = []


# --- positions ----------------------------------------------------------------------------------


def pos(node: Any) -> tuple[int, int]:
    """1-based (line, col) where ``node`` was written; (0, 0) when unknown."""
    p = getattr(node, "pos", None)
    return (p[0] + 1, p[1] + 1) if p else (0, 0)


def value_pos(m: PMap, key: Any) -> tuple[int, int]:
    """1-based position of the value of ``key`` in ``m`` (of the mapping when absent)."""
    p = m.value_pos.get(key)
    return (p[0] + 1, p[1] + 1) if p else key_pos(m, key)


def key_pos(m: PMap, key: Any) -> tuple[int, int]:
    p = m.key_pos.get(key)
    return (p[0] + 1, p[1] + 1) if p else pos(m)


def walk(raw: PMap, dotted: str) -> tuple[int, int]:
    """1-based position of the value at ``dotted`` (``spec.items[0].services``) in ``raw``, or of
    the deepest part of it that exists."""
    node: Any = raw
    line, col = pos(raw)
    for part in dotted.replace("[", ".").replace("]", "").split("."):
        key: Any = int(part) if part.isdigit() else part
        if isinstance(node, PMap) and key in node:
            line, col = value_pos(node, key)
            node = node[key]
        elif isinstance(node, PSeq) and isinstance(key, int) and key < len(node):
            line, col = node.item_pos[key][0] + 1, node.item_pos[key][1] + 1
            node = node[key]
    return line, col


def suggest(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when one of ``options`` is close to ``word``; else empty."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def located(e: ValidationError, raw: PMap, shown: str, address: str) -> list[Diagnostic]:
    errors = e.errors(include_url=False)
    locs = [tuple(x for x in err["loc"][1:]) for err in errors]  # drop the union tag (kind)
    # "items: should have at least 1 item" after its only item failed is noise, not news.
    parents = {loc[:i] for loc in locs for i in range(len(loc))}
    return [_diagnostic(err, loc, raw, shown, address) for err, loc in zip(errors, locs, strict=True)
            if not (err["type"] == "too_short" and loc in parents)]


def _diagnostic(err: Any, loc: tuple[Any, ...], raw: PMap, shown: str, address: str) -> Diagnostic:
    etype = err["type"]
    msg = message_of(err)
    node: Any = raw
    line, col = pos(raw)
    path: list[Any] = []
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, PMap) and part in node:
            line, col = key_pos(node, part) if last and etype == "extra_forbidden" else value_pos(node, part)
            path.append(part)
            node = node[part]
        elif isinstance(node, PSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, col = node.item_pos[part][0] + 1, node.item_pos[part][1] + 1
            path.append(part)
            node = node[part]
        elif isinstance(node, PMap) and isinstance(part, str) and part in _MODEL_ALIASES:
            continue  # pydantic's internal branch names (e.g. a union member); not in the YAML
        else:
            # A missing field: point at the mapping that should hold it.
            path.append(part)
            break
    if etype == "value_error" and isinstance(node, PMap):
        # Model-level checks name the field they are about: "discount_unit: ...".
        head, sep, rest = msg.partition(": ")
        if sep and head in node:
            line, col = value_pos(node, head)
            path.append(head)
            msg = rest
    if etype == "extra_forbidden":
        options = _fields_at(loc[:-1], raw)
        msg = f"unknown field '{loc[-1]}'{suggest(str(loc[-1]), options)}"
    return Diagnostic(shown, line, col, msg, address, _dotted(path))


_MODEL_ALIASES = frozenset({"function-before[_uid(), str]"})


def _fields_at(loc: tuple[Any, ...], raw: PMap) -> list[str]:
    from reconciler.model import manifest as m

    model: Any = {"CatalogPackage": m.CatalogPackage, "ClientPackageSet": m.ClientPackageSet}.get(
        str(raw.get("kind")), m.ClientPackage)
    for part in loc:
        if isinstance(part, int):
            continue
        fld = model.model_fields.get(part)
        if fld is None:
            return []
        model = _inner_model(fld.annotation)
        if model is None:
            return []
    return list(model.model_fields)


def _inner_model(annotation: Any) -> Any:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _dotted(path: list[Any]) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s


_MESSAGES = {
    "missing": "required field is missing",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_parsing": "must be a whole number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "date_type": "must be a date (YYYY-MM-DD)",
}

_PATTERNS = {
    NAME_PATTERN: "use lower-case letters, digits and '-', starting with a letter or digit",
    UID_PATTERN: "be a vcita UID (letters, digits, '-' or '_')",
    MEMBER_EMAIL_PATTERN: "be an e-mail address without quotes, brackets, backslashes or blanks",
}


def message_of(err: Any) -> str:
    """A pydantic error's message in plain language."""
    etype = err["type"]
    ctx = err.get("ctx") or {}
    if etype in _MESSAGES:
        return _MESSAGES[etype]
    if etype == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if etype in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[etype]
        bound = next(iter(ctx.values()), "?")
        return f"must be {op} {bound} (got {short(err.get('input'))})"
    if etype == "too_short":
        return "must not be empty"
    if etype == "too_long":
        return f"has too many entries (at most {ctx.get('max_length')})"
    if etype == "literal_error":
        return f"must be one of {ctx.get('expected', '').replace(chr(39), '')} (got {short(err.get('input'))})"
    if etype == "string_pattern_mismatch":
        what = _PATTERNS.get(str(ctx.get("pattern")), f"match the pattern {ctx.get('pattern')}")
        return f"{short(err.get('input'))} is not valid: must {what}"
    if etype == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')} characters)"
    if etype == "string_too_short":
        return "must not be empty"
    return str(err["msg"])


def short(value: Any, limit: int = 60) -> str:
    # A value quoted back is cut: a 10 MB string in a manifest must not become a 10 MB message.
    text = repr(value)
    if len(text) <= limit:
        return text
    return text[: limit - 5] + "...'" if text[:1] in "'\"" else text[: limit - 3] + "..."
