"""Reading manifests: YAML files into validated models, or every located error at once.

Two passes, so that the common case is fast and the error case is exact:

* the fast pass parses each file with libyaml (PyYAML's C parser) set to the YAML 1.2 core
  schema, converts and validates; a clean file never pays for positions;
* a file that fails anything is parsed again with the round-trip loader, whose nodes carry
  line/column, and every problem is reported as ``file:LINE:COL: Kind/name: spec.field: message``.

Both passes use YAML 1.2 and the same conversion, so they cannot disagree about a value.  YAML is
loaded safely: tags are refused (no object construction), and alias expansion is bounded, so an
alias bomb is refused in milliseconds.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from reconciler.errors import Diagnostic, ManifestError
from reconciler.model.manifest import (
    API_VERSION,
    DOCUMENT_ADAPTER,
    KINDS,
    NAME_PATTERN,
    UID_PATTERN,
    CatalogPackage,
    ClientPackage,
)

MANIFEST_SUFFIXES = (".yaml", ".yml")
#: Nodes one document may expand to through aliases; real manifests use a few hundred.
MAX_EXPANDED_NODES = 100_000
MAX_FILE_BYTES = 50 * 1024 * 1024

Doc = CatalogPackage | ClientPackage


@dataclass(frozen=True)
class SourceRef:
    """Where a document came from: its file and the line of its first key."""

    file: str
    line: int


@dataclass
class ManifestSet:
    """Every document of a manifest tree, valid and cross-checked."""

    catalog_packages: dict[str, CatalogPackage] = field(default_factory=dict)
    client_packages: dict[str, ClientPackage] = field(default_factory=dict)
    sources: dict[str, SourceRef] = field(default_factory=dict)  # address -> where
    files: list[str] = field(default_factory=list)

    @property
    def documents(self) -> list[Doc]:
        return [*self.catalog_packages.values(), *self.client_packages.values()]

    def digest(self) -> str:
        """A digest of what the manifests mean (not how they are formatted or commented)."""
        h = hashlib.sha256()
        for d in sorted(self.documents, key=lambda d: d.address):
            h.update(d.model_dump_json().encode())
            h.update(b"\n")
        return "sha256:" + h.hexdigest()


class _LenientDates(RoundTripConstructor):
    # ruamel raises a bare ValueError (no position) for 2026-02-30; keep the text instead, so the
    # model's date check reports it at the value's line and column.
    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        try:
            return super().construct_yaml_timestamp(node, values)
        except ValueError:
            return str(node.value)


_LenientDates.add_constructor("tag:yaml.org,2002:timestamp", _LenientDates.construct_yaml_timestamp)


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


def _rt_yaml() -> YAML:
    y = YAML(typ="rt")
    y.Constructor = _LenientDates
    y.allow_duplicate_keys = False
    return y


def discover(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The manifest files named by ``paths`` (files as given; directories walked for *.yaml/*.yml)."""
    found: list[Path] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            try:
                files = sorted(_walk(p))
            except OSError as e:
                problems.append(Diagnostic(str(p), 0, 0, f"cannot read directory: {e.strerror or e}"))
                continue
            if not files:
                problems.append(
                    Diagnostic(str(p), 0, 0, "no manifests here (looked for *.yaml and *.yml files)")
                )
            found.extend(files)
        elif p.exists():
            found.append(p)
        else:
            problems.append(Diagnostic(str(p), 0, 0, "no such file or directory"))
    if problems:
        raise ManifestError(problems)
    seen: set[Path] = set()
    unique = []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        # Hidden folders hold state (.reconciler/) and VCS data, never manifests.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.endswith(MANIFEST_SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name


def _raise(e: OSError) -> None:
    raise e


