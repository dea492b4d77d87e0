"""Locating manifest errors: one document's YAML nodes into positioned values and ``file:LINE:COL`` messages.

The loader (:mod:`reconciler.manifest.load`) reads every document with libyaml; only a document that
fails comes here, as the text of that one document.  It is composed again by libyaml (C speed;
nodes carry line and column), built into :class:`PMap` / :class:`PSeq` values that remember where
each key, value and item was written, converted and validated like the fast pass, and every
problem is reported where it was written.  The cost is linear in the size of the failing
document, so one error at the end of a 50 MB file costs what reading that file costs.

Also here: :func:`plain`, the conversion of positioned values to plain ones (tags refused, alias
expansion bounded); the messages of pydantic's errors are in :mod:`reconciler.manifest.messages`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import yaml
from pydantic import ValidationError

from reconciler.core.errors import Diagnostic
from reconciler.manifest.messages import PMap, PSeq, located, pos, short, suggest, value_pos
from reconciler.model.manifest import API_VERSION, DOCUMENT_ADAPTER, KINDS

#: Values one document may hold, counting every expansion of an alias; real manifests use a few hundred.
MAX_EXPANDED_NODES = 100_000
_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(_TAG + t for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp"))
_MERGE = _TAG + "merge"


class Refused(Exception):
    """A value no manifest may hold (a tag, an alias bomb, a bad key), with where it was written."""

    def __init__(self, message: str, where: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.where = where  # 0-based (line, col) when known


def _at(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line, node.start_mark.column


class _Bad:
    """A value that cannot be used, kept in place so that the whole document is still read (and
    its address known); :func:`plain` refuses it at its position."""

    __slots__ = ("message", "where")

    def __init__(self, message: str, where: tuple[int, int]) -> None:
        self.message = message
        self.where = where


_KIND_TAGS: dict[type[yaml.Node], str] = {yaml.MappingNode: _TAG + "map", yaml.SequenceNode: _TAG + "seq"}


class _Builder:
    """Positioned values from composed nodes, converted exactly as the fast pass converts them."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.memo: dict[int, Any] = {}  # an anchored node is built once and shared, as YAML means
        self.count = 0

    def build(self, node: yaml.Node) -> Any:
        self.count += 1
        if self.count > MAX_EXPANDED_NODES:
            raise Refused(_too_many(), _at(node))
        if id(node) in self.memo:
            return self.memo[id(node)]
        tag = node.tag
        if tag not in _PLAIN_TAGS:
            return _Bad(f"YAML tag {tag} is not allowed in manifests", _at(node))
        if _KIND_TAGS.get(type(node)) != tag and (tag in _KIND_TAGS.values() or type(node) in _KIND_TAGS):
            return _Bad(f"YAML tag {tag} does not fit this value", _at(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            out = self.memo[id(node)] = PSeq(_at(node))
            for item in node.value:
                out.append(self.build(item))
                out.item_pos.append(_at(item))
            return out
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        construct = self.loader.yaml_constructors[node.tag]
        try:
            return construct(self.loader, node)
        except Exception:  # noqa: BLE001 - whatever a constructor raises, the value is unusable
            if node.tag == _TAG + "timestamp":
                # 2026-02-30: keep the text, so the model's date check reports it at this position.
                return str(node.value)
            return _Bad(f"cannot read {short(str(node.value))} as {node.tag.removeprefix(_TAG)}", _at(node))

    def _mapping(self, node: yaml.MappingNode) -> PMap:
        out = self.memo[id(node)] = PMap(_at(node))
        own = []
        seen: set[Any] = set()
        for k, v in node.value:
            if k.tag == _MERGE:
                continue
            key = self._key(k)
            if key in seen:
                raise Refused(f'duplicate key "{key}" in this mapping', _at(k))
            seen.add(key)
            own.append((key, k, v))
        # Merge keys (<<) as PyYAML's SafeConstructor applies them: merged pairs first, so the
        # mapping's own keys win; from a list of mappings, the earlier mapping wins.
        for key, k, v in [*self._merged(node, set()), *own]:
            out[key] = self.build(v)
            out.key_pos[key] = _at(k)
            out.value_pos[key] = _at(v)
        return out

    def _key(self, k: yaml.Node) -> Any:
        if not isinstance(k, yaml.ScalarNode):
            raise Refused("a key must be a plain word, not a mapping or a list", _at(k))
        if k.tag not in _PLAIN_TAGS or k.tag in _KIND_TAGS.values():
            raise Refused(f"YAML tag {k.tag} is not allowed on a key", _at(k))
        key = self._scalar(k)  # keys are not counted: plain() counts values, and so does this
        if isinstance(key, _Bad):
            raise Refused(key.message, key.where)
        return key

    def _merged(self, node: yaml.MappingNode, active: set[int]) -> list[tuple[Any, yaml.Node, yaml.Node]]:
        if id(node) in active:
            raise Refused("a merge key (<<) refers to the mapping that holds it", _at(node))
        active = active | {id(node)}
        out: list[tuple[Any, yaml.Node, yaml.Node]] = []
        for k, v in node.value:
            if k.tag != _MERGE:
                continue
            sources = [v] if isinstance(v, yaml.MappingNode) else list(reversed(v.value)) \
                if isinstance(v, yaml.SequenceNode) else None
            if sources is None or not all(isinstance(s, yaml.MappingNode) for s in sources):
                raise Refused("a merge key (<<) takes a mapping or a list of mappings", _at(v))
            for src in sources:
                self.count += len(src.value)
                if self.count > MAX_EXPANDED_NODES:
                    raise Refused(_too_many(), _at(src))
                out.extend(self._merged(src, active))
                out.extend((self._key(sk), sk, sv) for sk, sv in src.value if sk.tag != _MERGE)
        return out


def _too_many() -> str:
    return f"document expands to more than {MAX_EXPANDED_NODES:,} values through aliases; refused"


def plain(value: Any, budget: list[int]) -> Any:
    """Plain Python values from loaded YAML (PyYAML's or :class:`PMap`/:class:`PSeq`): keys as
    strings, alias expansion bounded by ``budget`` (a one-item list counting values)."""
    budget[0] += 1
    if budget[0] > MAX_EXPANDED_NODES:
        raise Refused(_too_many())
    if isinstance(value, _Bad):
        raise Refused(value.message, value.where)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            try:
                out[k if isinstance(k, str) else str(k)] = plain(v, budget)
            except Refused as e:
                if e.where is None and isinstance(value, PMap):
                    e.where = value.value_pos.get(k)
                raise
        return out
    if isinstance(value, list):
        return [plain(v, budget) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused("holds an invalid Unicode escape (a lone surrogate such as \\ud800); "
                          "write the character itself") from None
        return str(value)
    if isinstance(value, (date, datetime)):
        return value
    raise Refused(f"unsupported YAML value of type {type(value).__name__}")


def yaml_problem(e: yaml.MarkedYAMLError) -> str:
    """The message of a YAML syntax error, without libyaml's marks."""
    problem = (e.problem or "YAML syntax error").strip()
    if "duplicate key" in problem:
        return problem + " in this mapping"
    ctx = (e.context or "").strip()
    return f"YAML syntax error: {ctx + ': ' if ctx else ''}{problem}"


def syntax_diagnostic(e: yaml.YAMLError, shown: str, text: str, line_offset: int = 0) -> Diagnostic:
    """One located diagnostic for a YAML error raised while reading ``text``."""
    if isinstance(e, yaml.reader.ReaderError):
        # libyaml counts the position in bytes of UTF-8.
        before = text.encode("utf-8", "surrogatepass")[: e.position].decode("utf-8", "replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        code = e.character if isinstance(e.character, int) else ord(e.character) if isinstance(e.character, str) \
            and len(e.character) == 1 else None
        char = f"U+{code:04X}" if code is not None else repr(e.character)
        return Diagnostic(shown, line + line_offset, col, f"character {char} is not allowed in YAML ({e.reason})")
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        if mark is not None:
            return Diagnostic(shown, mark.line + 1 + line_offset, mark.column + 1, yaml_problem(e))
        return Diagnostic(shown, 0, 0, yaml_problem(e))
    return Diagnostic(shown, 0, 0, f"YAML error: {str(e).splitlines()[0] if str(e) else type(e).__name__}")


def exact_document(text: str, shown: str, loader_cls: Any, line_offset: int) -> tuple[Any, list[Diagnostic]]:
    """Validate one document's ``text`` (its first line starting at file line ``line_offset`` + 1,
    with its columns intact); the validated model, or None and every located problem."""
    loader = loader_cls(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as e:
            return None, [syntax_diagnostic(e, shown, text, line_offset)]
        doc, problems = _exact(node, shown, loader)
    finally:
        loader.dispose()
    return doc, [_shift(d, line_offset) for d in problems]


def _shift(d: Diagnostic, lines: int) -> Diagnostic:
    if not d.line or not lines:
        return d
    return Diagnostic(d.file, d.line + lines, d.col, d.message, d.address, d.field)


def positioned(text: str, loader_cls: Any) -> Any:
    """The positioned value (:class:`PMap`, ...) of one document's ``text``; None when it cannot
    be read (positions are then unknown)."""
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _Builder(loader).build(node)
    except (yaml.YAMLError, Refused, RecursionError):
        return None
    finally:
        loader.dispose()


def _exact(node: Any, shown: str, loader: Any) -> tuple[Any, list[Diagnostic]]:
    if node is None:
        return None, []
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    address = ""
    try:
        raw = _Builder(loader).build(node)
        if not isinstance(raw, PMap):
            return None, [Diagnostic(shown, line, col,
                                     "a document must be a mapping with apiVersion, kind, metadata and spec")]
        address = _address(raw)
        data = plain(raw, [0])
    except Refused as e:
        if e.where:
            line, col = e.where[0] + 1, e.where[1] + 1
        return None, [Diagnostic(shown, line, col, str(e), address)]
    except RecursionError:
        return None, [Diagnostic(shown, line, col, "document nests too deeply (or an alias refers to itself); refused")]
    header = _check_header(raw, shown, address)
    if header:
        return None, header
    try:
        return DOCUMENT_ADAPTER.validate_python(data), []
    except ValidationError as e:
        return None, located(e, raw, shown, address)


_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _address(raw: PMap) -> str:
    """``Kind/name`` for messages, from whatever of it is a plain word (garbage is left out)."""
    kind = raw.get("kind")
    meta = raw.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    kind_ok = isinstance(kind, str) and bool(_WORD.match(kind))
    name_ok = isinstance(name, str) and bool(_WORD.match(name))
    if kind_ok and name_ok:
        return f"{kind}/{name}"
    return str(kind) if kind_ok else ""


def _check_header(raw: PMap, shown: str, address: str) -> list[Diagnostic]:
    """apiVersion and kind first: without them the spec cannot be read."""
    out = []
    line, col = pos(raw)
    if "apiVersion" not in raw:
        out.append(Diagnostic(shown, line, col, f"missing apiVersion (write 'apiVersion: {API_VERSION}')", address))
    elif raw["apiVersion"] != API_VERSION:
        ln, cn = value_pos(raw, "apiVersion")
        out.append(Diagnostic(shown, ln, cn,
                              f"unsupported apiVersion {raw['apiVersion']!r} (this version reads {API_VERSION})",
                              address, "apiVersion"))
    kind = raw.get("kind")
    if "kind" not in raw:
        out.append(Diagnostic(shown, line, col, f"missing kind (one of {', '.join(KINDS)})", address))
    elif kind not in KINDS:
        ln, cn = value_pos(raw, "kind")
        out.append(Diagnostic(shown, ln, cn,
                              f"unknown kind {kind!r}{suggest(str(kind), KINDS)} (one of {', '.join(KINDS)})",
                              address, "kind"))
    return out

