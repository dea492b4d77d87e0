"""The applier: executes a Plan exactly as planned — checks first, then each operation once.

Before any write: the plan must be for this target, these manifests and this state lineage;
each address's first operation must find the state it expects (so a saved plan applies once);
the creates pending from an interrupted run must be the ones the plan resolves; each operation
must still be described by the requests the plan shows; each object acted on must still have the
remote fingerprint the plan saw (stale objects are refused with what depends on them, or the
whole plan with ``stale="abort"``).

Then the operations of each address run in order, as one unit (``Plan.chains``), the addresses
concurrently, each after what it depends on; ``steps.py`` carries out each kind.  Every create
is recorded as pending in the state before it is sent, and nothing counts as done before the
state recording it is on disk.  A failure skips only its dependents; :meth:`Applier.stop` (a
signal, or a state that cannot be written) sends nothing more.  The applier decides nothing the
plan did not say; library code: progress is reported through ``on_event``.

Over 400 lines on purpose: the run loop, the recording after every step and the handling of stops
and unknown outcomes share the applier's one view of what was done; each kind's step is in
``steps.py``, the state writes in ``commit.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.applier import steps
from reconciler.applier.commit import Committer
from reconciler.core.errors import (
    NotSentError,
    OutcomeUnknownError,
    PlanFileError,
    RemoteError,
    SendWindowPassed,
    StateError,
    proves_not_executed,
)
from reconciler.core.listlag import ListLag, parse_utc
from reconciler.model import views as nz
from reconciler.model.remote import RemoteCatalogPackage, RemoteClientPackage
from reconciler.plan.document import Plan, fingerprint
from reconciler.plan.operations import (
    CreateClientPackage,
    Operation,
    ResolvePendingCreate,
    Unbound,
)
from reconciler.remote import calls
from reconciler.remote.client import VcitaClient
from reconciler.remote.dispatch import encode_body, send_by
from reconciler.state.store import (
    PendingCreate,
    ResourceState,
    State,
    StateStore,
    TargetRef,
    utc_now,
)

Status = Literal["done", "failed", "skipped", "unknown", "refused"]
#: how many pending records a create may go through when it keeps outwaiting its send window
SEND_TRIES = 3


@dataclass
class Event:
    """One line of progress: an address's operations started or ended, or a note."""

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
    """The outcome of every address of the plan."""

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


def sent_digest(op: Operation) -> str:
    """:func:`request_digest` of the body a bound ``op`` sends (what ``describe(op)`` shows), from
    the bytes the client encodes: the same value, without describing the operation once more."""
    (call,) = calls.calls(op)
    return call_digest(call)


def call_digest(call: calls.Call) -> str:
    """:func:`sent_digest` of the operation whose one request is ``call``."""
    content = b"null" if call.body is None else encode_body(call.body)
    return "sha256:" + hashlib.sha256(content).hexdigest()[:32]


