"""Which changes of a plan share a client or a catalog package, for a rendering grouped under a
heading per client and per catalog package.

Every client package the plan acts on has a *subject* (``Plan.subjects``): its client and its
catalog package (an id, or the address of a catalog package this plan creates).  A catalog
package's own changes belong to it.  Each change joins at most one group:

* the larger of its catalog package's and its client's groups (counted over the whole plan), a
  tie going to the catalog package (a ClientPackageSet assigns one package to many clients);
* a group left with fewer than :data:`MIN_MEMBERS` changes is dissolved: its changes are listed
  with the others, ungrouped.

Groups come in the order of their first change in the plan, their changes in plan order, so the
rendering stays a reordering of the plan, never a different selection of it.  Whether the
grouped layout is used at all is the renderer's choice (it is used when it is shorter).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from reconciler.model import address as addresses
from reconciler.plan.document import Plan
from reconciler.plan.operations import CreateCatalogPackage, Operation

GroupKind = Literal["client", "package"]
#: The fewest changes a group holds: one change under a heading of its own is longer, not clearer.
MIN_MEMBERS = 2


@dataclass(frozen=True)
class Group:
    """Changes (indices into ``plan.operations``) sharing one client or one catalog package."""

    kind: GroupKind
    key: str  # the client id, or the catalog package's id (or address, when this plan creates it)
    members: tuple[int, ...]


def subject(op: Operation, subjects: Mapping[str, tuple[str, str]]) -> tuple[str | None, str | None]:
    """(client, catalog package) of one operation; None where it has none."""
    if op.address in subjects:
        cid, pkey = subjects[op.address]
        return cid, pkey
    if op.kind == "CatalogPackage":
        rid = getattr(op, "remote_id", None)
        if isinstance(rid, str) and not isinstance(op, CreateCatalogPackage):
            return None, rid
        return None, op.address  # created by this plan: its client packages refer to it by address
    return None, None


def group_operations(plan: Plan) -> tuple[list[Group], list[int]]:
    """The groups of ``plan``'s operations, and the indices of those left ungrouped (in plan order)."""
    subjects = [subject(op, plan.subjects) for op in plan.operations]
    clients = Counter(c for c, _ in subjects if c is not None)
    packages = Counter(p for _, p in subjects if p is not None)
    chosen: list[tuple[GroupKind, str] | None] = []
    for cid, pkey in subjects:
        by_package = packages[pkey] if pkey is not None else 0
        by_client = clients[cid] if cid is not None else 0
        if max(by_package, by_client) < MIN_MEMBERS:
            chosen.append(None)
        elif by_package >= by_client:
            chosen.append(("package", str(pkey)))
        else:
            chosen.append(("client", str(cid)))
    members: dict[tuple[GroupKind, str], list[int]] = {}
    for i, key in enumerate(chosen):
        if key is not None:
            members.setdefault(key, []).append(i)
    groups = [Group(kind, key, tuple(idx)) for (kind, key), idx in members.items() if len(idx) >= MIN_MEMBERS]
    grouped = {i for g in groups for i in g.members}
    groups.sort(key=lambda g: g.members[0])
    return groups, [i for i in range(len(plan.operations)) if i not in grouped]


def group_name(plan: Plan, g: Group) -> str | None:
    """What a reviewer calls the group's client or catalog package (None: only its id is known)."""
    if g.key in plan.names:
        return plan.names[g.key]
    if g.kind == "package" and addresses.is_catalog(g.key):
        # A catalog package this plan creates: the name its manifest gives (its create is in
        # the group, keyed by its address).
        for i in g.members:
            op = plan.operations[i]
            if isinstance(op, CreateCatalogPackage) and op.address == g.key:
                return op.spec.name
    return None
