"""Editing manifest files in place: ruamel.yaml round-trip, comments and formatting kept.

A file is loaded once with the round-trip loader and dumped back with each indentation style in
turn; the style that reproduces the file byte for byte is the file's own, and edits are dumped
with it.  A file no style reproduces exactly is refused rather than reformatted.

Values are set in the manifest's terms from normalised view values: money as YAML numbers,
enums upper-case, dates as dates; list entries are found by identity, never by index (an item or
a booking credit by its set of services, a product by its id).
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.core.errors import ReconcilerError

#: (mapping indent, sequence indent, dash offset): indented dashes first (as in manifests/).
STYLES = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 2), (4, 4, 0), (3, 5, 2), (3, 3, 0))
BOM = "\ufeff"


class WriteBackError(ReconcilerError):
    """A manifest cannot be rewritten safely; nothing was written."""


def _yaml(style: tuple[int, int, int], explicit_start: bool) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 1 << 16  # never re-wrap long lines
    m, s, o = style
    y.indent(mapping=m, sequence=s, offset=o)
    y.explicit_start = explicit_start
    return y


class RoundTripFile:
    """The documents of one YAML file, editable and dumpable in the file's own style."""

    def __init__(self, text: str, name: str = "<file>") -> None:
        self.bom = text.startswith(BOM)
        self.text = text[1:] if self.bom else text
        self.name = name
        loader = _yaml(STYLES[0], False)
        self.docs: list[Any] = list(loader.load_all(self.text))
        self.yaml = self._own_style()

    def _own_style(self) -> YAML:
        starts = (self.text.lstrip().startswith("---"), not self.text.lstrip().startswith("---"))
        for explicit in starts:
            for style in STYLES:
                y = _yaml(style, explicit)
                if self._dump(y) == self.text:
                    return y
        raise WriteBackError(
            f"{self.name}: cannot rewrite this file without changing its formatting (no indentation style "
            "reproduces it exactly)", hint="Change the values shown by 'reconciler drift' by hand.")

    def _dump(self, y: YAML) -> str:
        buf = io.StringIO()
        y.dump_all(self.docs, buf)
        return buf.getvalue()

    def dump(self) -> str:
        return (BOM if self.bom else "") + self._dump(self.yaml)

    def find(self, kind: str, name: str) -> CommentedMap:
        """The document ``kind``/``name`` (WriteBackError when absent)."""
        for doc in self.docs:
            if not isinstance(doc, CommentedMap):
                continue
            meta = doc.get("metadata")
            if doc.get("kind") == kind and isinstance(meta, dict) and meta.get("name") == name:
                return doc
        raise WriteBackError(f"{self.name}: no {kind} named {name!r} in this file any more; run drift again")


# --- values -----------------------------------------------------------------------------------


def number(text: Any) -> int | float:
    """A canonical money string as a YAML number: 540 -> 540, "99.99" -> 99.99 (exactly)."""
    d = Decimal(str(text))
    if d == d.to_integral_value():
        return int(d)
    f = float(d)
    if Decimal(repr(f)) != d:
        raise WriteBackError(f"{text} cannot be written as an exact YAML number")
    return f


def services_of(entry: Any) -> tuple[str, ...]:
    """The sorted service UIDs of an item or credit entry (``uid`` or ``{id: uid}`` each)."""
    raw = entry.get("services") if isinstance(entry, dict) else None
    out = []
    for s in raw or ():
        out.append(str(s.get("id")) if isinstance(s, dict) else str(s))
    return tuple(sorted(out))


def split_path(path: str) -> tuple[str, str | None]:
    """``items[a,b]`` -> (``items``, ``a,b``); ``price`` -> (``price``, None)."""
    if "[" in path and path.endswith("]"):
        head, _, key = path[:-1].partition("[")
        return head, key
    return path, None


def _seq_like(sibling: Any, values: list[str]) -> CommentedSeq:
    seq = CommentedSeq(values)
    inner = sibling.get("services") if isinstance(sibling, dict) else None
    if isinstance(inner, CommentedSeq) and inner.fa.flow_style():
        seq.fa.set_flow_style()
    return seq


