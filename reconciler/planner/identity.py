"""Identity: what makes a manifest object the same remote object, whatever its name.

Names (``metadata.name``) are labels; a client package *is* its client, its catalog package, its
``valid_from`` and its price, and a catalog package its display name.  A manifest object whose
identity matches a record reconciler already has is never created again:

* a record whose manifest is gone (a rename) -> the record moves to the new address;
* an archived record (the object left the manifests earlier) -> it is re-adopted;
* an archived client package of the same client and catalog package but another declared price or
  ``valid_from`` (removed from the manifests, then added back with new terms) -> refused unless the
  object says ``repeat_purchase: true``: vcita still holds the old package, so a create is a second
  sale, as when the rename and the new price come in one plan (``siblings.py``).  A record an
  earlier replacement archived counts only while no tracked record replaced it (that one is then
  the sale, compared by the sibling rule with what its manifest declares);
* a pending create at another address, or several candidates, or a record outside the paths of
  a partial plan -> the plan stops with an error naming them and the command that settles it;
* a record still tracked at another address in the manifests whose manifest does not say
  ``repeat_purchase: true`` (that one is the sale) -> a second sale of the same package to the
  same client, allowed only when the new object says ``repeat_purchase: true``.  A tracked
  repeat is not the sale: beside it, one new object without the flag may be (the sale its
  manifests declare), as on the first plan that created both.

A field the manifest leaves out (most omit ``valid_from`` and ``price``) matches any value.

A tracked object replaced by a client package of another client or catalog package (an e-mail that
now names another client) is a new sale to that client: refused beside an archived package of it
that client still holds (:func:`reassigned_refused`), and the package it replaces stays its own
client's (:func:`superseded` counts a successor of the same client and catalog package only).

The same rule holds between the new objects of one plan (``siblings.py``): among new objects of
compatible identities (the same client and catalog package, and every field both declare equal),
or of an identity an object takes over in this plan (a rename, a re-adoption, a replacement), at most one
without ``repeat_purchase: true`` is the sale, the first in address order; the others are
refused, located at their file and line.  So a copied manifest gets the same verdict on a first
plan and on one resumed after either copy was created.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.model import views as nz
from reconciler.model.manifest import ClientPackageSpec
from reconciler.plan.document import Problem

#: ``_take_over``'s answer when the plan refuses the object (a Problem explains why).
REFUSED: Any = object()

CLIENT_FIELDS = ("client_id", "package_id", "valid_from", "price")
#: How a replacement's archived record names the client package that replaced it (``State.archive_replaced``).
_REPLACED_BY = "replaced by "
#: The identity fields every match shares, for a catalog package [0] and a client package [1].
KEY_FIELDS = (("name",), ("client_id", "package_id"))


def of(kind: str, applied: dict[str, Any]) -> dict[str, Any]:
    """The identity of a tracked record, from what was last applied."""
    if kind == "ClientPackage":
        return {k: applied.get(k) for k in CLIENT_FIELDS}
    return {"name": applied.get("name")}


def desired_client(spec: ClientPackageSpec, client_id: str, package_id: str) -> dict[str, Any]:
    """The identity a client-package manifest declares (the fields it leaves out are absent)."""
    want: dict[str, Any] = {"client_id": client_id, "package_id": package_id}
    if spec.valid_from is not None:
        want["valid_from"] = spec.valid_from.isoformat()
    if spec.price is not None:
        want["price"] = nz.money(spec.price)
    return want


def key(kind: str, identity: dict[str, Any]) -> tuple[Any, ...]:
    """The part of an identity every match shares: its kind and client and catalog package (a
    client package), or its name (a catalog package); a field left out counts as None, as in
    :func:`matches`."""
    return (kind, *(identity.get(f) for f in KEY_FIELDS[kind == "ClientPackage"]))


def keyed(kind: str, want: dict[str, Any]) -> bool:
    """Whether ``want`` declares every field of :func:`key` (only then can a match be looked up by key)."""
    return all(f in want for f in KEY_FIELDS[kind == "ClientPackage"])


def matches(have: dict[str, Any], want: dict[str, Any]) -> bool:
    """Every field ``want`` declares equals ``have``'s."""
    return all(have.get(k) == v for k, v in want.items())


def matches_pending(details: dict[str, Any], want: dict[str, Any]) -> bool:
    """A pending create's details (what was sent) against an identity: client and package, and
    name for a catalog package."""
    keys = [k for k in ("client_id", "package_id", "name") if k in want]
    return bool(keys) and all(details.get(k) == want[k] for k in keys)


