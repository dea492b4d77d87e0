"""Second sales between the new manifest objects of one plan (the sibling half of the rule).

``identity.py`` refuses a new client package whose identity matches a record still tracked at
another address in the manifests: a second sale must say ``repeat_purchase: true``.  That compares
a new object with *records* only; this module compares the objects of one plan with *each other*,
so that copying ``alice-lessons.yaml`` to ``alice-lessons-2.yaml`` does not bill alice twice on a
first apply and refuse the copy on a resumed one: the same manifests get the same verdict,
whatever the state has recorded so far.

**New** here means a client-package object with no record of its own and none it takes over (a
create, or one refused because vcita already holds its identity): a renamed or re-adopted object
is not new.  Two objects are **compatible** when they name the same client and the same catalog
package (its id, or its manifest address for one this plan creates) and every identity field
both declare (``valid_from``, ``price``) is equal: a field one leaves out matches any value, as it
does against a record.

The sales a plan cannot refuse come first (*kept*), each only without ``repeat_purchase``: an
object that takes a record over in this plan (its sale is the record's, whose identity is then
compared), one whose client package is replaced (``replace required``: a new client package of
the identity it declares), one whose earlier create's outcome is unknown (it may exist), one
tracked at another address (with the identity its manifest declares, so that the verdict does
not change once the sale is created and its record holds every value), and a record whose
manifest leaves in this plan (the sale of its client and catalog package at any price or date: a
rename with a new price is a replacement or a further sale, never a silent second one).
A replacement whose client or catalog package changes (an e-mail that now names another client in
vcita, a client written anew) is a new object too, not a kept sale: it sells the package to a
client who may already hold one.  A record whose manifest now names another client or catalog
package counts as the sale of the client and package it holds (its package stays in vcita,
archived by its replacement), so two members whose e-mails were swapped are both refused.
Then, in sorted address order, each new object without ``repeat_purchase: true`` that is
compatible with a kept sale or with an earlier new one already kept is refused, naming them (the
first is the sale; a copy needs ``repeat_purchase: true``, or a ``valid_from`` / price that tells
it apart).  Objects that say ``repeat_purchase: true`` are further sales, as declared, and never
refused here.  Compatibility is not transitive (no ``valid_from`` is compatible with two different
ones): an object is refused only when it is compatible with a kept sale, so the kept sales never
match one another, and once one is created (its record holds the values it declared) it matches
none of the others either.

A plan over some paths (or ``--only``) compares the objects it plans: a copy outside them is not
seen, but once either copy is created, the other meets a record (outside the paths, or tracked at
another address) and is refused then; no order of partial plans creates both.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.plan.document import Problem
from reconciler.planner import identity as ident


@dataclass(frozen=True)
class NewObject:
    """A new client-package object of the plan, as the sibling rule reads it."""

    address: str
    #: client id and catalog package (remote id, or ``catalog_package.NAME`` when created by this plan)
    key: tuple[str, str]
    #: the declared identity (``identity.desired_client``: valid_from / price only when declared)
    want: dict[str, Any]
    repeat: bool = False
    #: how a message names it beside its address
    note: str = ""  # "": new in this plan
    #: a kept sale whose manifest leaves in this plan (a new object beside it may be it, renamed)
    renamed: bool = False
    #: a kept sale tracked outside the paths (or ``--only``) of a partial plan: its manifest unread
    outside: bool = False
    #: a new object that replaces this tracked client package of another client or catalog package
    replaces: str = ""
    #: a kept sale whose manifest now names another client or catalog package (its package stays in vcita)
    reassigned: bool = False


#: The identity fields a client-package manifest may leave out (``identity.CLIENT_FIELDS`` less the key).
OPTIONAL = ("valid_from", "price")
#: A field left out (it matches any value).
_OUT: Any = object()
#: The kept sales a refusal names (the message says how many more).
NAMED = 3


def compatible(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Every identity field both declare is equal (the client and catalog package included)."""
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def _value(want: dict[str, Any], name: str) -> Any:
    v = want.get(name, _OUT)
    return v if v is _OUT or isinstance(v, str | int | float | bool | None) else repr(v)


