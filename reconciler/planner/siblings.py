"""Second sales between the new manifest objects of one plan (the sibling half of the rule).

``identity.py`` refuses a new client package whose identity matches a record still tracked at
another address in the manifests: a second sale must say ``repeat_purchase: true``.  That compares
a new object with *records* only; this module compares the new objects of one plan with *each
other*, so that copying ``alice-lessons.yaml`` to ``alice-lessons-2.yaml`` does not bill alice
twice on the first apply and refuse the copy on a resumed one: the same manifests get the same
verdict, whatever the state has recorded so far.

**New** here means a client-package object with no record of its own and none it takes over (a
create; an object whose pending create's outcome is unknown; or one refused because vcita already
holds its identity): a renamed or re-adopted object is not new.  Two new objects are **compatible**
when they name the same client and the same catalog package (its id, or its manifest address for
one created by this plan) and every identity field both declare (``valid_from``, ``price``) is
equal: a field one leaves out matches any value, as it does against a record.

In sorted address order, each new object without ``repeat_purchase: true`` compatible with an
earlier one already kept as *the sale* is refused with a located error naming it (the first is the
sale; a copy needs ``repeat_purchase: true``, or a ``valid_from`` / price that tells it apart).
Objects that say ``repeat_purchase: true`` are further sales, as declared, and never refused here.
Compatibility is not transitive (no ``valid_from`` is compatible with two different ones): an
object is refused only when it is compatible with a kept sale, so the sales kept never match one
another, and once one is created (its record holds the values it declared) it matches none of the
others either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    note: str = "also new in this plan"


def compatible(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Every identity field both declare is equal (the client and catalog package included)."""
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def refusals(new: Iterable[NewObject], kept: Iterable[NewObject],
             where: Callable[[str], str | None]) -> list[Problem]:
    """The second sales among ``new``: one error Problem per object refused (``where``: an
    address's file and line, when known).  ``kept`` are sales this plan cannot refuse, checked
    first: objects without ``repeat_purchase`` that take a record over in this plan (a rename, a
    re-adoption: ``want`` is then the record's identity), and creates of unknown outcome."""
    groups: dict[tuple[str, str], list[NewObject]] = {}
    for obj in new:
        if not obj.repeat:
            groups.setdefault(obj.key, []).append(obj)
    held: dict[tuple[str, str], list[NewObject]] = {}
    for obj in kept:
        held.setdefault(obj.key, []).append(obj)
    problems = []
    for key in sorted(groups):
        sales = list(held.get(key, ()))
        for obj in sorted(groups[key], key=lambda o: o.address):
            first = [s for s in sales if compatible(s.want, obj.want)]
            if not first:
                sales.append(obj)
                continue
            problems.append(_problem(obj, first, where))
    return problems


def _at(address: str, where: Callable[[str], str | None]) -> str:
    loc = where(address)
    return f"{address} ({loc})" if loc else address


def _problem(obj: NewObject, sales: list[NewObject], where: Callable[[str], str | None]) -> Problem:
    what = ident.describe("ClientPackage", obj.want)
    names = "; ".join(f"{_at(s.address, where)}, {s.note}" for s in sales)
    loc = where(obj.address)
    return Problem(
        address=obj.address, severity="error",
        message=(f"{'declared at ' + loc + ': ' if loc else ''}the same {what} as {names}: a second sale of this "
                 "package to this client"),
        hint=(f"If a second payment request is intended (a renewal, a repeat purchase), add 'repeat_purchase: "
              f"true' to the copy's spec ({obj.address}); otherwise declare valid_from (or price) to tell them "
              "apart, or remove the copy."))