#: The youngest generation's collection threshold while a run goes on (CPython's default: 700).
YOUNG_GC_THRESHOLD = 10_000


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave the objects alive before the run (manifests, plan, state) out of garbage collection
    while it runs: a full collection over them paused the event loop for 15-30 ms at 1,000
    changes, stalling every request in flight.  Nothing is frozen when the process froze its heap
    already (its choice stands).

    What the run allocates is collected as usual, but its youngest generation less often: at
    CPython's 700, bench/bench_apply.py (1,000 creates) ran ~55 young and ~5 middle collections,
    ~30 ms of CPU in all, which freed nothing (an apply makes no reference cycles: requests in
    flight were examined again and again); at 10,000, 2 collections, ~4 ms.  At most 10,000 more
    young objects wait for a collection.  A process that turned automatic collection off, or
    collects less often already, keeps its setting."""
    thresholds = gc.get_threshold()
    if 0 < thresholds[0] < YOUNG_GC_THRESHOLD:
        gc.set_threshold(YOUNG_GC_THRESHOLD, *thresholds[1:])
    try:
        if gc.get_freeze_count():
            yield
            return
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
    finally:
        gc.set_threshold(*thresholds)


class _NotSent(Exception):
    """An operation that was not sent because the run is stopping."""


def chain_action(ops: tuple[Operation, ...]) -> str:
    """What an address's operations amount to: the first one that is not a resolution or a follow-up."""
    return next((op.action for op in ops if op.action not in ("resolve", "set_credits")), ops[0].action)




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
        # Creates past this gate have their pending record written (or about to be): twice the
        # client's request slots, so that the next records are in the state (a whole-file write,
        # which takes longer than a journal append did) when a slot frees up; with slots + 25%,
        # bench/bench_apply.py took 1.2x as long, with 1.6x the state writes.  A run killed
        # mid-way leaves at most that many creates with an unknown outcome.
        slots = max(1, int(getattr(getattr(api, "settings", None), "concurrency", 8) or 8))
        self._create_gate = asyncio.Semaphore(2 * slots)
        self._unfinished = 0  # addresses started and not yet ended
        # When each create left the gate's queue: its reported time is its own work (intent,
        # request, state), not the wait for the hundreds of creates queued before it.
        self._began: dict[str, float] = {}
        #: why nothing more may be sent ("" while the run goes on): see stop()
        self.stopping = ""
        lag = getattr(getattr(api, "target", None), "list_lag", None)
        #: seconds within which a create must leave after its pending record (reconciler.core.listlag)
        self.send_window = (lag if isinstance(lag, ListLag) else ListLag()).send_window

    def stop(self, why: str = "apply was interrupted") -> None:
        """Send nothing more: operations not yet sent end as skipped ("not sent"); those in flight
        finish and are recorded.  Safe to call from a signal handler on the event loop."""
        self.stopping = self.stopping or why
        halt = getattr(self.api, "halt", None)
        if halt is not None:
            halt(self.stopping)

    # --- checks -------------------------------------------------------------------------------

    def check_plan(self, plan: Plan, manifest_digest: str | None, limit: int | None = None) -> None:
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
        if plan.state_serial != self.state.serial:
            # Per-address checks cannot see everything another write did: an object created since
            # under another name (a rename applied meanwhile) makes this plan's create of that
            # address a second sale of the same identity.
            held = len(self.state.pending)
            raise PlanFileError(
                f"the state changed since this plan was made (serial {plan.state_serial} then, {self.state.serial} "
                "now): the plan was already applied, or another run (an apply, an import, a state command) wrote "
                "the state since; a saved plan applies once, to the state it was made from"
                + (f"; the state holds {held} create(s) an interrupted run left pending" if held else ""),
                hint="Make a new plan against the state as it is now ('reconciler plan --out FILE') and review it"
                     + ("; it shows how each pending create is resolved." if held else "."))
        self.check_appliable(plan)
        self.check_payment_requests(plan, limit)

    @staticmethod
    def check_appliable(plan: Plan) -> None:
        """Refuse (PlanFileError) a plan with errors (a second sale, an unsettled pending create, ...)
        or with replacements nobody allowed: :meth:`apply` asks it too, whoever calls it."""
        if plan.errors:
            raise PlanFileError(
                f"the plan has {len(plan.errors)} error(s) that must be fixed first: {plan.errors[0].message}")
        creates = plan.unchecked_creates
        if creates:
            raise PlanFileError(
                f"the plan was made with --no-refresh and creates {len(creates)} object(s) ({creates[0]}"
                f"{', ...' if len(creates) > 1 else ''}): it never looked in vcita for what already exists, so a "
                "lost or older state would create (and bill) again what vcita holds; apply refuses it",
                hint="Make the plan again without --no-refresh ('reconciler plan --out plan.json'), review it, "
                     "and apply that one.")
        if plan.blocked:
            names = ", ".join(op.address for op in plan.blocked)
            raise PlanFileError(
                f"the plan replaces client packages that were not allowed to be replaced: {names}",
                hint="Re-run 'reconciler plan --allow-replace' if each replacement (a new payment request) "
                     "is intended.")

    @staticmethod
    def check_payment_requests(plan: Plan, limit: int | None = None) -> None:
        """Refuse a plan that opens more payment requests than its reviewed limit (or ``limit``,
        apply's own flag), or whose money summary does not count its creates."""
        opens = sum(1 for op in plan.operations if isinstance(op, CreateClientPackage))
        money = plan.payment_requests
        if opens != money.count:
            raise PlanFileError(f"the plan creates {opens} client package(s) but its summary counts {money.count} "
                                "payment request(s); it was not made by this reconciler or was edited",
                                hint="Make a new plan and review it.")
        for bound, what in ((money.limit, "the limit it was reviewed with"), (limit, "--max-payment-requests")):
            if bound is not None and opens > bound:
                raise PlanFileError(f"the plan would open {opens} payment requests, more than {what} ({bound})",
                                    hint=f"Review them, then plan again with --max-payment-requests {opens}.")

    def _premise(self, address: str, ops: tuple[Operation, ...], pending: list[PendingCreate]) -> str | None:
        """Why the operations of ``address`` cannot run as planned (None: they can)."""
        for op in ops:
            if isinstance(op, ResolvePendingCreate) and op.resolution == "unknown":
                return op.reason
            if isinstance(op, ResolvePendingCreate) and op.resolution == "not_created" and op.kind == "CatalogPackage" \
                    and not _listed_after_settling(op):
                return (f"the plan concludes that an interrupted create of {address} never reached vcita from a "
                        f"package list read ({op.listed_at or 'at an unknown time'}) before the list could show it "
                        f"({op.settled_at or 'unknown'}); make a new plan")
        resolved = {op.intent_id for op in ops if isinstance(op, ResolvePendingCreate)}
        open_now = {it.id: it for it in pending}
        if resolved - set(open_now):
            return (f"the pending create this plan resolves for {address} was resolved since the plan was made; "
                    "make a new plan")
        for intent_id, it in open_now.items():
            if intent_id not in resolved:
                return (f"a create of {address} that an interrupted run left pending (since {it.opened_at}, "
                        f"record {it.id}) is not in this plan; make a new plan, which shows how it is resolved")
        exp = ops[0].expects
        if exp is None:
            return None
        have = self.state.resources.get(address)
        if not exp.present:
            if have is not None:
                return (f"already applied: state tracks {address} as {have.id}; a saved plan applies once "
                        "(make a new plan)")
            return None
        if have is None:
            return f"state no longer tracks {address}; make a new plan"
        if have.id != exp.id or have.fingerprint != exp.fingerprint:
            return f"state changed for {address} since the plan was made (already applied?); make a new plan"
        return None

    def _unlike_plan(self, op: Operation) -> str | None:
        """Why ``op``'s planned requests are not what this client sends for it (None: they are)."""
        if not self.api.unlike(op, op.requests):  # describe(op) compared, doors aside
            return None
        shown = ", ".join(f"{r.method} {r.path}" for r in op.requests) or "no request"
        return (f"the plan shows {shown} for {op.address}, which is not what this reconciler sends for it "
                "(was the plan edited, or made by another version?); make a new plan")

    async def _remote_fingerprints(self, ops: list[Operation]) -> dict[str, str | None]:
        """The current remote fingerprint of each object the operations act on (None: gone)."""
        out: dict[str, str | None] = {}
        catalog = {rid for op in ops if op.kind == "CatalogPackage" for rid in op.remote_ids}
        clients = {rid for op in ops if op.kind == "ClientPackage" for rid in op.remote_ids}
        if catalog:
            # the list lags creation (API-NOTES §8): what it does not show yet is read by id
            from reconciler.refresh.full import read_catalog

            listed = {p.id: p for p in await read_catalog(self.api, sorted(catalog))}
            for rid in catalog:
                p = listed.get(rid)
                out[rid] = fingerprint(nz.catalog_remote(p)) if p else None
        if clients:
            got = await self.api.get_client_packages(sorted(clients))
            for rid in clients:
                cp = got.get(rid)
                out[rid] = fingerprint(nz.client_remote(cp)) if cp else None
        return out

    # --- the run ------------------------------------------------------------------------------

    async def apply(self, plan: Plan, *, stale: Literal["skip", "abort"] = "skip") -> Result:
        """Execute ``plan``; returns the outcome of every address.  Raises only for refusals of the
        whole plan (PlanFileError: one with errors or unallowed replacements is refused here too, not
        only by :meth:`check_plan`) and for state failures."""
        self.check_appliable(plan)
        with frozen_heap():
            return await self._apply(plan.chains(), stale)

    async def _apply(self, chains: list[tuple[str, tuple[Operation, ...]]], stale: Literal["skip", "abort"]) -> Result:
        async with Committer(self.store, self.state) as commit:
            self.commit = commit
            pending: dict[str, list[PendingCreate]] = {}
            for pc in commit.state.pending.values():
                pending.setdefault(pc.address, []).append(pc)
            refused: dict[str, str] = {}
            for address, ops in chains:
                why = self._premise(address, ops, pending.get(address, []))
                if why:
                    refused[address] = why
            to_check = [op for address, ops in chains if address not in refused for op in ops
                        if getattr(op, "remote_fingerprint", None) and op.remote_ids]
            current = await self._remote_fingerprints(to_check)
            stale_found: list[str] = []
            for op in to_check:
                rid = op.remote_ids[0]
                now = current.get(rid)
                if now != op.remote_fingerprint and op.address not in refused:  # type: ignore[attr-defined]
                    what = "no longer exists in vcita" if now is None else "changed in vcita since the plan was made"
                    refused[op.address] = f"stale: {rid} {what}; make a new plan"
                    stale_found.append(op.address)
            if stale_found and stale == "abort":
                raise PlanFileError(
                    f"{len(stale_found)} object(s) changed since the plan was made: {', '.join(stale_found)}; "
                    "nothing was applied (--stale=abort)", hint="Make a new plan and review it.")
            loop = asyncio.get_running_loop()
            for address, _ in chains:
                self._done[address] = loop.create_future()
            self._unfinished = len(chains)
            commit.running = lambda: self._unfinished
            await asyncio.gather(*(self._chain(address, ops, refused.get(address)) for address, ops in chains))
        self.result.state = commit.state
        self.result.state_writes = commit.writes
        self.result.unrecorded = list(commit.unrecorded)
        return self.result

    def _end(self, address: str, action: str, status: Status, message: str = "", remote_id: str | None = None,
             door: str = "", started: float | None = None) -> None:
        started = self._began.pop(address, started)
        ev = Event(kind="end", address=address, action=action, status=status, remote_id=remote_id,
                   door=door, elapsed=round(time.perf_counter() - started, 3) if started else 0.0, message=message)
        self.result.outcomes[address] = ev
        self._unfinished -= 1
        self.commit.nudge()
        self.emit(ev)
        fut = self._done.get(address)
        if fut is not None and not fut.done():
            fut.set_result(status == "done")

    async def _chain(self, address: str, ops: tuple[Operation, ...], refused: str | None) -> None:
        action = chain_action(ops)
        if refused:
            self._end(address, action, "refused", refused)
            return
        for dep in dict.fromkeys(d for op in ops for d in op.depends_on):
            fut = self._done.get(dep)
            if fut is not None and not await fut:
                self._end(address, action, "skipped", f"skipped: {dep} did not succeed")
                return
        for op in ops:
            why = self._unlike_plan(op)
            if why:
                self._end(address, action, "refused", why)
                return
        if self.commit.failed is not None and not self.stopping:
            self.stop("the state cannot be written")
        if self.stopping:
            self._end(address, action, "skipped", f"not sent: {self.stopping}")
            return
        self.emit(Event(kind="start", address=address, action=action))
        started = time.perf_counter()
        done: list[steps.Step] = []
        for op in ops:
            try:
                done.append(await steps.run(op, self))
            except _NotSent as e:
                self._end(address, action, "skipped", f"not sent: {e}", started=started)
                return
            except SendWindowPassed:
                self._end(address, action, "skipped", f"not sent: it waited longer than its send window "
                          f"({self.send_window:g} s) {SEND_TRIES} times; run apply again", started=started)
                return
            except NotSentError:
                self._end(address, action, "skipped", f"not sent: {self.stopping or 'the run is stopping'}",
                          started=started)
                return
            except StateError as e:
                # The state cannot be written (disk full, permissions): nothing more is sent, and an
                # object vcita acknowledged is reported with the command that records it.
                rid = next((r for a, r in self.commit.unrecorded if a == address), None)
                if rid is None:
                    self._end(address, action, "skipped", f"not sent: the state cannot be written ({e.message})",
                              started=started)
                else:
                    self._end(address, action, "unknown",
                              f"vcita has {rid}, but the state could not record it ({e.message}). Once the state "
                              f"can be written, run 'reconciler import {address} {rid}'", remote_id=rid,
                              started=started)
                return
            except OutcomeUnknownError as e:
                self._end(address, action, "unknown",
                          f"unknown outcome: {e.message}. {self._check_by_hand(op, e.remote_id)}", started=started)
                return
            except (RemoteError, Unbound) as e:
                detail = "; ".join(f"{fe.get('field') or ''} {fe.get('message', '')}".strip()
                                   for fe in getattr(e, "field_errors", []) or [])
                before = "; ".join(s.verb for s in done if s.verb and not s.quiet)
                shown = str(e)
                if detail and f"({detail})" in shown:  # the summary already says it (a message with no field)
                    detail = ""
                message = (f"{before}, then " if before else "") + shown + (f" ({detail})" if detail else "")
                self._end(address, action, "failed", f"failed: {message}", started=started)
                return
        self._end(address, action, "done", _say(done), remote_id=next((s.remote_id for s in reversed(done)
                                                                        if s.remote_id), None),
                  door=next((s.door for s in done if s.door), ""), started=started)

    def _check_by_hand(self, op: Operation, remote_id: str | None = None) -> str:
        if isinstance(op, CreateClientPackage):
            with contextlib.suppress(Unbound):
                op = op.bound(self.commit.state.resources)
            if remote_id:
                return (f"Check {remote_id} in vcita (client {op.client_id}, package {op.package_id}), then run "
                        f"'reconciler import {op.address} {remote_id}'. It will not be created again until then.")
            return (f"Check in vcita whether client {op.client_id} now has package {op.package_id}; then run "
                    f"'reconciler import {op.address} UID' if it does, or 'reconciler state forget-intent "
                    f"{op.address}' if it does not. It will not be created again until then.")
        return "The next apply looks it up by name before doing anything else."

    # --- what the steps share -----------------------------------------------------------------

    def door(self) -> str:
        """The door that served this task's last request."""
        served = self.api.last_served
        return served.door if served else ""

    def note(self, address: str, message: str) -> None:
        self.emit(Event(kind="note", address=address, message=message))

    async def pending_create(self, op: Operation, details: dict[str, Any]) -> tuple[str, Any]:
        """Record the create as pending in the state, then send it, inside the create gate: a
        pending record is written only shortly before its request goes out.

        The request must leave within the target's send window of its record
        (``reconciler.core.listlag``: what bounds how long a recovery waits for vcita's list); one held
        back longer (a long Retry-After) is not sent, its record is closed (it never left) and a
        fresh one is opened, up to :data:`SEND_TRIES` times."""
        # The one request of ``op``, built and digested once: its digest goes into the pending
        # record, and the client sends that very call.
        (call,) = calls.calls(op)
        digest = call_digest(call)
        async with self._create_gate:
            for tries_left in range(SEND_TRIES - 1, -1, -1):
                if self.stopping:
                    raise _NotSent(self.stopping)
                self._began[op.address] = time.perf_counter()
                window = time.monotonic() + self.send_window  # before the record's opened_at is taken
                intent = await self.commit.open_intent(op.address, op.kind, digest, details)
                if self.stopping:  # asked to stop while its pending record was written: never sent
                    self.commit.close_intent(intent, "failed")
                    raise _NotSent(self.stopping)
                token = send_by.set(window)
                try:
                    return intent, await self.api.execute(op, call=call)
                except SendWindowPassed:
                    self.commit.close_intent(intent, "failed")  # it never left
                    if not tries_left:
                        raise
                    self.note(op.address, "its create waited longer than its send window without being sent; "
                                          "recording it as pending again")
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
                finally:
                    send_by.reset(token)
        raise AssertionError("unreachable")

    async def record_catalog(self, address: str, pkg: RemoteCatalogPackage, settles: str | None = None) -> None:
        """Track ``pkg`` at ``address`` (and drop the pending record ``settles`` in the same write)."""
        await self.commit.put(address, ResourceState.of_catalog(pkg), settles=settles)

    async def record_order(self, address: str, order: int) -> None:
        """Record a catalog package's new display position as applied (the reorder route answers
        no package to record)."""
        rs = self.commit.state.resources[address]
        view = {**rs.applied, "order": order}
        await self.commit.put(address, rs.model_copy(update={"applied": view, "fingerprint": fingerprint(view),
                                                             "updated_at": utc_now()}))

    async def record_client(self, address: str, cp: RemoteClientPackage, settles: str | None = None) -> None:
        """Track ``cp`` at ``address`` (and drop the pending record ``settles`` in the same write)."""
        await self.commit.put(address, ResourceState.of_client(cp), settles=settles)

    async def record_replacement(self, address: str, old_id: str, cp: RemoteClientPackage, settles: str) -> None:
        """Track ``cp`` at ``address`` and archive ``old_id``, the client package it replaces, in the
        write that drops the pending record ``settles``.  The old package stays in vcita with its
        payment request: archived, it is still reconciler's (a manifest object of its identity
        re-adopts it, a replacement back to it is refused), never a package "created outside"."""
        rs = ResourceState.of_client(cp)

        def replaced(state: State) -> State:
            state = state.archive_replaced(address, old_id, cp.id)
            return state.replace(resources={**state.resources, address: rs})

        await self.commit.record(replaced, settles=settles, remote_id=cp.id, address=address)


def _listed_after_settling(op: ResolvePendingCreate) -> bool:
    """Whether the list read that found no package of ``op``'s create started once the list could
    no longer be hiding one (``reconciler.core.listlag``)."""
    if not op.listed_at or not op.settled_at:
        return False
    try:
        return parse_utc(op.listed_at) >= parse_utc(op.settled_at)
    except ValueError:
        return False


def _say(done: list[steps.Step]) -> str:
    """The outcome line of an address: its main verbs, then the asides in brackets; a resolution is
    said only when nothing else happened."""
    main = [s.verb for s in done if s.verb and not s.quiet and not s.aside]
    if not main:
        main = [s.verb for s in done if s.verb and s.quiet][:1]
    return "; ".join(main) + "".join(f" ({s.verb})" for s in done if s.verb and s.aside)