class _Sales:
    """The sales kept for one client and catalog package, indexed by the optional fields they
    declare, so that finding the ones compatible with an object costs the same however many there
    are (10,000 copies of one identity, each with its own valid_from, were quadratic: ~1 min)."""

    def __init__(self) -> None:
        self.all: list[NewObject] = []
        self.by_both: dict[tuple[Any, Any], list[NewObject]] = {}
        self.by_from: dict[Any, list[NewObject]] = {}
        self.by_price: dict[Any, list[NewObject]] = {}

    def add(self, obj: NewObject) -> None:
        v, p = (_value(obj.want, f) for f in OPTIONAL)
        self.all.append(obj)
        self.by_both.setdefault((v, p), []).append(obj)
        self.by_from.setdefault(v, []).append(obj)
        self.by_price.setdefault(p, []).append(obj)

    def compatible(self, obj: NewObject) -> list[list[NewObject]]:
        """The kept sales compatible with ``obj``, as disjoint lists (empty: none)."""
        v, p = (_value(obj.want, f) for f in OPTIONAL)
        if v is not _OUT and p is not _OUT:
            parts = [self.by_both.get(k, []) for k in ((v, p), (v, _OUT), (_OUT, p), (_OUT, _OUT))]
        elif v is not _OUT:
            parts = [self.by_from.get(v, []), self.by_from.get(_OUT, [])]
        elif p is not _OUT:
            parts = [self.by_price.get(p, []), self.by_price.get(_OUT, [])]
        else:
            parts = [self.all]
        return [part for part in parts if part]


def refusals(new: Iterable[NewObject], kept: Iterable[NewObject],
             where: Callable[[str], str | None]) -> list[Problem]:
    """The second sales among ``new``: one error Problem per object refused (``where``: an
    address's file and line, when known).  ``kept`` are sales this plan cannot refuse, checked
    first: objects without ``repeat_purchase`` that take a record over in this plan (a rename, a
    re-adoption: ``want`` is then the record's identity) or are replaced by a new client package,
    and creates of unknown outcome."""
    groups: dict[tuple[str, str], list[NewObject]] = {}
    for obj in new:
        if not obj.repeat:
            groups.setdefault(obj.key, []).append(obj)
    held: dict[tuple[str, str], list[NewObject]] = {}
    for obj in kept:
        held.setdefault(obj.key, []).append(obj)
    problems = []
    for key in sorted(groups):
        sales = _Sales()
        for obj in held.get(key, ()):
            sales.add(obj)
        for obj in sorted(groups[key], key=lambda o: o.address):
            found = sales.compatible(obj)
            if not found:
                sales.add(obj)
                continue
            problems.append(_problem(obj, found, where))
    return problems


def tracked_sales(new: Iterable[NewObject], kept: Iterable[NewObject], state: Mapping[str, Any],
                  docs: Mapping[str, Any], *, subjects: Mapping[str, tuple[str, str]], leaving: Container[str],
                  moved_from: Container[str], repeats: Container[str], partial: bool = False) -> list[NewObject]:
    """The sales the state holds for the clients and catalog packages of the ``new`` objects, as
    kept sales: a record tracked at another address (``state``: address -> record) whose manifest
    (``docs``: address -> client-package object, resolved to ``subjects``) does not say
    ``repeat_purchase``, with the identity *its
    manifest declares* (``alice-piano`` without a price is the sale of every price, so a new
    ``price: 500`` copy is refused as it was on the first plan that created both, not only while
    the record's own values equal the copy's); and a record whose manifest left in this plan
    (``leaving``, not taken over by a rename), as the sale of its client and catalog package
    whatever the new object declares; in a ``partial`` plan, a record tracked outside its paths
    (whose manifest it does not read) the same way, so that once either copy is created, no later
    plan, partial or not, creates the other.  Addresses already ``kept`` are not repeated."""
    keys = {obj.key for obj in new if not obj.repeat}
    if not keys:
        return []
    seen = {obj.address for obj in kept}
    replacing = {obj.address for obj in new if obj.replaces}
    out = []
    for address, record in state.items():
        if record.kind != "ClientPackage" or address in seen:
            continue
        doc = docs.get(address)
        if doc is not None:
            subject = subjects.get(address)
            held = (str(record.applied.get("client_id")), str(record.applied.get("package_id")))
            if subject is not None and subject != held and held in keys:
                # its manifest now names another client or catalog package: the package it tracks
                # stays in vcita (archived by its replacement), the sale of its own client and package
                out.append(NewObject(address, held, {"client_id": held[0], "package_id": held[1]},
                                     note=f"tracked as {record.id}, whose manifest now names another client or "
                                          f"catalog package ({record.id} stays in vcita)", reassigned=True))
            elif (subject is not None and subject in keys and address not in repeats
                  and address not in replacing):
                out.append(NewObject(address, subject, ident.desired_client(doc.spec, *subject),
                                     note=f"tracked as {record.id}"))
        elif partial or (address in leaving and address not in moved_from):
            subject = (str(record.applied.get("client_id")), str(record.applied.get("package_id")))
            if subject not in keys:
                continue
            note = (f"tracked as {record.id} outside the paths of this plan" if partial else
                    f"whose manifest leaves in this plan ({record.id} is archived and stays in vcita)")
            out.append(NewObject(address, subject, {"client_id": subject[0], "package_id": subject[1]},
                                 note=note, renamed=not partial, outside=partial))
    return out


