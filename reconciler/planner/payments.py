"""Money: the payment requests a plan would open, summed per currency, and their limit.

Every client package created opens a payment request for its client.  A plan states how many,
for which clients and catalog packages, and the total per currency (the amount as sent: the
price override, else the catalog package's price; vcita may add taxes).  A limit is part of the
reviewed plan: a plan over it is refused (an error problem), so apply never runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from reconciler.model import views as nz
from reconciler.model.manifest_set import ManifestSet
from reconciler.plan.document import PaymentRequest, PaymentRequests, Problem
from reconciler.plan.operations import CreateClientPackage, IdOf, Operation
from reconciler.planner.actual import Actual


def summarise(ops: Sequence[Operation], desired: ManifestSet, actual: Actual, limit: int | None,
              catalog_addresses: Mapping[str, str]) -> PaymentRequests:
    """The payment requests the creates among ``ops`` would open; ``catalog_addresses`` maps the
    remote id of each catalog package in the manifests to its address."""
    items = []
    totals: dict[str, Decimal] = {}
    for op in ops:
        if not isinstance(op, CreateClientPackage) or op.blocked:
            continue
        package, price, currency = _catalog_terms(op, desired, actual, catalog_addresses)
        amount = op.price if op.price is not None else price
        items.append(PaymentRequest(address=op.address, client_id=op.client_id, package=package,
                                    amount=nz.money(amount) if amount is not None else None, currency=currency,
                                    replaces=op.replaces))
        if amount is not None and currency:
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(amount)
    return PaymentRequests(count=len(items), items=tuple(items),
                           totals={c: nz.money(v) or "0" for c, v in sorted(totals.items())}, limit=limit)


def limit_problems(money: PaymentRequests) -> list[Problem]:
    if money.limit is None or money.count <= money.limit:
        return []
    return [Problem(
        address=money.items[0].address, severity="error",
        message=f"this plan would open {money.count} payment requests, more than the limit of {money.limit}",
        hint=f"Review them, then plan again with --max-payment-requests {money.count} (or split the change).",
    )]


def _catalog_terms(op: CreateClientPackage, desired: ManifestSet, actual: Actual,
                   catalog_addresses: Mapping[str, str]) -> tuple[str, Any, str | None]:
    """(how to name the catalog package, its price, its currency)."""
    address = op.package_id.id_of if isinstance(op.package_id, IdOf) else catalog_addresses.get(op.package_id)
    if address is not None:
        name = address.split(".", 1)[1]
        doc = desired.catalog_packages.get(name)
        if doc is not None:
            return name, doc.spec.price, doc.spec.currency.upper()
    rid = str(op.package_id)
    obj = actual.catalog_packages.get(rid)
    if obj is None:
        return rid, None, None
    return f"{obj.view.get('name')} ({rid})", obj.view.get("price"), obj.view.get("currency")