def _keyed(spec: CommentedMap, field: str, key: str, value: Any, count: str) -> None:
    """Set ``count`` of the entry of ``spec[field]`` whose services are ``key``; add or delete it."""
    entries = spec.get(field)
    if entries is None:
        entries = spec[field] = CommentedSeq()
    wanted = tuple(sorted(key.split(",")))
    index = next((i for i, e in enumerate(entries) if services_of(e) == wanted), None)
    if value is None:
        if index is not None:
            del entries[index]
        return
    if index is not None:
        entries[index][count] = int(value)
        return
    entry = CommentedMap()
    entry[count] = int(value)
    entry["services"] = _seq_like(entries[0] if len(entries) else None, list(wanted))
    entries.append(entry)


def _product(spec: CommentedMap, pid: str, quantity: Any) -> None:
    products = spec.get("products")
    if products is None:
        products = spec["products"] = CommentedSeq()
    index = next((i for i, p in enumerate(products) if isinstance(p, dict) and str(p.get("id")) == pid), None)
    if quantity is None:
        if index is not None:
            del products[index]
    elif index is not None:
        products[index]["quantity"] = int(quantity)
    else:
        entry = CommentedMap()
        entry["id"] = pid
        entry["quantity"] = int(quantity)
        products.append(entry)


def _set_or_drop(spec: CommentedMap, key: str, value: Any) -> None:
    if value is None:
        spec.pop(key, None)
    else:
        spec[key] = value


def set_catalog(spec: CommentedMap, path: str, value: Any) -> str | None:
    """Write one view value into a CatalogPackage spec; a reason when it cannot be written."""
    field, key = split_path(path)
    if field == "items" and key is not None:
        _keyed(spec, "items", key, value, "total_bookings")
    elif field == "products" and key is not None:
        _product(spec, key, value)
    elif field in ("price", "discount_amount"):
        if value is None and field == "discount_amount":
            spec.pop("discount_amount", None)
            spec.pop("discount_unit", None)  # the two go together
        else:
            _set_or_drop(spec, field, None if value is None else number(value))
    elif field == "discount_unit":
        if value is None:
            spec.pop("discount_amount", None)
            spec.pop("discount_unit", None)
        else:
            spec[field] = str(value).upper()
    elif field in ("currency", "expiration_unit"):
        spec[field] = str(value).upper()
    elif field == "expiration":
        spec[field] = int(value)
    elif field == "name":
        spec[field] = str(value)
    elif field in ("description", "image_path"):
        spec[field] = value or ""  # the API shows "no description" as empty text
    elif field == "online_payment_enabled":
        _set_or_drop(spec, field, None if value is None else bool(value))
    else:
        return f"{field} is not a CatalogPackage field reconciler can write"
    return None


def set_client(spec: CommentedMap, path: str, value: Any) -> str | None:
    """Write one view value into a ClientPackage spec; a reason when it cannot be written."""
    field, key = split_path(path)
    if field == "booking_credits" and key is not None:
        _keyed(spec, "booking_credits", key, value, "total_bookings")
    elif field == "price":
        _set_or_drop(spec, field, None if value is None else number(value))
    elif field in ("valid_from", "valid_until"):
        _set_or_drop(spec, field, None if value is None else date.fromisoformat(str(value)))
    elif field == "matter_uid":
        _set_or_drop(spec, field, value)
    elif field == "client_id":
        ref = spec.get("client")
        if isinstance(ref, dict) and "id" in ref:
            ref["id"] = value
        elif isinstance(ref, str):
            spec["client"] = value
        else:
            return "the manifest names the client by e-mail; change the client by hand if that is intended"
    elif field == "package_id":
        return "vcita cannot move a client package to another catalog package; check it by hand"
    else:
        return f"{field} is not a ClientPackage field reconciler can write"
    return None


def plain(value: Any) -> Any:
    """Plain Python values of a round-trip document (for validating it with the models)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, date):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)
