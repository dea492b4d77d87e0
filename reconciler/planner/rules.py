"""The business rules a reviewer should see before anything runs, as plan problems.

Pure functions of normalised views (``reconciler.model.views``) and the refreshed remote (``actual.py``):
services a catalog package names that the business lacks; a deactivated package being assigned;
a client package's validity in the past or ending before it starts; booking credits the package
has no item for, or set below what was already used.  vcita would refuse each of these; the plan
says so first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.model.manifest import CatalogPackage
from reconciler.plan.document import Problem
from reconciler.planner.actual import RemoteObject


def service_problems(address: str, doc: CatalogPackage, known: frozenset[str] | None) -> list[Problem]:
    """Services of the package's items that the business does not have (``known=None``: unchecked)."""
    if known is None:
        return []
    return [
        Problem(address=address, severity="error",
                message=f"spec.items[{i}].services: no service {s!r} in this business",
                hint="Check the UID against the business's services in vcita (services are not managed here).")
        for i, item in enumerate(doc.spec.items) for s in item.services if s not in known
    ]


def package_problems(address: str, pid: str, catalog: Mapping[str, RemoteObject]) -> list[Problem]:
    """A warning when the catalog package a client package names is deactivated."""
    obj = catalog.get(pid)
    if obj is None or obj.active:
        return []
    return [Problem(address=address, severity="warning",
                    message=f"spec.package: catalog package {pid} is deactivated; vcita refuses new assignments of it")]


def client_problems(address: str, want: dict[str, Any], obj: RemoteObject | None, today: str, *,
                    creating: bool, refreshed: bool) -> list[Problem]:
    """The rules of a client package to create (``creating``) or to update in place (``obj``)."""
    out = []
    vu = want.get("valid_until")
    before_vu = obj.view.get("valid_until") if obj else None
    if vu is not None and vu < today and (creating or vu != before_vu):
        out.append(Problem(address=address, severity="error",
                           message=f"spec.valid_until: {vu} is in the past (today is {today}); vcita refuses it"))
    vf = want.get("valid_from") or (obj.view.get("valid_from") if obj else None)
    if vu is not None and vf is not None and vu < vf:
        out.append(Problem(address=address, severity="error",
                           message=f"spec.valid_until: {vu} is before valid_from ({vf})"))
    if obj is None or creating:
        return out
    for key, total in (want.get("booking_credits") or {}).items():
        if key not in obj.credit_ids and refreshed:
            out.append(Problem(address=address, severity="error",
                               message=f"spec.booking_credits: the client package has no credit for services [{key}]"))
            continue
        used = obj.usage.get(key)
        if used is not None and total < used:
            out.append(Problem(
                address=address, severity="error",
                message=f"spec.booking_credits[{key}].total_bookings: {total} is below the {used} "
                        "credits already used; vcita refuses it",
                hint=f"Set it to {used} or more ({used} exhausts the credit)."))
    return out
