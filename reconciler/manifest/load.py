"""Reading manifests: YAML files into validated models, or every located error at once.

Files are found and read by :mod:`reconciler.manifest.files` (regular files only, bounded).
Each file is then read one document at a time by libyaml (PyYAML's C parser) set to the YAML 1.2
core schema:

* the fast path converts and validates each document; a clean document never pays for positions;
* a document that fails anything is read again, alone, by :mod:`reconciler.manifest.locate`,
  whose values carry line/column, and every problem is reported as
  ``file:LINE:COL: Kind/name: spec.field: message``.

Both paths use the same parser, the same schema and the same conversion, so they cannot disagree
about a value, and the cost of an error is the cost of its own document: locating one error at
the end of a 50 MB file costs what reading the file costs.  YAML is loaded safely: tags are
refused (no object construction), and alias expansion is bounded, so an alias bomb is refused in
milliseconds.  Problems across documents (a name defined twice, a reference to no catalog
package) are located by reading only the documents concerned again.

Over 400 lines on purpose: reading the documents and the cross-document checks share the documents'
positions (one parse per file); discovery (``files``), positions (``locate``) and messages
(``messages``) are their own modules.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from reconciler.core.errors import Diagnostic, ManifestError
from reconciler.manifest.files import (
    MANIFEST_SUFFIXES,
    MAX_FILE_BYTES,
    FileTooLarge,
    NotRegularFile,
    discover,
    read_bounded,
)
from reconciler.manifest.locate import MAX_EXPANDED_NODES, exact_document, positioned, syntax_diagnostic
from reconciler.manifest.messages import message_of, suggest, walk
from reconciler.model import address as addresses
from reconciler.model.manifest import (
    DOCUMENT_ADAPTER,
    CatalogOrder,
    CatalogPackage,
    ClientPackage,
    ClientPackageSet,
    SetMember,
    set_member_spec,
)
from reconciler.model.manifest_set import ManifestSet, SourceRef

__all__ = [
    "MANIFEST_SUFFIXES", "MAX_EXPANDED_NODES", "MAX_FILE_BYTES", "ManifestSet", "SourceRef",
    "discover", "load_manifests",
]

Doc = CatalogPackage | ClientPackage | ClientPackageSet | CatalogOrder
#: Suggestions ("did you mean ...") computed per run; each compares a name with every name.
MAX_SUGGESTIONS = 20
#: The longest document read (characters, comments included); real ones are under a few KiB.  A
#: longer one is refused before it is parsed: parsing holds a whole document in memory at once.
MAX_DOCUMENT_CHARS = 2 * 2**20
# A line that starts with --- or ... (then a blank) bounds a document: no document spans one.
_BOUNDARY = re.compile(r"(?:(?<=[\n\r\x85\u2028\u2029])|\A)(?:---|\.\.\.)(?=[ \t\n\r\x85\u2028\u2029]|\Z)")


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser with the YAML 1.2 core schema (as ruamel's round-trip loader reads it)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        keys = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in keys:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, "unhashable key", key_node.start_mark) from None
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


_FastLoader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     "-+0123456789."),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:timestamp",
     r"^(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
     r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?|[0-9]{4}-[0-9]{2}-[0-9]{2})$",
     "0123456789"),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
):
    _FastLoader.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))


def _fast_int(loader: Any, node: Any) -> int:
    v = str(node.value).replace("_", "")
    sign = -1 if v.startswith("-") else 1
    v = v.lstrip("+-")
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if v.startswith(prefix):
            return sign * int(v[2:], base)
    return sign * int(v, 10)  # YAML 1.2: a leading 0 is not octal


_FastLoader.add_constructor("tag:yaml.org,2002:int", _fast_int)
_IMPLICIT: dict[str, list[tuple[str, re.Pattern[str]]]] = dict(_FastLoader.yaml_implicit_resolvers)


def _resolve(self: Any, kind: Any, value: Any, implicit: Any) -> str:
    # BaseResolver.resolve without its path-resolver and wildcard machinery (this loader has
    # neither): the parser calls it once per node, a tenth of the time of a large file.
    if kind is yaml.ScalarNode:
        if implicit[0]:
            for tag, regexp in _IMPLICIT.get(value[:1], ()):
                if regexp.match(value):
                    return tag
        return "tag:yaml.org,2002:str"
    return "tag:yaml.org,2002:seq" if kind is yaml.SequenceNode else "tag:yaml.org,2002:map"


_FastLoader.resolve = _resolve
_FastLoader.descend_resolver = lambda self, current_node, current_index: None
_FastLoader.ascend_resolver = lambda self: None


def load_manifests(paths: Sequence[str | os.PathLike[str]]) -> ManifestSet:
    """Load, validate and cross-check every manifest under ``paths``; raise ManifestError with all problems."""
    files = discover(paths)
    docs: list[tuple[Doc, SourceRef]] = []
    problems: list[Diagnostic] = []
    # Each file is read once: a cross-document error is located in the text read here (read
    # again, the file could have changed in between, and its line would point at something else).
    texts: dict[str, str] = {}
    for f in files:
        shown = _display(f)
        text, err = _read(f, shown)
        if err:
            problems.append(err)
            continue
        d, errs = load_text(text, shown)
        docs.extend(d)
        problems.extend(errs)
        texts[shown] = text
    result = ManifestSet(files=[_display(f) for f in files])
    # A reference to a document that is itself invalid is not news: its own errors say why.
    invalid = {d.address for d in problems if d.address}
    problems.extend(_cross_check(docs, result, invalid, texts))
    if problems:
        raise ManifestError(problems)
    return result


def _display(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):
        return str(p)


def _read(f: Path, shown: str) -> tuple[str, Diagnostic | None]:
    try:
        data = read_bounded(f)
    except (FileTooLarge, NotRegularFile) as e:
        return "", Diagnostic(shown, 0, 0, str(e))
    except OSError as e:
        return "", Diagnostic(shown, 0, 0, f"cannot read file: {e.strerror or e}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        return "", Diagnostic(shown, line, col, "file is not valid UTF-8 (save it as UTF-8)")
    del data
    text = text.removeprefix("\ufeff")
    if not text.strip():
        return "", Diagnostic(shown, 0, 0, "file is empty: it holds no manifest documents")
    return text, None


def load_text(text: str, shown: str) -> tuple[list[tuple[Doc, SourceRef]], list[Diagnostic]]:
    """The valid documents of one file's ``text`` and every located problem of the others."""
    docs: list[tuple[Doc, SourceRef]] = []
    problems: list[Diagnostic] = []
    oversized = _oversized_document(text)
    if oversized is not None:
        return [], [Diagnostic(shown, oversized, 1, f"this document is longer than {MAX_DOCUMENT_CHARS // 2**20} MiB "
                               "(with its comments); refused: split it into several documents")]
    loader = _FastLoader(text)
    seen = False
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
            except yaml.YAMLError as e:
                # The rest of the file cannot be read: its documents are not known.
                return [], [*problems, syntax_diagnostic(e, shown, text)]
            except RecursionError:
                return [], [*problems, Diagnostic(shown, 0, 0, "document nests too deeply; refused")]
            mark = node.start_mark
            ref = SourceRef(shown, mark.line + 1, (mark.index, node.end_mark.index, mark.column))
            outcome = _fast(loader, node)
            if outcome is None:
                continue  # an empty document ('---' with nothing after it)
            seen = True
            if isinstance(outcome, (CatalogPackage, ClientPackage, ClientPackageSet, CatalogOrder)):
                docs.append((outcome, ref))
                continue
            doc, errs = exact_document(_document_text(text, ref), shown, _FastLoader, mark.line)
            if doc is None and not errs:  # never seen; a document is never dropped without a word
                errs = [Diagnostic(shown, ref.line, mark.column + 1, "this document cannot be read")]
            problems.extend(errs)
            if doc is not None and not errs:
                docs.append((doc, ref))
    finally:
        loader.dispose()
    if not seen and not problems:
        problems.append(Diagnostic(shown, 0, 0, "file holds no manifest documents (only comments or '---')"))
    return docs, problems


