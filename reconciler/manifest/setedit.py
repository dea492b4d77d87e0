"""``drift --write-back`` for a member of a ClientPackageSet: vcita's value is written into that
member's own entry of the set's ``clients:`` list, as a per-client override, never into the
set's shared fields (which every other member reads).

A member written as a bare id (``- ktsrl7f6h94run82``) becomes a one-line mapping
(``- {id: ktsrl7f6h94run82, valid_until: 2027-07-31}``); a mapping entry gets the field.  What a
member cannot say is left alone with a reason: dropping a value the set gives every member, its
client (the member's address) or its catalog package (the set's).  Whether the edited set still
means exactly what it meant for the member, but for the accepted values, is checked by the caller
(``reconciler.drift.writeback``) before anything is written.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.manifest.yamledit import _keyed, number, split_path

_MEMBER = re.compile(r'^client_package_set\.(?P<set>[^\[]+)\["(?P<key>[^"]+)"\]$')


def parse_member(address: str) -> tuple[str, str] | None:
    """(set name, member key) of a set member's address; None for any other address."""
    m = _MEMBER.match(address)
    return (m.group("set"), m.group("key")) if m else None


def member_index(spec: Any, key: str) -> int | None:
    """The index of the member ``key`` (its client id, or its e-mail in lower case) in ``spec.clients``."""
    for i, entry in enumerate(spec.get("clients") or ()):
        if isinstance(entry, dict):
            if str(entry.get("id")) == key or str(entry.get("email", "")).lower() == key:
                return i
        elif str(entry) == key:
            return i
    return None


def _entry(spec: Any, index: int) -> CommentedMap:
    """The member's entry as a mapping (a bare id becomes ``{id: ...}``, on one line)."""
    clients = spec["clients"]
    entry = clients[index]
    if isinstance(entry, CommentedMap):
        return entry
    mapping = CommentedMap()
    mapping["id"] = str(entry)
    mapping.fa.set_flow_style()
    clients[index] = mapping
    return mapping


def _copy(node: Any) -> Any:
    """A copy of a list of the set's, without its comments (they describe the set's values)."""
    if isinstance(node, dict):
        out = CommentedMap()
        for k, v in node.items():
            out[k] = _copy(v)
        return out
    if isinstance(node, list):
        return CommentedSeq([_copy(v) for v in node])
    return node


def set_member(spec: Any, key: str, path: str, value: Any, before: dict[str, Any]) -> str | None:
    """Write one view value of the member ``key`` into its entry of the set ``spec``; a reason
    when it cannot be written.  ``before``: the member's flattened view as the set says it now."""
    index = member_index(spec, key)
    if index is None:
        return f"no member {key!r} in the set's clients any more; run drift again"
    field, sub = split_path(path)
    if field == "client_id":
        return "a member's client is its address in the set; change the set's clients by hand if that is intended"
    if field == "package_id":
        return "vcita cannot move a client package to another catalog package; check it by hand"
    if field not in ("valid_from", "valid_until", "price", "matter_uid", "booking_credits"):
        return f"{field} is not a field a set member can override"
    own = spec["clients"][index]
    own_has = isinstance(own, dict) and (field in own or (field == "valid_until" and "valid_for" in own))
    set_has = field in spec or (field == "valid_until" and "valid_for" in spec)
    if value is None and field != "booking_credits":
        if set_has:
            return (f"vcita has no {field} for this member, and the set gives every member one: a member cannot "
                    "drop it; change the set by hand")
        if own_has:
            entry = _entry(spec, index)
            entry.pop(field, None)
            if field == "valid_until":
                entry.pop("valid_for", None)
        return None
    entry = _entry(spec, index)
    if field == "booking_credits" and sub is not None:
        if "booking_credits" not in entry:  # the member's own list replaces the set's: start from it
            shared = spec.get("booking_credits")
            entry["booking_credits"] = _copy(shared) if shared is not None else CommentedSeq()
        _keyed(entry, "booking_credits", sub, value, "total_bookings")
    elif field == "price":
        entry["price"] = number(value)
    elif field == "matter_uid":
        entry["matter_uid"] = value
    elif field == "valid_until":
        entry.pop("valid_for", None)
        entry["valid_until"] = date.fromisoformat(str(value))
    elif field == "valid_from":
        from_for = "valid_for" in entry or ("valid_until" not in entry and "valid_for" in spec)
        pin = from_for and before.get("valid_until")
        entry["valid_from"] = date.fromisoformat(str(value))
        if pin:  # the end is computed from valid_from: pinned where it is, so that only the start moves
            entry.pop("valid_for", None)
            entry["valid_until"] = date.fromisoformat(str(before["valid_until"]))
    else:
        return f"{path} is not a field a set member can override"
    return None
