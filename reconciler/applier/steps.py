"""How each kind of operation is carried out: one step per operation type (Alembic's ``toimpl``).

A step binds the operation's references from the state written so far, has the client send it
(``VcitaClient.execute``: the very calls the plan described), records the answer in the state
(settling the create's pending record in the same write); it returns what happened in a few
words.  Steps decide nothing: what
to do and why was settled by the planner and is in the operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch
from typing import TYPE_CHECKING, Any

from reconciler.model import views as nz
from reconciler.plan.operations import (
    AdoptCatalogPackage,
    ArchiveResource,
    CreateCatalogPackage,
    CreateClientPackage,
    MoveResource,
    Operation,
    ReadoptArchived,
    ReorderCatalogPackage,
    ResolvePendingCreate,
    SetBookingCredits,
    UpdateCatalogPackage,
    UpdateClientPackage,
)

if TYPE_CHECKING:
    from reconciler.applier.run import Applier


@dataclass(frozen=True)
class Step:
    """What one operation did: the object's id, and a verb for the outcome line.

    ``aside``: said in brackets after the main verbs (credits set after a create); ``quiet``: said
    only when the address had nothing else to do (the resolution of a pending create)."""

    remote_id: str | None
    verb: str | None
    door: str = ""
    aside: bool = False
    quiet: bool = False


@singledispatch
async def run(op: Operation, a: Applier) -> Step:
    """Carry out ``op``; raises RemoteError / OutcomeUnknownError / Unbound when it fails."""
    raise TypeError(f"no step for {type(op).__name__}")


@run.register(CreateCatalogPackage)
async def _(op: CreateCatalogPackage, a: Applier) -> Step:
    intent, pkg = await a.pending_create(op, {"name": op.spec.name})
    door = a.door()
    await a.record_catalog(op.address, pkg, settles=intent)
    return Step(pkg.id, f"created {pkg.id}", door)


@run.register(UpdateCatalogPackage)
async def _(op: UpdateCatalogPackage, a: Applier) -> Step:
    bound = op.bound(a.commit.state.resources)
    pkg = await a.api.execute(bound)
    door = a.door()
    await a.record_catalog(op.address, pkg)  # type: ignore[arg-type]
    verb = "deactivated" if bound.fields == ("active",) and bound.spec.active is False else "updated"
    return Step(pkg.id, f"{verb} {pkg.id}", door)


@run.register(ReorderCatalogPackage)
async def _(op: ReorderCatalogPackage, a: Applier) -> Step:
    bound = op.bound(a.commit.state.resources)
    await a.api.send(bound)
    door = a.door()
    # The reorder answers {} (no package): the position sent is recorded as applied.
    await a.record_order(op.address, bound.order)
    return Step(str(bound.remote_id), f"moved to position {bound.order}", door, aside=True)


@run.register(AdoptCatalogPackage)
async def _(op: AdoptCatalogPackage, a: Applier) -> Step:
    if op.fields:
        pkg = await a.api.execute(op)
        verb = f"imported and updated {op.remote_id}"
    else:
        pkg = await a.api.get_catalog_package(op.remote_id)
        verb = f"imported {op.remote_id}"
    door = a.door()
    await a.record_catalog(op.address, pkg)  # type: ignore[arg-type]
    return Step(op.remote_id, verb, door)


@run.register(CreateClientPackage)
async def _(op: CreateClientPackage, a: Applier) -> Step:
    bound = op.bound(a.commit.state.resources)
    details: dict[str, Any] = {"client_id": bound.client_id, "package_id": bound.package_id}
    # What was sent, so that a lost answer's package can be recognised in vcita (planner/memory.py).
    for key in ("valid_from", "valid_until"):
        if getattr(bound, key) is not None:
            details[key] = getattr(bound, key).isoformat()
    if bound.price is not None:
        details["price"] = nz.money(bound.price)
    if op.replaces:
        details["replaces"] = op.replaces
    intent, cp = await a.pending_create(bound, details)
    door = a.door()
    if op.replaces:
        await a.record_replacement(op.address, op.replaces, cp, settles=intent)
    else:
        await a.record_client(op.address, cp, settles=intent)
    verb = f"replaced {op.replaces} by {cp.id}" if op.replaces else f"created {cp.id}"
    return Step(cp.id, verb, door)


@run.register(UpdateClientPackage)
async def _(op: UpdateClientPackage, a: Applier) -> Step:
    bound = op.bound(a.commit.state.resources)
    cp = await a.api.execute(bound)
    door = a.door()
    await a.record_client(op.address, cp)  # type: ignore[arg-type]
    return Step(cp.id, f"updated {cp.id}", door)


@run.register(SetBookingCredits)
async def _(op: SetBookingCredits, a: Applier) -> Step:
    bound = op.bound(a.commit.state.resources)
    cp = await a.api.execute(bound)
    door = a.door()
    await a.record_client(op.address, cp)  # type: ignore[arg-type]
    return Step(cp.id, "booking credits set", door, aside=True)


@run.register(ArchiveResource)
async def _(op: ArchiveResource, a: Applier) -> Step:
    reason = op.reason or "left the manifests"
    await a.commit.record(lambda st: st.archive(op.address, reason))
    return Step(op.remote_id, "archived (still exists in vcita; no longer tracked by this address)")


@run.register(MoveResource)
async def _(op: MoveResource, a: Applier) -> Step:
    await a.commit.record(lambda st: st.move(op.from_address, op.address))
    return Step(op.remote_id, f"moved from {op.from_address} (same object, no request)")


@run.register(ReadoptArchived)
async def _(op: ReadoptArchived, a: Applier) -> Step:
    await a.commit.record(lambda st: st.readopt(op.remote_id, op.address))
    return Step(op.remote_id, f"re-adopted archived {op.remote_id} (no request)")


@run.register(ResolvePendingCreate)
async def _(op: ResolvePendingCreate, a: Applier) -> Step:
    if op.resolution == "created":
        await a.commit.settle_intent(op.intent_id)
        a.note(op.address, f"an interrupted run had created {op.remote_id} and recorded it; its pending "
                           "create is closed")
        return Step(op.remote_id, f"closed the pending create of {op.remote_id}", quiet=True)
    if op.resolution == "adopt" and op.kind == "ClientPackage":
        assert op.remote_id is not None
        cp = await a.api.get_client_package(op.remote_id)
        door = a.door()
        intent = a.commit.state.pending.get(op.intent_id)
        replaced = intent.details.get("replaces") if intent is not None else None
        if isinstance(replaced, str):  # an interrupted replacement: the package it replaced is archived
            await a.record_replacement(op.address, replaced, cp, settles=op.intent_id)
        else:
            await a.record_client(op.address, cp, settles=op.intent_id)
        a.note(op.address, f"an interrupted run had created {cp.id}; found through its payment request and adopted")
        return Step(cp.id, f"created {cp.id} (by an interrupted run)", door, quiet=True)
    if op.resolution == "adopt":
        assert op.remote_id is not None
        pkg = await a.api.get_catalog_package(op.remote_id)
        door = a.door()
        await a.record_catalog(op.address, pkg, settles=op.intent_id)
        a.note(op.address, f"an interrupted run had created {pkg.id}; adopted it")
        return Step(pkg.id, f"created {pkg.id} (by an interrupted run)", door, quiet=True)
    if op.resolution == "not_created":
        await a.commit.settle_intent(op.intent_id)
        a.note(op.address, "an interrupted create had not reached vcita; it will be sent again")
        return Step(None, "closed a pending create that had not reached vcita", quiet=True)
    raise AssertionError(f"{op.address}: an unknown outcome is refused before anything runs")