def describe(kind: str, want: dict[str, Any]) -> str:
    if kind == "CatalogPackage":
        return f"catalog package named {want.get('name')!r}"
    extra = "".join(f", {k} {want[k]}" for k in ("valid_from", "price") if k in want)
    return f"client {want.get('client_id')} and catalog package {want.get('package_id')}{extra}"


@dataclass
class Matches:
    """The records a new manifest object's identity matches, by where they are."""

    leaving: list[tuple[str, Any]] = field(default_factory=list)  # tracked, manifest gone
    wanted: list[tuple[str, Any]] = field(default_factory=list)  # tracked, manifest present
    outside: list[tuple[str, Any]] = field(default_factory=list)  # tracked, outside a partial plan
    archived: list[tuple[str, Any]] = field(default_factory=list)
    pending: Sequence[Any] = ()
    #: archived client packages of the same client and catalog package, other terms (``earlier``)
    earlier: Sequence[Any] = ()

    def problem(self, address: str, kind: str, want: dict[str, Any]) -> Problem | None:
        """Why the object cannot be created nor take a record over; None when it can."""
        what = describe(kind, want)
        if self.pending:
            names = ", ".join(sorted({it.address for it in self.pending}))
            return Problem(address=address, severity="error",
                           message=f"the same {what} as the pending create of {names}, whose outcome is unknown",
                           hint=f"Resolve it first: 'reconciler import {names.split(', ')[0]} ID' if it exists, "
                                f"then 'reconciler state mv' it here; or 'reconciler state forget-intent' if not.")
        if self.outside:
            names = ", ".join(a for a, _ in self.outside)
            return Problem(address=address, severity="error",
                           message=f"the same {what} as {names}, tracked outside the paths of this plan",
                           hint=f"Plan all the manifests (a rename is then recognised), or run "
                                f"'reconciler state mv {self.outside[0][0]} {address}'"
                                + (" if it is the same client package; a further sale says 'repeat_purchase: true' "
                                   "in its spec." if kind == "ClientPackage" else "."))
        takers = self.leaving + self.archived
        if self.wanted and kind == "CatalogPackage" and not self.leaving:  # with one leaving: a rename
            names = ", ".join(f"{a} ({t.id})" for a, t in self.wanted)
            return Problem(address=address, severity="error",
                           message=f"the same {what} as {names}, tracked and still in the manifests: two manifests "
                                   "of one catalog package (a client package naming this one would be created "
                                   "against a second copy of it: a second sale)",
                           hint=f"Keep one manifest per catalog package: remove this one and point its client "
                                f"packages at {self.wanted[0][0].split('.', 1)[1]}, or, if it is a separate package, "
                                "give it another display name.")
        if self.wanted and kind == "ClientPackage":
            names = ", ".join(f"{a} ({t.id})" for a, t in self.wanted)
            return Problem(address=address, severity="error",
                           message=f"the same {what} as {names}: a second sale of this package to this client",
                           hint="If a second payment request is intended (a renewal, a repeat purchase), add "
                                "'repeat_purchase: true' to its spec; otherwise declare valid_from (or price) to "
                                "tell them apart, or remove the copy.")
        if len(takers) > 1:
            names = ", ".join(f"{a} ({t.id}{', archived' if (a, t) in self.archived else ''})" for a, t in takers)
            return Problem(address=address, severity="error",
                           message=f"the same {what} as {len(takers)} records ({names}): cannot tell which one "
                                   "this object is",
                           hint=f"Settle it: 'reconciler state mv OLD {address}' for a tracked one, or "
                                f"'reconciler import {address} ID' for an archived one; declaring valid_from or "
                                "price may also tell them apart.")
        if not takers and self.earlier and kind == "ClientPackage":
            return readded_refused(address, want, self.earlier)
        return None


def superseded(record: Any, archived: Mapping[str, Any], tracked: Mapping[str, tuple[Any, Any]]) -> bool:
    """Whether an archived record was replaced (``replaced by NEW``, along a chain of replacements)
    by a client package the state still tracks (``tracked``: id -> its client and catalog package)
    of the same client and catalog package: that one is then its sale.  A replacement for another
    client or of another package (an e-mail that named another client) leaves the record's client
    holding it: it still counts."""
    seen: set[str] = set()
    subject = (record.identity.get("client_id"), record.identity.get("package_id"))
    while (record.reason or "").startswith(_REPLACED_BY):
        successor = record.reason[len(_REPLACED_BY):].strip()
        if successor in tracked:
            return tracked[successor] == subject
        if successor in seen or successor not in archived:
            return False
        seen.add(successor)
        record = archived[successor]
    return False