_FAILED = object()


def _oversized_document(text: str) -> int | None:
    """The line where a document longer than MAX_DOCUMENT_CHARS starts, if there is one."""
    if len(text) <= MAX_DOCUMENT_CHARS:
        return None
    start = 0
    for end in itertools.chain((m.start() for m in _BOUNDARY.finditer(text)), (len(text),)):
        if end - start > MAX_DOCUMENT_CHARS:
            return text.count("\n", 0, start) + 1
        start = end
    return None


def _fast(loader: Any, node: Any) -> Any:
    """The validated document, None for an empty one, or _FAILED (the exact pass says why)."""
    try:
        raw = _fast_value(loader, node, [0])
        if raw is None:
            return None
        return DOCUMENT_ADAPTER.validate_python(raw)
    except Exception:  # noqa: BLE001 - anything unusual or wrong is read again by the exact pass
        return _FAILED


_T = "tag:yaml.org,2002:"
_SCALARS: dict[str, Any] = {_T + t: _FastLoader.yaml_constructors[_T + t]
                            for t in ("int", "float", "bool", "null", "timestamp")}


class _Unusual(Exception):
    """Something the fast conversion leaves to the exact pass (merge keys, tags, a duplicate key...)."""


def _fast_value(loader: Any, node: Any, budget: list[int]) -> Any:
    # What the exact pass's builder and plain() compute together, without positions, for the
    # common shapes only: a third of the cost of PyYAML's constructor followed by plain().
    budget[0] += 1
    if budget[0] > MAX_EXPANDED_NODES:
        raise _Unusual
    cls, tag = node.__class__, node.tag
    if cls is yaml.ScalarNode:
        if tag == _T + "str":
            return node.value
        return _SCALARS[tag](loader, node)  # KeyError for any other tag: unusual
    if cls is yaml.MappingNode and tag == _T + "map":
        out: dict[str, Any] = {}
        for k, v in node.value:
            if k.__class__ is not yaml.ScalarNode:
                raise _Unusual
            if k.tag == _T + "str":
                key = k.value
            else:
                key = _SCALARS[k.tag](loader, k)  # a merge key (<<) is not in the table
                key = key if isinstance(key, str) else str(key)
            if key in out:
                raise _Unusual
            out[key] = _fast_value(loader, v, budget)
        return out
    if cls is yaml.SequenceNode and tag == _T + "seq":
        return [_fast_value(loader, item, budget) for item in node.value]
    raise _Unusual