def _at(address: str, where: Callable[[str], str | None]) -> str:
    loc = where(address)
    return f"{address} ({loc})" if loc else address


def _problem(obj: NewObject, found: list[list[NewObject]], where: Callable[[str], str | None]) -> Problem:
    what = ident.describe("ClientPackage", obj.want)
    # kept sales first, then new ones, in address order; at most NAMED of them
    first = sorted((s for part in found for s in part[:NAMED]), key=lambda s: (not s.note, s.address))[:NAMED]
    more = sum(len(part) for part in found) - len(first)
    named = [f"{_at(s.address, where)}, {s.note}" for s in first if s.note]
    new = [_at(s.address, where) for s in first if not s.note]
    if new:
        named.append(", ".join(new) + (f" (and {more} more)" if more > 0 else "") + ", also new in this plan")
    elif more > 0:
        named[-1] += f" (and {more} more)"
    names = "; ".join(named)
    loc = where(obj.address)
    gone = [s.address for s in first if s.renamed]
    repeat = ("If a second payment request is intended (a renewal, a repeat purchase), add 'repeat_purchase: "
              f"true' to the copy's spec ({obj.address})")
    replacing = (f"replacing {obj.replaces} (its client or catalog package changed) would make a client package of "
                 if obj.replaces else "")
    swapped = [s.address for s in first if s.reassigned]
    if obj.replaces and swapped and len(swapped) == len(first):
        hint = (f"If {swapped[0]} and {obj.address} swapped clients (an e-mail moved from one client to the other "
                f"in vcita), swap their records instead, nothing sent: 'reconciler state mv {obj.address} "
                f"client_package.swap-tmp', 'reconciler state mv {swapped[0]} {obj.address}', 'reconciler state "
                f"mv client_package.swap-tmp {swapped[0]}'. Otherwise write each object's client by UID. {repeat}.")
    elif obj.replaces:
        hint = (f"{obj.address} tracks {obj.replaces}, sold to another client or of another catalog package: if a "
                "client was written by e-mail, that e-mail may now name another client in vcita (write the "
                f"client's UID). {repeat}; otherwise remove the copy.")
    elif all(s.outside for s in first):  # only records whose manifests this plan did not read
        hint = (f"Plan all the manifests: {obj.address} is then compared with what the manifest of "
                f"{first[0].address} declares (a valid_from or price there may tell them apart). {repeat}.")
    elif gone and len(gone) == len(first):  # only a record whose manifest leaves: nothing to tell apart
        hint = (f"If it is {gone[0]} renamed with a new price or valid_from (a replacement: a new payment "
                f"request, the old package stays in vcita), run 'reconciler state mv {gone[0]} {obj.address}', "
                f"then plan with --allow-replace. {repeat}.")
    else:
        hint = f"{repeat}; otherwise declare valid_from (or price) to tell them apart, or remove the copy."
    return Problem(
        address=obj.address, severity="error",
        message=(f"{'declared at ' + loc + ': ' if loc else ''}{replacing}the same {what} as {names}: a second sale "
                 "of this package to this client"),
        hint=hint)