def earlier(records: Sequence[Any], want: dict[str, Any], archived: Mapping[str, Any],
            tracked_ids: Container[str], tracked: Mapping[str, tuple[Any, Any]]) -> list[Any]:
    """The archived client packages (``records``, of ``want``'s client and catalog package) that a new
    object of identity ``want`` does not match but vcita still holds: a create beside them is a second
    sale of the package to the client.  Those a tracked record replaced are left out (see
    :func:`superseded`)."""
    return [r for r in records if r.kind == "ClientPackage" and r.id not in tracked_ids
            and not matches(r.identity, want) and not superseded(r, archived, tracked)]


def readded_refused(address: str, want: dict[str, Any], records: Sequence[Any]) -> Problem:
    """Why a client package added back to the manifests with new terms is not created: vcita still
    holds the one archived when it left (its payment request too)."""
    def terms(r: Any) -> str:
        held = ", ".join(f"{k} {r.identity.get(k)}" for k in ("price", "valid_from") if r.identity.get(k) is not None)
        why = r.reason or "archived"
        return f"{r.id} ({held + ', ' if held else ''}{why}, last at {r.address}, {r.archived_at[:10]})"

    first = records[0]
    same = [f"{k}: {first.identity[k]}" for k in ("price", "valid_from") if first.identity.get(k) is not None]
    declare = (f"declare the terms it had ({', '.join(same)}) or leave " if same else "leave ")
    declare += "price and valid_from out"
    return Problem(
        address=address, severity="error",
        message=(f"the same client {want.get('client_id')} and catalog package {want.get('package_id')} as "
                 f"{'client packages' if len(records) > 1 else 'the client package'} "
                 f"{', '.join(terms(r) for r in records)}, archived in the state and still held by vcita: creating "
                 "this one (other terms) would be a second sale of this package to this client, with a new "
                 "payment request"),
        hint=(f"If the client buys this package again (a renewal, a new payment request), add 'repeat_purchase: "
              f"true' to the spec of {address}. If it is {first.address} brought back, {declare}: the plan then "
              f"re-adopts {first.id} (no payment request), and new terms after that are a reviewed replacement "
              "(--allow-replace)." + (f" To take back another of them: 'reconciler import {address} ID'."
                                      if len(records) > 1 else "")))


def replacement_refused(address: str, tracked_id: str, want: dict[str, Any], archived: Sequence[Any]) -> Problem:
    """Why a replacement of ``tracked_id`` cannot be planned: it would make a client package of an
    identity (``want``, price included) that ``archived`` records, packages vcita still holds (the
    one an earlier replacement replaced, most often: a price changed back).  A second payment
    request for it is a second sale, not a change."""
    first = archived[0]
    names = ", ".join(f"{r.id} ({r.reason or 'archived'}, last at {r.address}, {r.archived_at[:10]})" for r in archived)
    return Problem(
        address=address, severity="error",
        message=(f"replacing {tracked_id} would make a new client package of the {describe('ClientPackage', want)}, "
                 f"and vcita already holds {'them' if len(archived) > 1 else 'one'}, archived in the state: {names}; "
                 "a new one would bill the client a second time"),
        hint=(f"To go back to {first.id}: 'reconciler state rm {address}' (which archives {tracked_id}), then plan "
              f"again: this object re-adopts {first.id}, no payment request. If the client buys this package again, "
              "add 'repeat_purchase: true' to its spec."))


def reassigned_refused(address: str, tracked_id: str, want: dict[str, Any], held: Sequence[Any]) -> Problem:
    """Why a replacement for another client or of another catalog package cannot be planned: that
    client still holds an archived package of it (``held``, other terms), which vcita keeps billing."""
    names = ", ".join(f"{r.id} ({r.reason or 'archived'}, last at {r.address}, {r.archived_at[:10]})" for r in held)
    return Problem(
        address=address, severity="error",
        message=(f"replacing {tracked_id} (its client or catalog package changed) would make a client package of the "
                 f"{describe('ClientPackage', want)}, and that client still holds "
                 f"{'client packages' if len(held) > 1 else 'a client package'} of it, archived in the state: "
                 f"{names}; a new one would be a second sale of this package to this client"),
        hint=(f"If a client was written by e-mail, that e-mail may now name another client in vcita (write the "
              f"client's UID). To give {address} the archived package instead: 'reconciler state rm {address}', then "
              f"'reconciler import {address} {held[0].id}'. If the client buys this package again, add "
              "'repeat_purchase: true' to its spec."))