def _document_text(text: str, ref: SourceRef) -> str:
    """One document's text, alone, starting at its own column (so positions stay exact)."""
    assert ref.span is not None
    start, end, col = ref.span
    return " " * col + text[start:end]


# --- across documents -------------------------------------------------------------------------


def _cross_check(docs: list[tuple[Doc, SourceRef]], result: ManifestSet, invalid: set[str],
                 texts: dict[str, str]) -> list[Diagnostic]:
    found: list[tuple[Diagnostic, SourceRef]] = []
    for doc, src in docs:
        table: dict[str, Any] = (
            result.catalog_packages if isinstance(doc, CatalogPackage) else
            result.client_package_sets if isinstance(doc, ClientPackageSet) else
            result.catalog_orders if isinstance(doc, CatalogOrder) else result.client_packages
        )
        name = doc.metadata.name
        if name in table:
            first = result.sources[doc.address]
            at = f"{first.file}:{first.line}" if first.line else first.file
            found.append((Diagnostic(src.file, src.line, 1,
                                     f"duplicate name: {doc.kind} '{name}' is already defined in {at}",
                                     f"{doc.kind}/{name}", "metadata.name"), src))
            continue
        table[name] = doc
        result.sources[doc.address] = src
    budget = [MAX_SUGGESTIONS]
    found.extend(_apply_order(result, budget))
    for cp in list(result.client_packages.values()):
        src = result.sources[cp.address]
        if cp.spec.package.name is None or f"CatalogPackage/{cp.spec.package.name}" not in invalid:
            found.extend((d, src) for d in _check_client_package(cp, result, budget))
    for cs in result.client_package_sets.values():
        src = result.sources[cs.address]
        if cs.spec.package.name is None or f"CatalogPackage/{cs.spec.package.name}" not in invalid:
            found.extend((d, src) for d in _expand_set(cs, src, result, budget))
    return _relocate(found, texts)