def load_manifests(paths: Sequence[str | os.PathLike[str]]) -> ManifestSet:
    """Load, validate and cross-check every manifest under ``paths``; raise ManifestError with all problems."""
    files = discover(paths)
    docs: list[tuple[Doc, SourceRef]] = []
    problems: list[Diagnostic] = []
    for f in files:
        shown = _display(f)
        text, err = _read(f, shown)
        if err:
            problems.append(err)
            continue
        loaded = _fast_pass(text, shown)
        if loaded is None:
            d, errs = _exact_pass(text, shown)
            docs.extend(d)
            problems.extend(errs)
        else:
            docs.extend(loaded)
    result = ManifestSet(files=[_display(f) for f in files])
    problems.extend(_cross_check(docs, result))
    if problems:
        raise ManifestError(problems)
    return result


def _display(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _read(f: Path, shown: str) -> tuple[str, Diagnostic | None]:
    try:
        if f.stat().st_size > MAX_FILE_BYTES:
            return "", Diagnostic(shown, 0, 0, f"file is larger than {MAX_FILE_BYTES // 2**20} MiB")
        data = f.read_bytes()
    except OSError as e:
        return "", Diagnostic(shown, 0, 0, f"cannot read file: {e.strerror or e}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        return "", Diagnostic(shown, line, col, "file is not valid UTF-8 (save it as UTF-8)")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        return "", Diagnostic(shown, 0, 0, "file is empty: it holds no manifest documents")
    return text, None


def _fast_pass(text: str, shown: str) -> list[tuple[Doc, SourceRef]] | None:
    """Validated documents, or None when anything is off (the exact pass then says what)."""
    try:
        raw_docs = list(yaml.load_all(text, Loader=_FastLoader))
    except Exception:  # noqa: BLE001 - any failure here is re-read by the exact pass
        return None
    out: list[tuple[Doc, SourceRef]] = []
    for raw in raw_docs:
        if raw is None:
            continue
        try:
            plain = _plain(raw, [0])
            doc = DOCUMENT_ADAPTER.validate_python(plain)
        except Exception:  # noqa: BLE001
            return None
        out.append((doc, SourceRef(shown, 0)))
    if not out:
        return None
    return out


class _Refused(Exception):
    def __init__(self, message: str, node: Any = None) -> None:
        super().__init__(message)
        self.node = node
        self.where: tuple[int, int] | None = None  # the value's line/col when known


def _plain(value: Any, budget: list[int]) -> Any:
    """Plain Python values from loaded YAML: refuse tags, bound alias expansion."""
    budget[0] += 1
    if budget[0] > MAX_EXPANDED_NODES:
        raise _Refused(
            f"document expands to more than {MAX_EXPANDED_NODES:,} values through aliases; refused"
        )
    if isinstance(value, TaggedScalar):
        raise _Refused(f"YAML tag {value.tag.value!s} is not allowed in manifests", value)
    if isinstance(value, dict):
        if getattr(value, "tag", None) is not None and _custom_tag(value):
            raise _Refused(f"YAML tag {value.tag.value!s} is not allowed in manifests", value)
        out = {}
        for k, v in value.items():
            try:
                out[_key(k)] = _plain(v, budget)
            except _Refused as e:
                if e.node is None and e.where is None and isinstance(value, CommentedMap):
                    e.where = _value_pos(value, k)
                raise
        return out
    if isinstance(value, list):
        if getattr(value, "tag", None) is not None and _custom_tag(value):
            raise _Refused(f"YAML tag {value.tag.value!s} is not allowed in manifests", value)
        return [_plain(v, budget) for v in value]
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
            raise _Refused("holds an invalid Unicode escape (a lone surrogate such as \\ud800); "
                           "write the character itself") from None
        return str(value)
    if isinstance(value, (date, datetime)):
        return value
    raise _Refused(f"unsupported YAML value of type {type(value).__name__}")


_PLAIN_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp")
)


def _custom_tag(node: Any) -> bool:
    tag = getattr(node.tag, "value", None)
    return bool(tag) and str(tag) not in _PLAIN_TAGS


def _key(k: Any) -> Any:
    # Keys must be strings in manifests; anything else is reported by the model as unknown.
    return k if isinstance(k, str) else str(k)


# --- the exact pass ---------------------------------------------------------------------------


def _exact_pass(text: str, shown: str) -> tuple[list[tuple[Doc, SourceRef]], list[Diagnostic]]:
    y = _rt_yaml()
    docs: list[tuple[Doc, SourceRef]] = []
    problems: list[Diagnostic] = []
    try:
        raw_docs = list(y.load_all(text))
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = _yaml_problem(e)
        return [], [Diagnostic(shown, line, col, problem)]
    except ReaderError as e:
        before = text[: e.position]
        line = before.count("\n") + 1
        col = e.position - (before.rfind("\n") + 1) + 1
        return [], [Diagnostic(shown, line, col, f"character {_char(e.character)} is not allowed in YAML ({e.reason})")]
    except (YAMLError, ValueError, RecursionError) as e:
        return [], [Diagnostic(shown, 0, 0, f"YAML error: {str(e).splitlines()[0] if str(e) else type(e).__name__}")]
    if all(r is None for r in raw_docs):
        return [], [Diagnostic(shown, 0, 0, "file holds no manifest documents (only comments or '---')")]
    starts = _document_starts(text) if any(not isinstance(r, (CommentedMap, CommentedSeq)) for r in raw_docs) else []
    for i, raw in enumerate(raw_docs):
        if raw is None:
            continue
        line, col = _pos(raw)
        if not line and i < len(starts):
            line, col = starts[i]
        if not isinstance(raw, CommentedMap):
            problems.append(
                Diagnostic(shown, line, col, "a document must be a mapping with apiVersion, kind, metadata and spec")
            )
            continue
        address = _address(raw)
        try:
            plain = _plain(raw, [0])
        except _Refused as e:
            el, ec = _pos(e.node) if e.node is not None else (e.where or (line, col))
            problems.append(Diagnostic(shown, el, ec, str(e), address))
            continue
        header = _check_header(raw, shown, address)
        if header:
            problems.extend(header)
            continue
        try:
            doc = DOCUMENT_ADAPTER.validate_python(plain)
        except ValidationError as e:
            problems.extend(_located(e, raw, shown, address))
            continue
        docs.append((doc, SourceRef(shown, line)))
    return docs, problems


def _char(c: Any) -> str:
    code = c if isinstance(c, int) else (ord(c) if isinstance(c, str) and len(c) == 1 else None)
    return f"U+{code:04X}" if code is not None else repr(c)


def _document_starts(text: str) -> list[tuple[int, int]]:
    """Where each document's root node starts (a scalar document has no position of its own)."""
    out = []
    try:
        for node in _rt_yaml().compose_all(text):
            mark = getattr(node, "start_mark", None)
            out.append((mark.line + 1, mark.column + 1) if mark else (0, 0))
    except Exception:  # noqa: BLE001 - positions are a courtesy here
        return out
    return out


def _yaml_problem(e: MarkedYAMLError) -> str:
    problem = (e.problem or "YAML syntax error").strip()
    if "duplicate key" in problem:
        return problem.replace("found duplicate key", "duplicate key").split(" with value")[0] + " in this mapping"
    ctx = (e.context or "").strip()
    return f"YAML syntax error: {ctx + ': ' if ctx else ''}{problem}"


def _pos(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return 0, 0
    return lc.line + 1, lc.col + 1


_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _address(raw: CommentedMap) -> str:
    """``Kind/name`` for messages, from whatever of it is a plain word (garbage is left out)."""
    kind = raw.get("kind")
    meta = raw.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    kind_ok = isinstance(kind, str) and bool(_WORD.match(kind))
    name_ok = isinstance(name, str) and bool(_WORD.match(name))
    if kind_ok and name_ok:
        return f"{kind}/{name}"
    return str(kind) if kind_ok else ""


def _check_header(raw: CommentedMap, shown: str, address: str) -> list[Diagnostic]:
    """apiVersion and kind first: without them the spec cannot be read."""
    out = []
    line, col = _pos(raw)
    if "apiVersion" not in raw:
        out.append(Diagnostic(shown, line, col, f"missing apiVersion (write 'apiVersion: {API_VERSION}')", address))
    elif raw["apiVersion"] != API_VERSION:
        ln, cn = _value_pos(raw, "apiVersion")
        out.append(Diagnostic(shown, ln, cn, f"unsupported apiVersion {raw['apiVersion']!r} (this version reads {API_VERSION})", address, "apiVersion"))
    kind = raw.get("kind")
    if "kind" not in raw:
        out.append(Diagnostic(shown, line, col, f"missing kind (one of {', '.join(KINDS)})", address))
    elif kind not in KINDS:
        ln, cn = _value_pos(raw, "kind")
        out.append(Diagnostic(shown, ln, cn, f"unknown kind {kind!r}{_suggest(str(kind), KINDS)} (one of {', '.join(KINDS)})", address, "kind"))
    return out


def _value_pos(m: CommentedMap, key: Any) -> tuple[int, int]:
    try:
        ln, cn = m.lc.value(key)
        return ln + 1, cn + 1
    except (KeyError, TypeError, AttributeError):
        return _key_pos(m, key)


def _key_pos(m: CommentedMap, key: Any) -> tuple[int, int]:
    try:
        ln, cn = m.lc.key(key)
        return ln + 1, cn + 1
    except (KeyError, TypeError, AttributeError):
        return _pos(m)


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _located(e: ValidationError, raw: CommentedMap, shown: str, address: str) -> list[Diagnostic]:
    errors = e.errors(include_url=False)
    locs = [tuple(x for x in err["loc"][1:]) for err in errors]  # drop the union tag (kind)
    out = []
    for err, loc in zip(errors, locs):
        # "items: should have at least 1 item" after its only item failed is noise, not news.
        if err["type"] == "too_short" and any(o[: len(loc)] == loc and len(o) > len(loc) for o in locs):
            continue
        out.append(_diagnostic(err, loc, raw, shown, address))
    return out


def _diagnostic(err: dict[str, Any], loc: tuple[Any, ...], raw: CommentedMap, shown: str, address: str) -> Diagnostic:
    etype = err["type"]
    msg = _message(err)
    node: Any = raw
    line, col = _pos(raw)
    path: list[Any] = []
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            if last and etype == "extra_forbidden":
                line, col = _key_pos(node, part)
            else:
                line, col = _value_pos(node, part)
            path.append(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            try:
                ln, cn = node.lc.item(part)
                line, col = ln + 1, cn + 1
            except (KeyError, TypeError, AttributeError):
                pass
            path.append(part)
            node = node[part]
        elif isinstance(node, CommentedMap) and isinstance(part, str) and part in _MODEL_ALIASES:
            continue  # pydantic's internal branch names (e.g. a union member); not in the YAML
        else:
            # A missing field: point at the mapping that should hold it.
            path.append(part)
            break
    if etype == "value_error" and isinstance(node, CommentedMap):
        # Model-level checks name the field they are about: "discount_unit: ...".
        head, sep, rest = msg.partition(": ")
        if sep and head in node:
            line, col = _value_pos(node, head)
            path.append(head)
            msg = rest
    if etype == "extra_forbidden":
        options = _fields_at(loc[:-1], raw)
        msg = f"unknown field '{loc[-1]}'{_suggest(str(loc[-1]), options)}"
    return Diagnostic(shown, line, col, msg, address, _dotted(path))


_MODEL_ALIASES = frozenset({"function-before[_uid(), str]"})


def _fields_at(loc: tuple[Any, ...], raw: CommentedMap) -> list[str]:
    from reconciler.model import manifest as m

    kind = raw.get("kind")
    model: Any = m.CatalogPackage if kind == "CatalogPackage" else m.ClientPackage
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

    from pydantic import BaseModel

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
}


def _message(err: dict[str, Any]) -> str:
    etype = err["type"]
    ctx = err.get("ctx") or {}
    if etype in _MESSAGES:
        return _MESSAGES[etype]
    if etype == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if etype in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[etype]
        bound = next(iter(ctx.values()), "?")
        return f"must be {op} {bound} (got {err.get('input')!r})"
    if etype == "too_short":
        return "must not be empty"
    if etype == "too_long":
        return f"has too many entries (at most {ctx.get('max_length')})"
    if etype == "literal_error":
        return f"must be one of {ctx.get('expected', '').replace(chr(39), '')} (got {err.get('input')!r})"
    if etype == "string_pattern_mismatch":
        what = _PATTERNS.get(str(ctx.get("pattern")), f"match the pattern {ctx.get('pattern')}")
        return f"{err.get('input')!r} is not valid: must {what}"
    if etype == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')} characters)"
    if etype == "string_too_short":
        return "must not be empty"
    return str(err["msg"])


# --- across documents -------------------------------------------------------------------------


def _cross_check(docs: list[tuple[Doc, SourceRef]], result: ManifestSet) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    for doc, src in docs:
        table: dict[str, Any] = (
            result.catalog_packages if isinstance(doc, CatalogPackage) else result.client_packages
        )
        name = doc.metadata.name
        if name in table:
            first = result.sources[doc.address]
            at = f"{first.file}:{first.line}" if first.line else first.file
            problems.append(
                Diagnostic(
                    src.file, src.line, 1,
                    f"duplicate name: {doc.kind} '{name}' is already defined in {at}",
                    f"{doc.kind}/{name}", "metadata.name",
                )
            )
            continue
        table[name] = doc
        result.sources[doc.address] = src
    for cp in result.client_packages.values():
        problems.extend(_check_client_package(cp, result))
    if problems:
        # Sources of fast-pass documents carry no line; re-derive positions when reporting.
        problems = [_relocate(p, result) for p in problems]
    return problems


def _check_client_package(cp: ClientPackage, ms: ManifestSet) -> list[Diagnostic]:
    src = ms.sources[cp.address]
    addr = f"ClientPackage/{cp.metadata.name}"
    ref = cp.spec.package
    if ref.name is None:
        return []
    pkg = ms.catalog_packages.get(ref.name)
    if pkg is None:
        hint = _suggest(ref.name, ms.catalog_packages)
        return [Diagnostic(src.file, src.line, 1, f"unknown catalog package '{ref.name}'{hint}: no CatalogPackage with that metadata.name in the manifests (use {{id: UID}} for one not managed here)", addr, "spec.package")]
    out = []
    keys = {item.key for item in pkg.spec.items}
    for i, credit in enumerate(cp.spec.booking_credits or ()):
        if credit.key not in keys:
            out.append(Diagnostic(src.file, src.line, 1, f"no item of catalog package '{ref.name}' has exactly the services {list(credit.key)}", addr, f"spec.booking_credits[{i}].services"))
    return out


def _relocate(d: Diagnostic, ms: ManifestSet) -> Diagnostic:
    """Point a cross-document problem at the exact value, reading its file with positions."""
    if d.line and d.field != "spec.package" and not d.field.startswith("spec.booking_credits"):
        return d
    if not d.address or not Path(d.file).is_file():
        return d
    try:
        text = Path(d.file).read_text("utf-8")
        raws = [r for r in _rt_yaml().load_all(text) if isinstance(r, CommentedMap)]
    except Exception:  # noqa: BLE001 - positions are a courtesy; the message stands without them
        return d
    kind, _, name = d.address.partition("/")
    matches = [
        raw for raw in raws
        if raw.get("kind") == kind and isinstance(raw.get("metadata"), CommentedMap)
        and raw["metadata"].get("name") == name
    ]
    if d.field == "metadata.name":
        matches.reverse()  # a duplicate is the later definition
    for raw in matches[:1]:
            node: Any = raw
            line, col = _pos(raw)
            for part in d.field.replace("[", ".").replace("]", "").split("."):
                key: Any = int(part) if part.isdigit() else part
                if isinstance(node, CommentedMap) and key in node:
                    line, col = _value_pos(node, key)
                    node = node[key]
                elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
                    ln, cn = node.lc.item(key)
                    line, col = ln + 1, cn + 1
                    node = node[key]
            return Diagnostic(d.file, line, col, d.message, d.address, d.field)
    return d
