"""The applier: executes a Plan exactly as planned — checks first, then each change once.

Before any write: the plan must be for this target, these manifests and this state lineage;
each change's expected state must hold (so a saved plan applies once); each object it updates
must still have the remote fingerprint the plan saw (stale objects are refused with what depends
on them, or the whole plan with ``stale="abort"``); pending creates left by an interrupted run
are resolved (a catalog package is found by name; a client package, which cannot be listed, is
reported as ``unknown outcome`` and blocked until a person imports or forgets it).

Then changes run concurrently, each after what it depends on; every create is recorded as
pending in the state before it is sent, and nothing counts as done before the state recording
it is on disk.  A failure skips only its dependents.  Library code: progress is reported through ``on_event``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from reconciler.applier.commit import Committer
from reconciler.errors import (
    OutcomeUnknownError,
    PlanFileError,
    RemoteError,
    proves_not_executed,
)
from reconciler.model.remote import RemoteCatalogPackage, RemoteClientPackage
from reconciler.plan import Change, Plan, Request, fingerprint
from reconciler.planner import normalize as nz
from reconciler.remote.client import VcitaClient
from reconciler.state import ResourceState, State, StateStore, TargetRef, utc_now

Status = Literal["done", "failed", "skipped", "unknown", "refused"]
T = TypeVar("T")


@dataclass
class Event:
    """One line of progress: an operation started or ended, or a note."""

    kind: Literal["start", "end", "note"]
    address: str = ""
    action: str = ""
    status: Status | None = None
    remote_id: str | None = None
    door: str = ""
    elapsed: float = 0.0
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", 0.0) or k == "kind"}


@dataclass
class Result:
    outcomes: dict[str, Event] = field(default_factory=dict)
    state: State | None = None
    state_writes: int = 0
    #: objects vcita acknowledged that no state write could record: (address, id)
    unrecorded: list[tuple[str, str]] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for e in self.outcomes.values() if e.status == status)

    @property
    def ok(self) -> bool:
        return all(e.status == "done" for e in self.outcomes.values())


def request_digest(body: Any) -> str:
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()[:32]


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave the objects alive before the run (manifests, plan, state) out of garbage collection
    while it runs: a full collection over them paused the event loop for 15-30 ms at 1,000
    changes, stalling every request in flight.  What the run itself allocates is collected as
    usual.  Nothing is done when the process froze its heap already (its choice stands)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class Applier:
    def __init__(self, api: VcitaClient, store: StateStore, state: State, target: TargetRef,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.api = api
        self.store = store
        self.state = state
        self.target = target
        self.emit = on_event or (lambda e: None)
        self.result = Result()
        self._done: dict[str, asyncio.Future[bool]] = {}
        # Creates past this gate have their intent opened (or about to be): the client's request
        # slots and a quarter more, so that the next intents are on disk when a slot frees up
        # (about 9% faster than no margin in bench/bench_apply.py; twice the slots was no faster),
        # and a run killed mid-way leaves at most that many creates with an unknown outcome.
        slots = max(1, int(getattr(getattr(api, "settings", None), "concurrency", 8) or 8))
        self._create_gate = asyncio.Semaphore(slots + (slots + 3) // 4)
        self._unfinished = 0  # operations started and not yet ended
        # When each create left the gate's queue: its reported time is its own work (intent,
        # request, state), not the wait for the hundreds of creates queued before it.
        self._began: dict[str, float] = {}

    # --- checks -------------------------------------------------------------------------------

    def check_plan(self, plan: Plan, manifest_digest: str | None) -> None:
        """Refuse (PlanFileError) a plan that is not for this target, manifests and state."""
        t = plan.target
        if (t.gateway_url, t.business_id) != (self.target.gateway_url, self.target.business_id):
            raise PlanFileError(
                f"the plan is for business {t.business_id} at {t.gateway_url}; this run targets business "
                f"{self.target.business_id} at {self.target.gateway_url}",
                hint="Apply it with the target it was made for, or make a new plan.")
        if manifest_digest is not None and manifest_digest != plan.manifest_digest:
            raise PlanFileError(
                "the manifests changed since this plan was made (their digest differs)",
                hint="Run 'reconciler plan --out FILE' again and review the new plan.")
        # A plan made before any state existed (serial 0) has a lineage that was never written.
        if plan.state_serial and self.state.lineage != plan.state_lineage:
            raise PlanFileError(
                f"the plan was made against another state (lineage {plan.state_lineage}; the state file has "
                f"{self.state.lineage})", hint="Make a new plan against this state file.")
        if plan.errors:
            raise PlanFileError(
                f"the plan has {len(plan.errors)} error(s) that must be fixed first: {plan.errors[0].message}")
        if plan.blocked:
            names = ", ".join(c.address for c in plan.blocked)
            raise PlanFileError(
                f"the plan replaces client packages that were not allowed to be replaced: {names}",
                hint="Re-run 'reconciler plan --allow-replace' if each replacement (a new payment request) is intended.")

    def _expectation_problem(self, c: Change) -> str | None:
        have = self.state.resources.get(c.address)
        exp = c.expected_state
        if not exp.present:
            if have is not None:
                return (f"already applied: state tracks {c.address} as {have.id}; a saved plan applies once "
                        "(make a new plan)")
            return None
        if have is None:
            return f"state no longer tracks {c.address}; make a new plan"
        if have.id != exp.id or have.fingerprint != exp.fingerprint:
            return f"state changed for {c.address} since the plan was made (already applied?); make a new plan"
        return None

    async def _remote_fingerprints(self, changes: list[Change]) -> dict[str, str | None]:
        """The current remote fingerprint of each object the changes act on (None: gone)."""
        out: dict[str, str | None] = {}
        catalog = [c for c in changes if c.kind == "CatalogPackage" and c.remote_id]
        clients = [c for c in changes if c.kind == "ClientPackage" and c.remote_id]
        if catalog:
            listed = {p.id: p for p in await self.api.list_catalog_packages(include_items=True)}
            for c in catalog:
                p = listed.get(c.remote_id or "")
                out[c.address] = fingerprint(nz.catalog_remote(p)) if p else None
        if clients:
            got = await self.api.get_client_packages([c.remote_id or "" for c in clients])
            for c in clients:
                cp = got.get(c.remote_id or "")
                out[c.address] = fingerprint(nz.client_remote(cp)) if cp else None
        return out

    # --- the run ------------------------------------------------------------------------------

    async def apply(self, plan: Plan, *, stale: Literal["skip", "abort"] = "skip") -> Result:
        """Execute ``plan``; returns the outcome of every change.  Raises only for refusals of the
        whole plan (PlanFileError) and for state/journal failures."""
        changes = [c for c in plan.changes if c.action != "noop"]
        with frozen_heap():
            return await self._apply(changes, stale)

    async def _apply(self, changes: list[Change], stale: Literal["skip", "abort"]) -> Result:
        async with Committer(self.store, self.state) as commit:
            self.commit = commit
            blocked: dict[str, str] = {}
            recovered = await self._resolve_intents(changes, blocked)
            for c in changes:
                if c.address in blocked or c.address in recovered:
                    continue
                why = self._expectation_problem(c)
                if why:
                    blocked[c.address] = why
            to_check = [c for c in changes if c.action in ("update", "replace", "import")
                        and c.address not in blocked and c.remote_fingerprint]
            current = await self._remote_fingerprints(to_check)
            stale_found = []
            for c in to_check:
                now = current.get(c.address)
                if now != c.remote_fingerprint:
                    what = "no longer exists in vcita" if now is None else "changed in vcita since the plan was made"
                    blocked[c.address] = f"stale: {c.remote_id} {what}; make a new plan"
                    stale_found.append(c.address)
            if stale_found and stale == "abort":
                raise PlanFileError(
                    f"{len(stale_found)} object(s) changed since the plan was made: {', '.join(stale_found)}; "
                    "nothing was applied (--stale=abort)", hint="Make a new plan and review it.")
            for c in changes:
                self._done[c.address] = asyncio.get_running_loop().create_future()
            for address in recovered:
                self._finish(address, True)
            todo = [c for c in changes if c.address not in recovered]
            self._unfinished = len(todo)
            commit.running = lambda: self._unfinished
            tasks = [asyncio.create_task(self._one(c, blocked.get(c.address))) for c in todo]
            await asyncio.gather(*tasks)
        self.result.state = commit.state
        self.result.state_writes = commit.writes
        self.result.unrecorded = list(commit.unrecorded)
        return self.result

    def _finish(self, address: str, ok: bool) -> None:
        fut = self._done.get(address)
        if fut is not None and not fut.done():
            fut.set_result(ok)

    def _end(self, c: Change, status: Status, message: str = "", remote_id: str | None = None,
             door: str = "", started: float | None = None) -> None:
        started = self._began.pop(c.address, started)
        ev = Event(kind="end", address=c.address, action=c.action, status=status, remote_id=remote_id,
                   door=door, elapsed=round(time.perf_counter() - started, 3) if started else 0.0, message=message)
        self.result.outcomes[c.address] = ev
        self._unfinished -= 1
        self.commit.nudge()
        self.emit(ev)
        self._finish(c.address, status == "done")

    async def _one(self, c: Change, refused: str | None) -> None:
        if refused:
            self._end(c, "refused", refused)
            return
        for dep in c.depends_on:
            fut = self._done.get(dep)
            if fut is not None and not await fut:
                self._end(c, "skipped", f"skipped: {dep} did not succeed")
                return
        self.emit(Event(kind="start", address=c.address, action=c.action))
        started = time.perf_counter()
        try:
            rid, door, verb = await self._execute(c)
        except OutcomeUnknownError as e:
            self._end(c, "unknown", f"unknown outcome: {e.message}. {self._check_by_hand(c, e.remote_id)}",
                      started=started)
        except RemoteError as e:
            detail = "; ".join(f"{fe.get('field') or ''} {fe.get('message', '')}".strip()
                               for fe in getattr(e, "field_errors", []) or [])
            self._end(c, "failed", f"failed: {e.message}" + (f" ({detail})" if detail else ""), started=started)
        else:
            self._end(c, "done", verb, remote_id=rid, door=door, started=started)

    def _check_by_hand(self, c: Change, remote_id: str | None = None) -> str:
        body = c.requests[0].body if c.requests else {}
        if c.kind == "ClientPackage" and remote_id:
            return (f"Check {remote_id} in vcita (client {body.get('client_id')}, package "
                    f"{self._resolve(body.get('package_id'))}), then run 'reconciler import {c.address} {remote_id}'. "
                    "It will not be created again until then.")
        if c.kind == "ClientPackage":
            return (f"Check in vcita whether client {body.get('client_id')} now has package "
                    f"{self._resolve(body.get('package_id'))}; then run 'reconciler import {c.address} UID' if it "
                    f"does, or 'reconciler state forget-intent {c.address}' if it does not. It will not be created "
                    "again until then.")
        return "The next apply looks it up by name before doing anything else."

    def _door(self) -> str:
        served = self.api.last_served
        return served.door if served else ""

    def _resolve(self, v: Any) -> Any:
        if isinstance(v, dict) and "$ref" in v:
            address = str(v["$ref"]).rsplit(".id", 1)[0]
            rs = self.commit.state.resources.get(address)
            if rs is None:
                raise PlanFileError(f"{address} has no id in state (it was not created)")
            return rs.id
        return v

    def _body(self, req: Request) -> dict[str, Any]:
        return {k: self._resolve(v) for k, v in (req.body or {}).items()}

    async def _execute(self, c: Change) -> tuple[str | None, str, str]:
        if c.action == "forget":
            await self.commit.put(c.address, None)
            return c.remote_id, "", "forgotten (still exists in vcita)"
        if c.kind == "CatalogPackage":
            return await self._catalog(c)
        return await self._client(c)

    async def _catalog(self, c: Change) -> tuple[str | None, str, str]:
        if c.action == "create":
            body = self._body(c.requests[0])
            intent, pkg = await self._journaled_create(c, "CatalogPackage", body, {"name": body.get("name")},
                                                       self.api.create_catalog_package)
            await self._record_catalog(c.address, pkg, settles=intent)
            return pkg.id, self._door(), f"created {pkg.id}"
        rid = c.remote_id or ""
        if c.action == "import" and not c.requests:
            pkg = await self.api.get_catalog_package(rid)
            await self._record_catalog(c.address, pkg)
            return rid, self._door(), f"imported {rid}"
        body = c.requests[0].body or {}
        pkg = await self.api.update_catalog_package(rid, body.get("package", body))
        await self._record_catalog(c.address, pkg)
        verb = "imported and updated" if c.action == "import" else "updated"
        return rid, self._door(), f"{verb} {rid}"

    async def _journaled_create(self, c: Change, kind: str, body: dict[str, Any], details: dict[str, Any],
                                send: Callable[[dict[str, Any]], Awaitable[T]]) -> tuple[str, T]:
        """Open the intent, then send the create, inside the create gate: an intent is opened
        only shortly before its request goes out."""
        async with self._create_gate:
            self._began[c.address] = time.perf_counter()
            intent = await self.commit.open_intent(c.address, kind, request_digest(body), details)
            try:
                return intent, await send(body)
            except RemoteError as exc:
                if proves_not_executed(exc):
                    self.commit.close_intent(intent, "failed")
                    raise
                if isinstance(exc, OutcomeUnknownError):
                    raise
                # Not proof that nothing was created (e.g. an answer of unexpected shape): the
                # intent stays open and the create is never repeated on its own.
                raise OutcomeUnknownError(f"{exc.message}; it may have been executed", request=exc.request,
                                          status=exc.status) from exc

    async def _record_catalog(self, address: str, pkg: RemoteCatalogPackage, settles: str | None = None) -> None:
        view = nz.catalog_remote(pkg)
        rs = ResourceState(kind="CatalogPackage", id=pkg.id, fingerprint=fingerprint(view), applied=view,
                           updated_at=utc_now())
        await self.commit.put(address, rs, settles=settles)

    async def _record_client(self, address: str, cp: RemoteClientPackage, settles: str | None = None) -> None:
        view = nz.client_remote(cp)
        rs = ResourceState(kind="ClientPackage", id=cp.id, fingerprint=fingerprint(view), applied=view,
                           booking_credit_ids=nz.client_credit_ids(cp), updated_at=utc_now())
        await self.commit.put(address, rs, settles=settles)

    async def _client(self, c: Change) -> tuple[str | None, str, str]:
        if c.action in ("create", "replace"):
            body = self._body(c.requests[0])
            details = {"client_id": body.get("client_id"), "package_id": body.get("package_id")}
            if c.action == "replace":
                details["replaces"] = c.remote_id
            intent, cp = await self._journaled_create(c, "ClientPackage", body, details,
                                                      self.api.create_client_package)
            door = self._door()
            await self._record_client(c.address, cp, settles=intent)
            verb = f"created {cp.id}" if c.action == "create" else f"replaced {c.remote_id} by {cp.id}"
            if len(c.requests) > 1:
                credits = {k: v for k, v in nz.client_credit_ids(cp).items()}
                wanted = c.requests[1].body["client_package"]["booking_credits"]  # type: ignore[index]
                updates = [(credits[w["$credit"]], w["total_bookings"]) for w in wanted if w["$credit"] in credits]
                missing = [w["$credit"] for w in wanted if w["$credit"] not in credits]
                if updates:
                    cp = await self.api.update_client_package(cp.id, credits=updates)
                    await self._record_client(c.address, cp)
                    verb += " (booking credits set)"
                if missing:
                    raise RemoteError(f"created {cp.id}, but it has no booking credit for services {missing}")
            return cp.id, door, verb
        rid = c.remote_id or ""
        body = (c.requests[0].body or {}).get("client_package", {})
        credits = [(b["id"], b["total_bookings"]) for b in body.get("booking_credits", [])]
        cp = await self.api.update_client_package(rid, valid_until=body.get("valid_until"), credits=credits or None)
        await self._record_client(c.address, cp)
        return rid, self._door(), f"updated {rid}"

    # --- interrupted runs ---------------------------------------------------------------------

    async def _resolve_intents(self, changes: list[Change], blocked: dict[str, str]) -> set[str]:
        """Settle creates an earlier run left pending; returns addresses found already created."""
        recovered: set[str] = set()
        pending = list(self.commit.state.pending.values())
        if not pending:
            return recovered
        by_address = {c.address: c for c in changes}
        listed: dict[str, list[RemoteCatalogPackage]] | None = None
        for it in pending:
            tracked = self.commit.state.resources.get(it.address)
            if tracked is not None and it.kind == "CatalogPackage":
                self.commit.close_intent(it.id, "created", tracked.id)
                continue
            if it.kind == "CatalogPackage":
                if listed is None:
                    listed = {}
                    for p in await self.api.list_catalog_packages(include_items=True):
                        listed.setdefault(p.name, []).append(p)
                owned = {rs.id for rs in self.commit.state.resources.values()}
                found = [p for p in listed.get(str(it.details.get("name")), []) if p.id not in owned]
                if len(found) == 1:
                    await self._record_catalog(it.address, found[0], settles=it.id)
                    self.emit(Event(kind="note", address=it.address, message=(
                        f"an interrupted run had created {found[0].id}; adopted it")))
                    c = by_address.get(it.address)
                    if c is not None and c.action == "create":
                        recovered.add(it.address)
                        self.result.outcomes[it.address] = Event(
                            kind="end", address=it.address, action="create", status="done",
                            remote_id=found[0].id, message=f"created {found[0].id} (by an interrupted run)")
                elif not found:
                    self.commit.close_intent(it.id, "failed")
                    self.emit(Event(kind="note", address=it.address,
                                    message="an interrupted create had not reached vcita; it will be sent again"))
                else:
                    blocked[it.address] = (f"unknown outcome: {len(found)} untracked packages named "
                                           f"{it.details.get('name')!r}; adopt one with 'reconciler import'")
                continue
            blocked[it.address] = (
                f"unknown outcome of an earlier create (intent {it.id}, {it.opened_at}): client "
                f"{it.details.get('client_id')}, package {it.details.get('package_id')}. Check vcita, then run "
                f"'reconciler import {it.address} UID' or 'reconciler state forget-intent {it.address}'")
        return recovered
