"""The second memory: the business's client packages, found through its payment requests.

vcita cannot list client packages, but it lists the business's payment requests (API-NOTES §11),
and every client package opens one (**[inferred]**: ``payable_type`` ``ClientBookingPackage``,
``payable_uid`` the client package's id, and the client package's ``payment_request_id`` points
back).  :func:`discover` walks that list (filtered to client packages, per client or business-wide,
created since a day) and **confirms** each item by reading the client package it names and checking
the link back; an item that does not link back (its package is missing, or points at another payment
request) is ignored and counted, never trusted, and is remembered as *doubtful* for its client: it
may stand for a package this walk cannot see (a server pointing one request at another package
hides the first), so the planner refuses creates for that client.  A package that links back both
ways but was listed under another client (a client filter that does not filter) is kept: it exists.

What discovery proves is *presence*: a confirmed client package exists.  Absence is only evidence:
the list may lag behind creation, a package of price 0 may open no payment request, and the API
may not behave as the spec says.  When it plainly does not (the route is refused, unknown, or
answers in another shape; or not one listed item links back), :class:`DiscoveryUnavailable` says
so and callers fall back to what the state alone knows.

Cost: one list walk per search (pages of 100; a page shorter than 25, the spec's default page size,
ends it) plus one ``GET /business/payments/v1/client_packages/{uid}`` per distinct package named,
concurrently within the client's limits, each started as soon as the page naming it arrives: the
walk and the confirmations overlap (``bench/bench_discovery.py`` checks the count exactly).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from reconciler.core import aio
from reconciler.core.errors import (
    AuthError,
    DoorRefusedError,
    FeatureDisabledError,
    NotFoundError,
    ProtocolError,
    RemoteError,
    RemoteValidationError,
    UnsupportedRouteError,
)
from reconciler.core.safetext import printable
from reconciler.model.remote import RemoteClientPackage, RemotePaymentRequest
from reconciler.remote.client import VcitaClient

#: The payment requests of client packages (settled, and before settlement).
ENTITY_TYPES = ("ClientBookingPackage", "PendingClientBookingPackage")
#: How far before an intent's time a search starts: the clocks of this machine and vcita's may differ.
#: A package opened more than ``planner.memory.CLOCK_SKEW`` (15 min) "before" its intent is not
#: adopted on its own, but it must be *found*, to be refused with the command that adopts it rather
#: than reported absent: a day, so that a vcita clock hours behind is found also across midnight
#: (an intent at 00:18 UTC, vcita's clock 3 h behind: its payment request is dated the day before).
SEARCH_MARGIN = timedelta(days=1)
#: At most this many clients are searched one by one (one list each); more, and one business-wide
#: list is cheaper in requests (bench/bench_discovery.py measures both).
PER_CLIENT_MAX = 20

# Answers that show this target's API does not serve the list as the spec says (not transient).
_DISAGREES = (AuthError, DoorRefusedError, FeatureDisabledError, NotFoundError, ProtocolError,
              RemoteValidationError, UnsupportedRouteError)


class DiscoveryUnavailable(RemoteError):
    """The payment request list cannot serve as a second memory on this target."""

    hint = ("reconciler falls back to what its state alone knows; 'reconciler doctor' checks the second memory "
            "(README: 'The second memory').")


@dataclass(frozen=True)
class Search:
    """One walk of the list: where it looked, and what it found and ignored."""

    client_id: str | None  # None: business-wide
    since: date | None
    listed: int = 0
    pages: int = 0
    found: int = 0
    ignored: Mapping[str, int] = field(default_factory=dict)
    known: int = 0  # items naming a package the caller already knows (not read again)

    def describe(self) -> str:
        where = f"client {self.client_id}'s payment requests" if self.client_id else "the business's payment requests"
        when = f" created since {self.since.isoformat()}" if self.since else ""
        left = sum(self.ignored.values())
        why = "; ".join(f"{n} {reason}" for reason, n in sorted(self.ignored.items()))
        return (f"{self.listed} of {where}{when} ({self.pages} page(s)), {self.found} linking back to a client package"
                + (f", {self.known} already tracked (not read again)" if self.known else "")
                + (f"; {left} ignored ({why})" if left else ""))


@dataclass(frozen=True)
class Discovery:
    """Client packages confirmed through payment requests, and the searches that found them."""

    packages: tuple[RemoteClientPackage, ...] = ()
    searches: tuple[Search, ...] = ()
    #: client package id -> when its payment request was opened (the list's ``created_at``)
    opened_at: Mapping[str, str] = field(default_factory=dict)
    #: client id (None: a client the item does not name) -> the uids of its client-package payment
    #: requests that link back to no package: each may stand for a package that cannot be seen
    doubtful: Mapping[str | None, tuple[str, ...]] = field(default_factory=dict)
    #: the ``known`` packages the list named (the caller checks the list showed what it knows)
    seen_known: frozenset[str] = frozenset()

    @property
    def ignored(self) -> int:
        return sum(sum(s.ignored.values()) for s in self.searches)

    def of_client(self, client_id: str) -> list[RemoteClientPackage]:
        return [cp for cp in self.packages if cp.client_id == client_id]

    def search_of(self, client_id: str) -> Search | None:
        """The search that covered ``client_id`` (its own, else a business-wide one)."""
        own = [s for s in self.searches if s.client_id == client_id]
        wide = [s for s in self.searches if s.client_id is None]
        return next(iter(own or wide), None)


def since_intent(opened_at: str) -> date | None:
    """The day a search for an intent written at ``opened_at`` (ISO, UTC) starts: less
    :data:`SEARCH_MARGIN`, at day granularity (the spec's example filters by day)."""
    try:
        moment = datetime.fromisoformat(opened_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment - SEARCH_MARGIN).date()


def _params(client_id: str | None, since: date | None) -> dict[str, str]:
    params = {"filter[entity_type][in]": ",".join(ENTITY_TYPES), "sort": "created_at:asc"}
    if client_id:
        params["filter[client_uid][eq]"] = client_id
    if since is not None:
        params["filter[created_at][gte]"] = since.isoformat()
    return params


def _plausible_id(value: str | None) -> bool:
    return value is not None and value.isalnum() and len(value) <= 64


@dataclass
class _Walk:
    """What one walk saw besides the packages it found."""

    doubtful: dict[str | None, list[str]] = field(default_factory=dict)
    seen_known: set[str] = field(default_factory=set)
    named_known: int = 0  # items naming a known package, linked back or not: payable_uid is a package id


def _doubt(walk: _Walk, pr: RemotePaymentRequest, client_id: str | None) -> None:
    """Remember a settled package's request that links back to nothing (a pending one,
    ``PendingClientBookingPackage``, may name something else until it is settled: not doubted)."""
    if pr.payable_type == "ClientBookingPackage":
        walk.doubtful.setdefault(pr.client_uid or client_id, []).append(pr.uid)


async def _search(api: VcitaClient, client_id: str | None, since: date | None, known: Collection[str] = (),
                  walk: _Walk | None = None) -> tuple[Search, list[tuple[RemoteClientPackage, str]]]:
    walk = walk if walk is not None else _Walk()
    pages: list[int] = []
    ignored: Counter[str] = Counter()
    named: dict[str, list[RemotePaymentRequest]] = {}
    skipped = listed = 0
    read: dict[str, RemoteClientPackage | None] = {}
    to_read: asyncio.Queue[str | None] = asyncio.Queue()
    workers = max(1, api.settings.concurrency)  # readers: the client's limit decides how many run at once

    def take(page: list[RemotePaymentRequest]) -> None:
        """Sort a page's items as it arrives; each package it names for the first time is read at once."""
        nonlocal skipped, listed
        listed += len(page)
        for pr in page:
            if pr.payable_uid in known:
                skipped += 1
                walk.named_known += 1
                back = known.get(pr.payable_uid) if isinstance(known, Mapping) else None
                if back is not None and back != pr.uid:  # a known package whose own request is another
                    ignored["not linked back by their client package"] += 1
                    _doubt(walk, pr, client_id)
                else:
                    walk.seen_known.add(str(pr.payable_uid))
            elif pr.payable_type not in ENTITY_TYPES:
                ignored["of another entity type"] += 1
            elif not _plausible_id(pr.payable_uid):
                ignored["without a readable payable_uid"] += 1
                _doubt(walk, pr, client_id)
            else:
                uid = str(pr.payable_uid)
                if uid not in named:
                    to_read.put_nowait(uid)
                named.setdefault(uid, []).append(pr)

    async def list_all() -> None:
        try:
            await api.list_payment_requests(_params(client_id, since), pages=pages, on_rows=take)
        except _DISAGREES as exc:
            raise DiscoveryUnavailable(f"the payment request list cannot be read as the spec describes it: "
                                       f"{printable(exc.message, limit=300)}", request=exc.request,
                                       status=exc.status) from exc
        finally:
            for _ in range(workers):
                to_read.put_nowait(None)  # the walk is over: each reader ends once the queue is drained

    async def confirm() -> None:
        while (uid := await to_read.get()) is not None:
            try:
                read[uid] = await api.get_client_package(uid)
            except NotFoundError:
                read[uid] = None

    # The walk and the confirmations overlap: a page's packages are read while the next page is
    # fetched (the client's concurrency limit holds both).  A walk that fails (never ends, repeats
    # itself, is refused) cancels the reads and raises: nothing is made of part of a list.
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(list_all())
            for _ in range(workers):
                group.create_task(confirm())
    except BaseExceptionGroup as errors:
        first = errors.exceptions[0]
        raise first from first.__cause__  # (as if no task group had carried it)
    found = []
    for uid, requests in named.items():
        cp = read.get(uid)
        if cp is None:
            ignored["naming a client package that does not exist"] += len(requests)
            for pr in requests:
                _doubt(walk, pr, client_id)
            continue
        linked = [pr for pr in requests if pr.uid == cp.payment_request_id]
        ignored["not linked back by their client package"] += len(requests) - len(linked)
        for pr in requests:
            if pr.uid != cp.payment_request_id:  # a request of some package this walk cannot see
                _doubt(walk, pr, client_id)
        if not linked:
            continue
        if client_id is not None and cp.client_id != client_id:
            pass  # linked both ways, so it exists: the list's client filter is what failed; still proof
        found.append((cp, linked[0].created_at or ""))
    ignored = +ignored  # drop the reasons counted zero times
    return (Search(client_id, since, listed=listed, pages=len(pages), found=len(found), ignored=dict(ignored),
                   known=skipped),
            found)


async def discover(api: VcitaClient, clients: Mapping[str, date | None] | None = None, *,
                   known: Collection[str] = frozenset(), wide: bool = False) -> Discovery:
    """The client packages of ``clients`` (client id -> the day to search from; None: all time),
    or of the whole business when ``clients`` is None.  Items naming a package of ``known`` (ids
    the caller has just read) are counted, not read again, and not in the result; when ``known``
    maps each id to its ``payment_request_id``, an item naming a known package whose own request is
    another one is doubtful (it may hide a package), like any item that does not link back.

    Up to :data:`PER_CLIENT_MAX` clients are searched one by one, concurrently; more, or any number
    when ``wide``, by one business-wide walk from the earliest day, keeping the packages whose own
    ``client_id`` (read from the package, not the list's label) is one of ``clients``: a request the
    server files under another client cannot hide its package from that walk.
    Raises :class:`DiscoveryUnavailable` when the list is not served as the spec says, or when
    items were listed and not one of them links back; transient failures are raised as they are.
    """
    walk = _Walk()
    if clients is not None and not clients:
        return Discovery()
    if clients is not None and not wide and len(clients) <= PER_CLIENT_MAX:
        done = await aio.gather(*(_search(api, cid, since, known, walk) for cid, since in sorted(clients.items())))
        searches = tuple(s for s, _ in done)
        pairs = [pair for _, found in done for pair in found]
    else:
        days = list((clients or {}).values())
        since = None if clients is None or any(d is None for d in days) else min(d for d in days if d)
        search, found = await _search(api, None, since, known, walk)
        searches = (search,)
        pairs = [(cp, at) for cp, at in found if clients is None or cp.client_id in clients]
    linked = {cp.id: at for cp, at in pairs}
    result = Discovery(packages=_unique(cp for cp, _ in pairs), searches=searches,
                       opened_at={cid: at for cid, at in linked.items() if at},
                       doubtful={c: tuple(sorted(set(uids))) for c, uids in walk.doubtful.items()},
                       seen_known=frozenset(walk.seen_known))
    # Nothing links back: the API does not answer as the spec says -- unless items named packages the
    # caller knows (then payable_uid does hold client package ids, and what does not link back is a lie
    # about one package, kept as doubtful, not a reason to stop looking).
    if not result.packages and result.ignored and all(s.found == 0 for s in searches) and not walk.named_known:
        first = next(s for s in searches if s.ignored)
        raise DiscoveryUnavailable(f"payment requests were listed but none links back to its client package "
                                   f"({first.describe()}): vcita does not answer as the spec describes")
    return result


def _unique(packages: Iterable[RemoteClientPackage]) -> tuple[RemoteClientPackage, ...]:
    return tuple({cp.id: cp for cp in packages}.values())
