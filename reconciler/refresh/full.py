"""Refresh and plan: where the remote, the state file and the pure planner meet.

One paged list of catalog packages (with items), one GET per tracked client package, one lookup
per distinct client e-mail and one services list — concurrently, through the remote client's
limits — and the creates an interrupted run left pending (the state's pending records).  The
list lags behind creation (API-NOTES §8: up to 20 s), so a tracked catalog package missing from it
is read by id (:func:`read_catalog`) before the planner may call it vanished, and when a catalog
create an interrupted run left pending is not in the list yet, the list is read again until it
shows up or the list can no longer be hiding it (:func:`read_catalog_settled`,
``reconciler.core.listlag``): only then may the planner conclude that it never reached vcita.  That
wait happens here, while planning, so that what the plan shows is what apply does.

Then the pure planner, which asks the client (:class:`PlanningRemote`) to describe each operation
as it adds it (method, path, door, body) and whether the target can send it: a request the target
has no token for is a plan error (a directory-only target cannot create client packages, say)
instead of an apply failure.  The plan is complete when it is made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from reconciler.core import aio
from reconciler.core.errors import NotFoundError
from reconciler.core.listlag import ListLag, utc_stamp
from reconciler.core.progress import Progress, ProgressSink, Tally
from reconciler.model import address as addresses
from reconciler.model.manifest_set import ManifestSet
from reconciler.model.remote import RemoteCatalogPackage
from reconciler.plan.document import Plan, PlanTarget, Problem
from reconciler.plan.operations import Operation, Request
from reconciler.planner import (
    Actual,
    PlanOptions,
    RemoteObject,
    from_catalog,
    from_client_package,
    from_state,
    plan,
)
from reconciler.remote.client import VcitaClient
from reconciler.remote.target import Target
from reconciler.state.store import ResourceState, State, TargetRef

log = logging.getLogger("reconciler.refresh.full")
#: what a person running the command should hear of (the CLI prints it; a library user may listen)
notice = logging.getLogger("reconciler.notice")
#: the shortest pause between two reads of the list while waiting for it (seconds)
POLL_SECONDS = 2.0


def target_ref(target: Target) -> TargetRef:
    """The identity of a target as state records it (no secrets)."""
    return TargetRef.of(target)


def plan_target(target: Target) -> PlanTarget:
    return PlanTarget(
        gateway_url="embedded" if target.embedded else target.gateway_url,
        fallback_url="" if target.embedded else (target.fallback_url or ""),
        business_id=target.business_id, embedded=target.embedded,
    )


async def read_catalog(api: VcitaClient, tracked_ids: Iterable[str], tally: Tally | None = None,
                       ) -> list[RemoteCatalogPackage]:
    """Every catalog package the list shows, plus each of ``tracked_ids`` the list does not show
    but that exists when read by id (the list lags behind creation, API-NOTES §8).

    A tracked id that reading by id does not find either (404, or 422 "not found") is left out:
    only then is it gone.  Any other error of a read by id is raised as it is.
    """
    tally = tally or Tally(None, "")

    def page_read(page: int, listed: int) -> None:
        if page > 1:  # the list is one unit of the total until it turns out to have more pages
            tally.add(1)
        tally.step(f"catalog packages: {listed} listed")

    listed = await api.list_catalog_packages(include_items=True, on_page=page_read)
    shown = {p.id for p in listed}
    missing = [rid for rid in dict.fromkeys(tracked_ids) if rid and rid not in shown]
    if not missing:
        return listed
    tally.add(len(missing))

    async def by_id(rid: str) -> RemoteCatalogPackage | None:
        try:
            return await api.get_catalog_package(rid)
        except NotFoundError:
            return None
        finally:
            tally.step(f"catalog package {rid}")

    found = [p for p in await aio.gather(*(by_id(rid) for rid in missing)) if p is not None]
    if found:
        log.info("%d tracked catalog package(s) not in the list yet, found by id: %s", len(found),
                 ", ".join(p.id for p in found))
    return listed + found


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def read_catalog_settled(
    api: VcitaClient, resources: Mapping[str, ResourceState], pending: Sequence[Any], lag: ListLag, *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, clock: Callable[[], datetime] = _utcnow,
    wait: bool = True, tally: Tally | None = None,
) -> tuple[list[RemoteCatalogPackage], datetime]:
    """What :func:`read_catalog` reads, and when the read that gave it started, once the list can
    be trusted about the catalog creates an interrupted run left pending.

    A pending catalog create (of an address the state does not track yet) whose name no untracked
    package of the list has may still be hidden by the list's lag until ``lag.settled_at(opened_at)``;
    while one is, the list is read again (every :data:`POLL_SECONDS` at least, or twice as long
    as a read takes), until each such name shows up or that moment has passed.  The last read
    starts at or after the moment, so that "not in the list" is then proof of "never created".
    ``wait=False`` reads once (the planner then calls such a create's outcome unknown).
    """
    tracked = {rs.id for a, rs in resources.items() if addresses.is_catalog(a)}
    awaited = [it for it in pending if it.kind == "CatalogPackage" and it.address not in resources]
    said = False
    while True:
        listed_at = clock()
        catalog = await read_catalog(api, tracked, tally)
        took = (clock() - listed_at).total_seconds()
        names = {p.name for p in catalog if p.id not in tracked}
        waiting = []
        for it in awaited:
            try:
                until = lag.settled_at(it.opened_at)
            except ValueError:
                continue  # an unreadable time: the planner calls its outcome unknown
            if str(it.details.get("name")) not in names and until > listed_at:
                waiting.append((until, it))
        if not waiting or not wait:
            return catalog, listed_at
        until = max(when for when, _ in waiting)
        if not said:
            said = True
            what = ", ".join(f"{it.address} ({str(it.details.get('name'))!r})" for _, it in waiting)
            notice.info("Waiting up to %.0f s (until %s) for vcita's package list, which lags creation by up "
                        "to %g s: an interrupted run's create of %s may have reached vcita", (until - clock())
                        .total_seconds(), until.strftime("%H:%M:%S UTC"), lag.lag, what)
        remaining = (until - clock()).total_seconds()
        await sleep(max(0.05, min(max(POLL_SECONDS, 2 * took), remaining)))


#: Up to this many e-mails are looked up one by one; more are first looked for in the clients
#: list (100 a page), which costs 3 requests for a business of 300 clients instead of one per e-mail.
LOOKUPS_BEFORE_LIST = 10


async def find_clients(api: VcitaClient, emails: Sequence[str],
                       shared: dict[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """The client of each (lower-case) e-mail, or None.  Many e-mails: the clients list is walked
    to its end, for at most half as many pages as there are e-mails; a list longer than that is
    not relied on, and each e-mail is looked up one by one, so it never costs more than 1.5 times
    the lookups it replaces.

    ``shared`` receives the e-mails that several clients have (-> their ids, in the API's order):
    which client such an e-mail names cannot be told (the API's first may change), so the plan
    refuses it.  Only a complete reading can tell that an e-mail has one client: the whole list,
    or a lookup of that e-mail (which finds every client of it).  A walk that stopped once each
    e-mail was seen missed a second client of one on a later page, and the plan took the API's
    first for it."""
    found: dict[str, Any] = {}
    seen_ids: dict[str, list[str]] = {}
    rest = list(emails)
    if len(emails) > LOOKUPS_BEFORE_LIST:
        wanted = set(emails)
        budget = len(emails) // 2
        pages, cut = [0], [False]

        def enough(clients: list[Any]) -> bool:
            pages[0] += 1
            cut[0] = pages[0] >= budget  # (a walk that ends on that very page is taken as cut: safe)
            return cut[0]

        listed = await api.list_clients(stop=enough)
        if not cut[0]:  # the whole list: every client of each e-mail was seen, absent is absent
            rest = []
            for c in listed:
                key = (c.email or "").strip().lower()
                if key in wanted:
                    found.setdefault(key, c)
                    seen_ids.setdefault(key, []).append(c.id)
            found.update({e: None for e in emails if e not in found})
    looked_up = await aio.gather(*(api.clients_with_email(e) for e in rest))
    for e, clients in zip(rest, looked_up, strict=True):
        found[e] = clients[0] if clients else None
        seen_ids[e] = [c.id for c in clients]
    if shared is not None:
        shared.update({e: tuple(dict.fromkeys(ids)) for e, ids in seen_ids.items() if len(set(ids)) > 1})
    return found


@dataclass(frozen=True)
class Lookups:
    """What every refresh reads besides the objects: clients by e-mail, the services, their names."""

    clients_by_email: dict[str, str | None]
    service_ids: frozenset[str] | None
    names: dict[str, str]
    #: e-mails several clients have -> their ids (the plan refuses a client written by such an e-mail)
    shared_emails: dict[str, tuple[str, ...]] = field(default_factory=dict)


async def read_lookups(api: VcitaClient, desired: ManifestSet, tally: Tally | None = None) -> Lookups:
    """One lookup per distinct client e-mail and the services list (when catalog packages are
    declared and the target may list them), concurrently; and the names they carry.  ``tally``
    counts one step per e-mail and one for the services."""
    tally = tally or Tally(None, "")
    emails = sorted({(d.spec.client.email or "").lower() for d in desired.client_packages.values()
                     if d.spec.client.email})
    # A directory-only target cannot list services (staff only): services are then not checked.
    need_services = bool(desired.catalog_packages) and api.can("list_services")
    names: dict[str, str] = {}
    shared: dict[str, tuple[str, ...]] = {}

    async def clients_by_email() -> dict[str, str | None]:
        found = await find_clients(api, emails, shared)
        for _ in emails:
            tally.step("a client looked up by e-mail")
        for e, c in found.items():
            if c is not None:
                person = f"{c.first_name} {c.last_name}".strip()
                names[c.id] = f"{person} <{e}>" if person else e
        return {e: (c.id if c else None) for e, c in found.items()}

    async def services() -> frozenset[str] | None:
        if not need_services:
            return None
        listed = await api.list_services()
        names.update((s.id, s.name) for s in listed if s.name)
        tally.step("services")
        return frozenset(s.id for s in listed)

    by_email, service_ids = await aio.gather(clients_by_email(), services())
    return Lookups(by_email, service_ids, names, shared)


async def refresh(api: VcitaClient, desired: ManifestSet, resources: Mapping[str, ResourceState],
                  pending: Sequence[Any] = (), lag: ListLag | None = None, *, settle: bool = True,
                  progress: ProgressSink | None = None, phase: str = "refreshing") -> Actual:
    """Read what the planner needs from the remote business, concurrently; ``pending`` are the
    state's pending creates, passed on to the planner.  ``settle``: wait for the list where it may
    still hide a pending catalog create (:func:`read_catalog_settled`).  ``progress`` gets one
    event per read finished (the catalog list, each client package, each e-mail looked up, the
    services)."""
    cp_ids = [rs.id for rs in resources.values() if rs.kind == "ClientPackage"]
    emails = sorted({(d.spec.client.email or "").lower() for d in desired.client_packages.values()
                     if d.spec.client.email})
    need_services = bool(desired.catalog_packages) and api.can("list_services")
    tally = Tally(progress, phase, 1 + len(set(cp_ids)) + len(emails) + int(need_services))
    tally.add(0)  # the total, before the first read ends
    address_of = {rs.id: addr for addr, rs in resources.items()}
    lag = lag or getattr(api.target, "list_lag", None) or ListLag()
    (catalog, listed_at), client_pkgs, found = await aio.gather(
        read_catalog_settled(api, resources, pending, lag, wait=settle, tally=tally),
        api.get_client_packages(cp_ids, on_each=lambda uid: tally.step(address_of.get(uid, uid))),
        read_lookups(api, desired, tally),
    )
    clients = {uid: (from_client_package(cp) if cp else None) for uid, cp in client_pkgs.items()}
    return refreshed_actual(catalog, listed_at, clients, found, pending, lag)


def refreshed_actual(catalog: Sequence[RemoteCatalogPackage], listed_at: datetime,
                     clients: Mapping[str, RemoteObject | None], found: Lookups, pending: Sequence[Any],
                     lag: ListLag) -> Actual:
    """The planner's view of what a refresh read (full or ``--refresh=changed``)."""
    return Actual(
        catalog_packages={p.id: from_catalog(p) for p in catalog},
        client_packages=dict(clients),
        catalog_names={p.id: p.name for p in catalog},
        clients_by_email=found.clients_by_email,
        shared_emails=found.shared_emails,
        service_ids=found.service_ids,
        refreshed=True,
        pending=tuple(pending),
        names={**{p.id: p.name for p in catalog}, **found.names},
        catalog_listed_at=utc_stamp(listed_at),
        list_lag=lag,
    )


class PlanningRemote:
    """What the planner asks the client: how each operation is sent (``VcitaClient.describe``),
    and whether this target can send it at all (it has a token vcita accepts on each route)."""

    HINT = ("Add a staff token to the target (VCITA_STAFF_TOKEN, --token-file, or token_env in reconciler.toml); "
            "'reconciler doctor' shows what each token can do.")

    def __init__(self, api: VcitaClient) -> None:
        self.api = api
        self.names = {r.name for r in api.routes}

    def describe(self, op: Operation) -> tuple[Request, ...]:
        return self.api.describe(op)

    def refusal(self, op: Operation, requests: tuple[Request, ...]) -> Problem | None:
        cannot = sorted({f"{r.method} {self.api.routes[r.operation].template}" for r in requests
                         if r.operation in self.names and not self.api.can(r.operation)})
        if not cannot:
            return None
        return Problem(address=op.address, severity="error",
                       message=f"target {self.api.target.name} cannot {op.action} this: vcita refuses its "
                               f"{_tokens(self.api)} on {', '.join(cannot)}",
                       hint=self.HINT)


def services_unchecked(api: VcitaClient) -> str | None:
    """Why the services a catalog package names cannot be checked with this target (None: they can)."""
    if api.can("list_services"):
        return None
    return (f"services were not checked: target {api.target.name} has no staff token, and vcita lists services "
            "for staff tokens only")


def _tokens(api: VcitaClient) -> str:
    kinds = [k for k, t in (("staff", api.target.staff_token), ("directory", api.target.directory_token)) if t]
    return " and ".join(kinds) + (" token" if len(kinds) == 1 else " tokens")


async def make_plan(
    api: VcitaClient,
    desired: ManifestSet,
    state: State,
    *,
    target: Target,
    no_refresh: bool = False,
    refresh_mode: str = "full",
    allow_replace: bool = False,
    today: date | None = None,
    partial: bool = False,
    history_guard: bool | None = None,
    max_payment_requests: int | None = None,
    checked_clients: Collection[str] = frozenset(),
    settle: bool = True,
    progress: ProgressSink | None = None,
    phase: str = "refreshing",
    read_also: Collection[str] = (),
) -> Plan:
    """Refresh (unless ``no_refresh``; ``refresh_mode="changed"``: only the client packages whose
    manifest changed, :mod:`reconciler.refresh.changed`) and plan; the state's pending creates (left by an
    interrupted run) are resolved by the plan.  ``partial``: the manifests are part of what the
    state tracks (nothing outside is archived); ``history_guard`` (default: any target but the
    embedded sandbox) refuses client-package creates against a business the state does not know;
    ``max_payment_requests`` bounds what the plan may open; ``settle=False`` does not wait for a
    lagging list (a verification: a pending catalog create it may hide is then of unknown outcome);
    ``progress`` gets the refresh's reads as they end, under the name ``phase``; ``read_also``: the
    client packages a ``changed`` refresh reads even though their manifests ask for what was last
    applied (a verification reads again what an apply just changed); ``checked_clients``: clients
    whose packages a person checked in vcita (``--checked-client``: their creates are not refused
    because the payment requests cannot vouch for them, ``planner/memory.py``)."""
    pending = tuple(state.pending.values())
    unread = 0
    if no_refresh:
        actual = from_state(state.resources, pending)
    elif refresh_mode == "changed":
        from reconciler.refresh.changed import refresh_changed

        actual, unread = await refresh_changed(api, desired, state.resources, pending, settle=settle,
                                               also=read_also)
    else:
        actual = await refresh(api, desired, state.resources, pending, settle=settle, progress=progress,
                               phase=phase)
    actual = replace(actual, services_unchecked=services_unchecked(api))
    now = datetime.now(UTC)
    opts = PlanOptions(
        target=plan_target(target),
        today=today or now.date(),
        created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        state_lineage=state.lineage,
        state_serial=state.serial,
        allow_replace=allow_replace,
        archived=state.archived,
        partial=partial,
        history_guard=(not target.embedded) if history_guard is None else history_guard,
        max_payment_requests=max_payment_requests,
    )
    remote = PlanningRemote(api)
    first = plan(desired, state.resources, actual, opts, remote)
    # The second memory (vcita's payment requests) for the clients this plan creates for or
    # cannot resolve a lost answer of; the plan is made again with what it finds.
    from reconciler.refresh.second_memory import replan

    if progress is not None and not no_refresh:  # a phase of unknown length: named, not counted
        progress(Progress("checking payment requests", 0, None))
    p = await replan(api, first, actual, lambda seen: plan(desired, state.resources, seen, opts, remote),
                     checked=frozenset(checked_clients))
    return p.model_copy(update={"unread": unread}) if unread else p