def _apply_order(ms: ManifestSet, budget: list[int]) -> list[tuple[Diagnostic, SourceRef]]:
    """Give each package a CatalogOrder names its position (1, 2, 3...) as ``spec.order``."""
    out: list[tuple[Diagnostic, SourceRef]] = []
    orders = list(ms.catalog_orders.values())
    for extra in orders[1:]:
        src = ms.sources[extra.address]
        first = ms.sources[orders[0].address]
        out.append((Diagnostic(src.file, src.line, 1, f"a second CatalogOrder (the first is in {first.file}:"
                               f"{first.line}): the catalog has one display order", f"CatalogOrder/"
                               f"{extra.metadata.name}", "kind"), src))
    if not orders:
        return out
    co = orders[0]
    src = ms.sources[co.address]
    addr = f"CatalogOrder/{co.metadata.name}"
    seen: dict[str, int] = {}
    for i, name in enumerate(co.spec.packages):
        where = f"spec.packages[{i}]"
        pkg = ms.catalog_packages.get(name)
        if name in seen:
            out.append((Diagnostic(src.file, src.line, 1, f"'{name}' is already listed (spec.packages[{seen[name]}])",
                                   addr, where), src))
        elif pkg is None:
            hint = suggest(name, ms.catalog_packages) if budget[0] > 0 else ""
            budget[0] -= 1
            out.append((Diagnostic(src.file, src.line, 1, f"unknown catalog package '{name}'{hint}: no "
                                   "CatalogPackage with that metadata.name in the manifests", addr, where), src))
        elif pkg.spec.order is not None:
            own = ms.sources[pkg.address]
            out.append((Diagnostic(src.file, src.line, 1, f"'{name}' declares its own order ({pkg.spec.order}, in "
                                   f"{own.file}:{own.line}): write it in one place", addr, where), src))
        else:
            ms.catalog_packages[name] = pkg.model_copy(update={"spec": pkg.spec.model_copy(update={"order": i + 1})})
        seen.setdefault(name, i)
    return out


def _expand_set(cs: ClientPackageSet, src: SourceRef, ms: ManifestSet, budget: list[int]) -> list[Diagnostic]:
    """Add each member of ``cs`` to ``ms.client_packages`` (a client package of its own); the
    located problems of the set and of each member."""
    addr = f"ClientPackageSet/{cs.metadata.name}"
    out = _check_package_ref(cs.spec.package.name, ms, src, addr, budget)
    seen: dict[str, int] = {}
    for i, client in enumerate(cs.spec.clients):
        where = f"spec.clients[{i}]"
        if client.key in seen:
            out.append(Diagnostic(src.file, src.line, 1, f"client {client.key!r} is already listed in this set "
                                  f"(spec.clients[{seen[client.key]}]); a member is one client package per client",
                                  addr, where))
            continue
        seen[client.key] = i
        try:
            spec = set_member_spec(cs.spec, client)
        except ValidationError as e:
            out.extend(_member_problem(err, client, where, src, addr) for err in e.errors(include_url=False))
            continue
        member = SetMember(apiVersion=cs.apiVersion, kind="ClientPackage", metadata=cs.metadata, spec=spec,
                           set_name=cs.metadata.name, key=client.key)
        ms.client_packages[member.address.removeprefix(addresses.CLIENT_SET)] = member
        if client.booking_credits is not None:
            out.extend(_check_credits(cs.spec.package.name, client.booking_credits, ms, src, addr, where))
    out.extend(_check_credits(cs.spec.package.name, cs.spec.booking_credits, ms, src, addr, "spec"))
    return out


