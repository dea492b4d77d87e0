"""Hypothesis strategies for valid and near-valid manifests, and a small YAML writer.

A manifest file is built as data (documents of both kinds, valid against the demo business of
the sandbox), then mutated: a value replaced by one of the wrong type or out of range, a key
removed, an unknown key added, a date that is not a date, a reference that resolves to nothing,
and sometimes the text itself damaged (a slice cut, a line repeated, a tab, a truncation).  The
writer emits block YAML itself so that a value can be written plain (``2026-02-30``, ``yes``,
``0x1F``) as a person would, not quoted as a YAML library would.
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

from hypothesis import strategies as st

from reconciler.sandbox import DEMO

SERVICES = [s["id"] for s in DEMO["services"]]
CLIENTS = [c["id"] for c in DEMO["clients"]]
EMAILS = [c["email"] for c in DEMO["clients"] if c.get("email")]
PRODUCTS = [p["id"] for p in DEMO.get("products", [])]


class Plain(str):
    """A string written without quotes (YAML decides what it is)."""


class Raw(str):
    """YAML text written as is, e.g. a quoted string with escapes (``"\\ud800"``)."""


# --- the writer -----------------------------------------------------------------------------------


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        return repr(v)
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, Plain):
        plain_ok = (v.strip() == v and v and "\n" not in v and ": " not in v and " #" not in v
                    and not v.startswith(("-", "[", "{", "#", "&", "*", "!", "|", ">", "'", '"', "%", "@", "`")))
        return str(v) if plain_ok else json.dumps(str(v), ensure_ascii=False)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return json.dumps(v, default=str, ensure_ascii=False)  # a flow collection


def _key(k: Any) -> str:
    if isinstance(k, str) and k and k.replace("_", "a").isalnum():
        return k
    return _scalar(k)


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{_key(k)}:")
                lines.extend(_block(v, indent + 2))
            else:
                lines.append(f"{pad}{_key(k)}: {_inline(v)}")
    else:
        for item in value:
            if isinstance(item, dict) and item:
                sub = _block(item, indent + 2)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {_inline(item)}")
    return lines


def _inline(v: Any) -> str:
    if isinstance(v, dict):
        return "{}" if not v else "{" + ", ".join(f"{_key(k)}: {_inline(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_inline(x) for x in v) + "]"
    return _scalar(v)


def to_yaml(docs: list[Any]) -> str:
    """Documents as one YAML stream (``---`` between them)."""
    parts = []
    for d in docs:
        parts.append("\n".join(_block(d, 0)) + "\n" if isinstance(d, (dict, list)) and d else _inline(d) + "\n")
    return "---\n".join(parts)


# --- valid documents ------------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
DATES = st.dates().map(lambda d: Plain(d.isoformat()))


@st.composite
def catalog_doc(draw: st.DrawFn, name: str) -> dict[str, Any]:
    services = draw(st.lists(st.sampled_from(SERVICES), min_size=1, max_size=len(SERVICES), unique=True))
    split = draw(st.integers(1, len(services)))
    items = [{"total_bookings": draw(st.integers(1, 50)), "services": services[:split]}]
    if split < len(services):
        items.append({"total_bookings": draw(st.integers(1, 50)),
                      "services": [{"id": s} for s in services[split:]]})
    spec: dict[str, Any] = {
        "name": draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                             max_size=30).filter(str.strip)),
        "price": draw(st.one_of(st.integers(0, 10_000), st.decimals(0, 10_000, places=2).map(float))),
        "currency": draw(st.sampled_from(["USD", "eur", "ILS", "gbp"])),
        "expiration": draw(st.integers(1, 36)),
        "expiration_unit": Plain(draw(st.sampled_from(["D", "W", "M", "Y", "m", "y"]))),
        "items": items,
        "products": draw(st.lists(st.fixed_dictionaries({"id": st.sampled_from(PRODUCTS),
                                                          "quantity": st.integers(1, 5)}),
                                  max_size=min(3, len(PRODUCTS)), unique_by=lambda p: p["id"])) if PRODUCTS else [],
    }
    if draw(st.booleans()):
        spec["description"] = draw(st.text(max_size=40))
    if draw(st.booleans()):
        unit = draw(st.sampled_from(["F", "P"]))
        spec["discount_unit"] = Plain(unit)
        spec["discount_amount"] = draw(st.integers(0, 100 if unit == "P" else 1000))
    if draw(st.booleans()):
        spec["online_payment_enabled"] = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        spec["image_path"] = draw(st.sampled_from(["https://example.com/p.png", "", "images/p.jpg"]))
    return {"apiVersion": "reconciler/v1", "kind": "CatalogPackage", "metadata": {"name": name}, "spec": spec}


@st.composite
def client_doc(draw: st.DrawFn, name: str, catalog: list[dict[str, Any]]) -> dict[str, Any]:
    client = draw(st.one_of(st.sampled_from(CLIENTS), st.sampled_from(CLIENTS).map(lambda c: {"id": c}),
                            *( [st.sampled_from(EMAILS).map(lambda e: {"email": e})] if EMAILS else [])))
    if catalog and draw(st.integers(0, 9)):
        pkg_doc = draw(st.sampled_from(catalog))
        package: Any = pkg_doc["metadata"]["name"]
    else:  # a package not managed here (mostly one that does not exist: a plan error)
        pkg_doc, package = None, {"id": draw(st.from_regex(r"[a-z0-9]{16}", fullmatch=True))}
    spec: dict[str, Any] = {"client": client, "package": package}
    # mostly dates a plan accepts (around now), sometimes any date at all
    near = st.dates(min_value=date(2026, 1, 1), max_value=date(2035, 12, 31))
    start = draw(st.one_of(st.none(), near, st.dates()))
    if start is not None:
        spec["valid_from"] = Plain(start.isoformat())
    if draw(st.booleans()):
        end = draw(st.dates(min_value=max(start, date(2030, 1, 1))) if start is not None and draw(st.booleans())
                   else st.dates(min_value=start) if start is not None else st.one_of(near, st.dates()))
        spec["valid_until"] = Plain(end.isoformat())
    if draw(st.booleans()):
        spec["price"] = draw(st.integers(0, 5000))
    if draw(st.integers(0, 3)) == 0:
        spec["tax_uids"] = draw(st.lists(st.from_regex(r"[a-z0-9]{16}", fullmatch=True), max_size=2))
    if draw(st.integers(0, 3)) == 0:
        spec["matter_uid"] = draw(st.from_regex(r"[a-z0-9]{16}", fullmatch=True))
    if pkg_doc is not None and draw(st.booleans()):
        item = draw(st.sampled_from(pkg_doc["spec"]["items"]))
        services = [s["id"] if isinstance(s, dict) else s for s in item["services"]]
        spec["booking_credits"] = [{"services": services, "total_bookings": draw(st.integers(0, 60))}]
    return {"apiVersion": "reconciler/v1", "kind": "ClientPackage", "metadata": {"name": name}, "spec": spec}


@st.composite
def manifest_docs(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    catalog_n = draw(st.integers(min(1, len(names) - 1), len(names)))
    catalog = [draw(catalog_doc(n)) for n in names[:catalog_n]]
    clients = [draw(client_doc(n, catalog)) for n in names[catalog_n:]]
    return catalog + clients


# --- mutations ------------------------------------------------------------------------------------

BAD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["id", "email", "x", "name"]), st.integers(-1, 2), max_size=2),
    st.sampled_from([Plain("2026-02-30"), Plain("2026-13-01"), Plain("20260101"), Plain("2026-1-1"), "not a date",
                     Plain("yes"), Plain("no"), Plain("0x1F"), Plain("1e400"), Plain("~"), Plain(".inf"), Plain("-0"),
                     Plain("0o17"), Plain("12:30"), Raw("*alias"), Raw("!tag x"), Raw("&anchor v"),
                     Raw("@at"), "", " ", "\t", "x" * 300, Raw("{"), Raw("]"), Raw('"\\ud800\\udc00"'),
                     Raw('"x\\udfff"'), Raw('"\\x00"'), Raw('"\\u001b[31mred"'), Raw("'it''s'"), Raw("|\n  block")]),
)
UNKNOWN_KEYS = st.sampled_from(["colour", "prise", "expiration_units", "id", "extra", "spec", "kind",
                                "booking_credit", "valid_untill", "Name", "metadata", "123"])


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


@st.composite
def mutated_docs(draw: st.DrawFn) -> list[Any]:
    """Valid documents with 0 to 3 mutations of their data."""
    docs: list[Any] = draw(manifest_docs())
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        paths = _paths(docs)[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _get(docs, path[:-1]), path[-1]
        kind = draw(st.sampled_from(["replace", "replace", "delete", "add_key", "bad_ref", "dup_name"]))
        if kind == "replace":
            parent[last] = draw(BAD_VALUES)
        elif kind == "delete":
            del parent[last]
        elif kind == "add_key":
            target = parent if isinstance(parent, dict) else docs[0]
            if isinstance(target, dict):
                target[draw(UNKNOWN_KEYS)] = draw(BAD_VALUES)
        elif kind == "bad_ref":
            doc = draw(st.sampled_from(docs))
            if isinstance(doc, dict) and isinstance(doc.get("spec"), dict) and doc.get("kind") == "ClientPackage":
                doc["spec"][draw(st.sampled_from(["package", "client"]))] = draw(st.sampled_from([
                    "no-such-package", {"id": "zzzzzzzzzzzzzzzz"}, {"email": "nobody@example.com"},
                    {"email": "not-an-email"}, {"id": "short"}, {"name": "x"}, {"id": CLIENTS[0], "email": EMAILS[0]
                                                                                 if EMAILS else "a@b.c"}]))
        elif kind == "dup_name" and len(docs) > 1:
            a, b = docs[0], docs[-1]
            if isinstance(a, dict) and isinstance(b, dict) and isinstance(a.get("metadata"), dict) \
                    and isinstance(b.get("metadata"), dict):
                b["metadata"]["name"] = a["metadata"].get("name")
    return docs


@st.composite
def manifest_text(draw: st.DrawFn) -> str:
    """A manifest file: mutated documents, and sometimes damaged text."""
    text = to_yaml(draw(mutated_docs()))
    damage = draw(st.sampled_from(["none", "none", "none", "cut", "repeat_line", "tab", "truncate", "bytes"]))
    lines = text.splitlines(keepends=True)
    if damage == "cut" and len(text) > 2:
        a = draw(st.integers(0, len(text) - 1))
        b = draw(st.integers(a, min(len(text), a + 40)))
        text = text[:a] + text[b:]
    elif damage == "repeat_line" and lines:
        i = draw(st.integers(0, len(lines) - 1))
        text = "".join(lines[:i + 1] + lines[i:])
    elif damage == "tab" and lines:
        i = draw(st.integers(0, len(lines) - 1))
        text = "".join([*lines[:i], "\t" + lines[i], *lines[i + 1:]])
    elif damage == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "bytes":
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(["\x00", "\ufeff", "\u2028", ": :", "- -", "? ", "|\n", "'"])) + text[i:]
    return text