def _member_problem(err: Any, client: Any, where: str, src: SourceRef, addr: str) -> Diagnostic:
    """A member's problem located at the member's own field when it writes one, else the set's."""
    msg = message_of(err)
    field_name = str(err["loc"][0]) if err["loc"] else ""
    head, sep, rest = msg.partition(": ")
    if not field_name and sep and head.isidentifier():
        field_name, msg = head, rest
    ends = ("valid_from", "valid_until", "valid_for")
    own = getattr(client, field_name, None) is not None or (
        field_name in ends and any(getattr(client, f) is not None for f in ends))
    path = f"{where}.{field_name}" if own else f"spec.{field_name}" if field_name else where
    return Diagnostic(src.file, src.line, 1, f"client {client.key!r}: {msg}", addr, path)


def _check_package_ref(name: str | None, ms: ManifestSet, src: SourceRef, addr: str,
                       budget: list[int]) -> list[Diagnostic]:
    if name is None or name in ms.catalog_packages:
        return []
    hint = ""
    if budget[0] > 0:  # each suggestion compares with every name: bounded, so errors stay linear
        budget[0] -= 1
        hint = suggest(name, ms.catalog_packages)
    return [Diagnostic(src.file, src.line, 1,
                       f"unknown catalog package '{name}'{hint}: no CatalogPackage with that metadata.name in the "
                       "manifests (use {id: UID} for one not managed here)", addr, "spec.package")]


def _check_credits(package: str | None, credits: Any, ms: ManifestSet, src: SourceRef, addr: str,
                   where: str) -> list[Diagnostic]:
    pkg = ms.catalog_packages.get(package) if package is not None else None
    if pkg is None:
        return []
    out = []
    keys = {item.key for item in pkg.spec.items}
    for i, credit in enumerate(credits or ()):
        if credit.key not in keys:
            out.append(Diagnostic(src.file, src.line, 1,
                                  f"no item of catalog package '{package}' has exactly the services {list(credit.key)}",
                                  addr, f"{where}.booking_credits[{i}].services"))
    return out


def _check_client_package(cp: ClientPackage, ms: ManifestSet, budget: list[int]) -> list[Diagnostic]:
    src = ms.sources[cp.address]
    addr = f"ClientPackage/{cp.metadata.name}"
    return (_check_package_ref(cp.spec.package.name, ms, src, addr, budget)
            or _check_credits(cp.spec.package.name, cp.spec.booking_credits, ms, src, addr, "spec"))


def _relocate(found: list[tuple[Diagnostic, SourceRef]], texts: dict[str, str]) -> list[Diagnostic]:
    """Point each cross-document problem at the exact value, in the text each file was read as
    (``texts``, never read again): only the documents concerned are parsed again, with the
    positions the first parse does not keep (a parse with positions costs several times more, and
    only an error needs them)."""
    out = []
    for d, src in found:
        text = texts.get(src.file)
        raw = positioned(_document_text(text, src), _FastLoader) if text is not None and src.span else None
        if raw is None:
            out.append(d)  # positions are a courtesy; the message stands without them
            continue
        line, col = walk(raw, d.field)
        out.append(Diagnostic(d.file, line + src.line - 1, col, d.message, d.address, d.field))
    return out
