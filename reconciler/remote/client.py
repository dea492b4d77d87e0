"""``VcitaClient``: the typed, asynchronous API of one vcita business.

Each method names an operation of the route table, sends it through the :class:`Dispatcher`
(doors, fallback, retries, limits) and returns the normalised remote models.  A planned operation
(``reconciler.plan.operations``) is described for the plan by :meth:`VcitaClient.describe` and sent by
:meth:`VcitaClient.execute`, both through ``calls.py``, which alone knows the bodies and
envelopes; the typed write methods build their calls there too.  Decimals and dates are sent as
JSON numbers and ISO strings.  Which door served a call is in :data:`last_served` (per task) and
:attr:`VcitaClient.history` (all calls of the run)::

    async with VcitaClient(target) as api:
        packages = await api.list_catalog_packages()
        cp = await api.get_client_package("m73jkvg4bf2z71b2")
        api.last_served.door   # "fallback"

Without a transport, the embedded target runs the sandbox in-process through the transport
factory its caller gives (``embedded=``: the CLI's ``reconciler.cli.embedded``, an
``httpx.ASGITransport``), and a remote target uses :class:`HttpTransport` (aiohttp's keep-alive
connections, bounded and kept in step, see ``http.py``) with the proxies and certificate authorities the environment
names (``netenv.py``); tests inject either, or an ``httpx.MockTransport`` at the same seam.

Over 400 lines on purpose: one typed method per API operation, each a few lines over the dispatcher,
with the paging they share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx
from pydantic import ValidationError

from reconciler.core.errors import ConfigError, NotFoundError, OutcomeUnknownError, ProtocolError, RequestInfo
from reconciler.core.safetext import printable
from reconciler.model.remote import (
    RemoteCatalogPackage,
    RemoteClient,
    RemoteClientPackage,
    RemotePaymentRequest,
    RemoteService,
)
from reconciler.plan.operations import Operation, Request
from reconciler.remote import calls, normalize
from reconciler.remote.dispatch import (
    ClientSettings,
    Dispatcher,
    GuardedTransport,
    Reply,
    Served,
    Sleep,
    last_served,
)
from reconciler.remote.routes import DEFAULT_ROUTES, Route, RouteTable
from reconciler.remote.target import Target

T = TypeVar("T")
log = logging.getLogger("reconciler.remote")

#: The most objects a list may hold (catalog packages, services, clients found): far beyond what
#: one business has; a server that keeps inventing more is refused, not followed for ever.
MAX_LIST_ITEMS = 100_000
#: The most pages walked for one list (a server answering one new object per page).
MAX_PAGES = 1_100
#: The payment request list's documented default page size: a page at least this long may be a
#: server's own maximum (below our per_page), so only a shorter one ends the walk.
PAYMENT_REQUESTS_DEFAULT_PAGE = 25


#: Makes the transport of an embedded target from its database path: the in-process sandbox.
#: The CLI gives it (``reconciler.cli.embedded.embedded_transport``); remote never imports the sandbox.
EmbeddedTransport = Callable[[Path], httpx.AsyncBaseTransport]


def network_transport(target: Target, concurrency: int) -> httpx.AsyncBaseTransport:
    """The HTTP stack for a served target, with the environment's proxies and authorities.

    Raises ConfigError, before anything is sent, when ``SSL_CERT_FILE``/``SSL_CERT_DIR`` or a
    proxy variable cannot be used; logs (at info, ``-v``) how each door is reached.
    """
    from reconciler.remote.http import HttpTransport
    from reconciler.remote.netenv import ProxyTable, ssl_context

    doors = [url for url in (target.gateway_url, target.fallback_url) if url]
    proxies = ProxyTable()
    for url in doors:
        log.info("network: %s", proxies.describe(url))
    verify = ssl_context() if any(url.startswith("https://") for url in doors) else None
    return HttpTransport(max_connections=concurrency, verify=verify, proxy_for=proxies)


class VcitaClient:
    """Async context manager over one target; the only way the rest of reconciler reaches vcita."""

    def __init__(
        self,
        target: Target,
        *,
        settings: ClientSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        routes: RouteTable = DEFAULT_ROUTES,
        sleep: Sleep | None = None,
        embedded: EmbeddedTransport | None = None,
    ) -> None:
        self.target = target
        #: the transport factory of an embedded target (see :data:`EmbeddedTransport`)
        self.embedded = embedded
        self.settings = settings or ClientSettings.for_target(target)
        self.routes = routes.with_pins(target.pins)  # the target's [targets.X.routes] pins
        self._given_transport = transport
        self._sleep = sleep
        self._transport: httpx.AsyncBaseTransport | None = None
        self._dispatcher: Dispatcher | None = None
        self._exit = contextlib.AsyncExitStack()

    def __repr__(self) -> str:
        return f"VcitaClient({self.target.describe()})"

    async def __aenter__(self) -> Self:
        transport = self._given_transport
        if transport is None:
            if self.target.embedded:
                assert self.target.db_path is not None
                if self.embedded is None:
                    raise ConfigError(f"{self.target.describe()}: this caller gave the client no embedded sandbox",
                                      hint="Pass embedded=reconciler.cli.embedded.embedded_transport to VcitaClient.")
                transport = self.embedded(self.target.db_path)
                app = getattr(transport, "app", None)  # the sandbox's app: its lifespan closes its database
                if app is not None:
                    await self._exit.enter_async_context(app.router.lifespan_context(app))
            else:
                transport = network_transport(self.target, self.settings.concurrency)
        deadline = self.settings.timeout if isinstance(transport, httpx.ASGITransport) else None
        self._transport = GuardedTransport(transport, deadline=deadline)
        self._dispatcher = Dispatcher(self.target, self._transport, routes=self.routes,
                                      settings=self.settings, sleep=self._sleep)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self._transport is not None:
                await self._transport.aclose()
        finally:
            self._transport = None
            await self._exit.aclose()

    # -- what happened ------------------------------------------------------------------------

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("use VcitaClient as 'async with VcitaClient(target) as api:'")
        return self._dispatcher

    def halt(self, why: str) -> None:
        """Send no request from now on (see :meth:`Dispatcher.halt`)."""
        self.dispatcher.halt(why)

    @property
    def last_served(self) -> Served | None:
        """How this task's most recent successful request was served (door, status, attempts)."""
        return last_served.get()

    @property
    def history(self) -> list[Served]:
        """Every answered request of this client, in completion order."""
        return self.dispatcher.history

    def can(self, operation: str) -> bool:
        """Whether the target has a token vcita accepts for ``operation`` (e.g. a directory-only
        target cannot read client packages)."""
        return self.dispatcher.can_send(self.routes[operation])

    # -- planned operations -------------------------------------------------------------------

    def describe(self, op: Operation) -> tuple[Request, ...]:
        """The requests that carry out ``op``, as :meth:`execute` sends them, with the door each
        would go through now (for a plan; values known only after apply read as such)."""
        return calls.describe(op, self.routes, self.dispatcher.door_for)

    def unlike(self, op: Operation, planned: tuple[Request, ...]) -> bool:
        """Whether ``planned`` (the requests a plan shows for ``op``) is not what :meth:`describe`
        gives for ``op`` now, doors aside (see :func:`calls.unlike`)."""
        return calls.unlike(op, self.routes, planned)

    async def execute(self, op: Operation, *, call: calls.Call | None = None,
                      ) -> RemoteCatalogPackage | RemoteClientPackage:
        """Send the one write of a bound ``op`` and return the object the API answers with.

        ``call``: that write, ``calls.calls(op)[0]``, when the caller built it already (the applier
        digests the very call it sends into the create's pending record)."""
        found = calls.calls(op) if call is None else (call,)
        if len(found) != 1:
            raise ValueError(f"{op.op} of {op.address} is not one request ({len(found)})")
        route, reply = await self._call(found[0])
        parse = normalize.catalog_package if route.data_key == "package" else normalize.client_package
        got: RemoteCatalogPackage | RemoteClientPackage = self._one(route, reply, parse)  # type: ignore[assignment]
        other = _answered_for_another(found[0], got)
        if other:
            # Never recorded as this operation's object: a create's package (billed) would be
            # tracked under another one's id and its own forgotten; an update's would move the
            # address to another package.
            s = reply.served
            info = RequestInfo(s.method, s.path, s.door, status=s.status, extra={"operation": route.name})
            why = printable(f"vcita answered with {other}; the answer cannot be trusted", limit=400)
            if not route.idempotent:  # executed all the same: its outcome is unknown, never repeated
                raise OutcomeUnknownError(f"{info.describe()}: {why}; it was executed", request=info)
            raise ProtocolError(f"{info.describe()}: {why}", request=info)
        return got

    async def send(self, op: Operation) -> None:
        """Send the one write of a bound ``op`` whose answer carries no object (a reorder)."""
        found = calls.calls(op)
        if len(found) != 1:
            raise ValueError(f"{op.op} of {op.address} is not one request ({len(found)})")
        await self._call(found[0])

    # -- plumbing -----------------------------------------------------------------------------

    async def _send(self, op: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
                    **path_params: str) -> tuple[Route, Reply]:
        route = self.routes[op]
        path = route.path(**path_params) if path_params else calls.fixed_path(route)
        return route, await self.dispatcher.send(route, path, params=params, body=body)

    async def _call(self, call: calls.Call) -> tuple[Route, Reply]:
        if call.unbound():
            raise ValueError(f"{call.route}: a value known only after apply was not bound before sending")
        return await self._send(call.route, body=call.body, **call.params)

    def _one(self, route: Route, reply: Reply, parse: Callable[[dict[str, Any]], T]) -> T:
        raw = reply.data.get(route.data_key)
        if not isinstance(raw, dict):
            raise self._protocol(route, reply, f"data.{route.data_key} is missing or not an object", raw)
        try:
            return parse(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise self._protocol(route, reply, f"data.{route.data_key}.{where}: {first['msg']}", raw) from None
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            why = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise self._protocol(route, reply, f"data.{route.data_key} cannot be read: {why}", raw) from None

    def _asked(self, route: Route, reply: Reply, got: T, asked: str) -> T:
        """``got``, the object a read by id answered, when it is the one asked for: a package of
        another id (a proxy's cache, a confused balancer) would be refreshed, imported or adopted
        as the one asked for, and the real one forgotten."""
        if getattr(got, "id", asked) != asked:
            raise self._protocol(route, reply, f"asked for {asked}, answered with {getattr(got, 'id', '')}")
        return got

    def _protocol(self, route: Route, reply: Reply, why: str, raw: Any = None) -> ProtocolError | OutcomeUnknownError:
        """The error for a success answer that cannot be read.  For a create (not idempotent) the
        request was executed all the same: an unknown outcome, with the id when the body shows one,
        never a failure that the next run would repeat."""
        s = reply.served
        info = RequestInfo(s.method, s.path, s.door, status=s.status, extra={"operation": route.name})
        why = printable(why, limit=300)
        if not route.idempotent:
            rid = raw.get("id") if isinstance(raw, dict) else None
            rid = rid if isinstance(rid, str) and rid.isalnum() and len(rid) <= 64 else None
            made = f"; it was executed and shows id {rid}" if rid else "; it was executed"
            return OutcomeUnknownError(f"{info.describe()}: the answer cannot be read ({why}){made}",
                                       request=info, remote_id=rid)
        return ProtocolError(f"{info.describe()}: {why}", request=info)

    async def _pages(self, op: str, params: Mapping[str, Any], parse: Callable[[dict[str, Any]], T],
                     *, until_empty: bool = False, end_below: int | None = None, id_key: str = "id",
                     pages: list[int] | None = None, on_page: Callable[[int, int], None] | None = None,
                     stop: Callable[[list[T]], bool] | None = None,
                     on_rows: Callable[[list[T]], None] | None = None) -> list[T]:
        """Walk ``page``/``per_page`` until a short page (no totals exist, API-NOTES §7).

        With ``until_empty`` a short page does not end it: whether the package list honours
        ``per_page`` is an open question (API-NOTES §10), and a page missed there would make a
        plan create packages that exist — one more request is the cheaper mistake.

        A server that ignores ``page`` repeats itself: a page that adds no new id ends the walk
        when it is shorter or longer than ``per_page`` (the server sent all it has), and is a
        ProtocolError when it is exactly ``per_page`` long (the list may go on beyond it, and a
        plan from part of a list would create what exists).  A list longer than
        :data:`MAX_LIST_ITEMS`, or a walk past :data:`MAX_PAGES` pages (a server that never stops
        inventing ids), is a ProtocolError too: what a business can plausibly hold is bounded.

        ``end_below``: only a page shorter than this ends the walk (a page between it and
        ``per_page`` may be a server's own smaller maximum); ``id_key`` names each object's id;
        ``pages`` receives the number of pages read; ``on_page(page, objects so far)`` is called
        as each page is read (for progress); ``stop`` (given what was read so far, after each
        page) ends the walk early when it says so; ``on_rows(objects)`` receives each page's new
        objects as soon as the page has passed the checks above (so a caller can start on them while
        the walk goes on; a walk that fails later has still raised).
        """
        per_page = self.settings.per_page
        out: list[T] = []
        seen: set[str] = set()
        page = 1
        while True:
            if page > MAX_PAGES:
                route = self.routes[op]
                raise ProtocolError(
                    f"{route.method} {route.path()}: the list did not end after {MAX_PAGES} pages "
                    f"({len(out)} objects); no business holds that many, so the server is not answering "
                    "as the vcita API does", request=RequestInfo(route.method, route.path(), extra={"operation": op}))
            route, reply = await self._send(op, params={**params, "page": page, "per_page": per_page})
            rows = reply.data.get(route.data_key)
            if not isinstance(rows, list):
                raise self._protocol(route, reply, f"data.{route.data_key} is missing or not a list")
            fresh = 0
            if pages is not None:
                pages.append(page)
            start = len(out)
            for raw in rows:
                if not isinstance(raw, dict) or not isinstance(raw.get(id_key), (str, int)):
                    raise self._protocol(route, reply, f"data.{route.data_key} holds an object without {id_key}")
                if raw[id_key] in seen:
                    continue
                seen.add(raw[id_key])
                fresh += 1
                out.append(self._one(route, Reply({route.data_key: raw}, reply.served), parse))
            if len(out) > MAX_LIST_ITEMS:
                raise self._protocol(route, reply, f"the list holds more than {MAX_LIST_ITEMS} objects by page "
                                                   f"{page}; no business holds that many")
            if on_page is not None:
                on_page(page, len(out))
            if fresh == 0 and rows and len(rows) == per_page:
                raise self._protocol(route, reply, f"page {page} repeats objects of earlier pages: the server "
                                                   "seems to ignore 'page', and the list may be longer than "
                                                   "what was read; nothing is planned from part of a list")
            if on_rows is not None and fresh:
                on_rows(out[start:])
            if fresh == 0 or (len(rows) < min(per_page, end_below or per_page) and not until_empty):
                return out
            if stop is not None and stop(out):
                return out
            page += 1

    # -- catalog packages ---------------------------------------------------------------------

    async def list_catalog_packages(
        self, include_items: bool = True, active_only: bool = False,
        on_page: Callable[[int, int], None] | None = None,
    ) -> list[RemoteCatalogPackage]:
        """Every catalog package (deactivated ones too unless ``active_only``); ``on_page(page,
        listed so far)`` as each page is read."""
        params: dict[str, str] = {}
        if include_items:
            params["include_items"] = "true"
        if active_only:
            params["active_only"] = "true"
        return await self._pages("list_catalog_packages", params, normalize.catalog_package, until_empty=True,
                                 on_page=on_page)

    async def get_catalog_package(self, package_id: str) -> RemoteCatalogPackage:
        """One catalog package with its items; NotFoundError if absent (the API may say 404 or 422)."""
        route, reply = await self._send("get_catalog_package", package_id=package_id)
        return self._asked(route, reply, self._one(route, reply, normalize.catalog_package), package_id)

    async def create_catalog_package(self, body: Mapping[str, Any]) -> RemoteCatalogPackage:
        """POST a flat create body; ``products`` is sent as ``[]`` when absent (API-NOTES §9.2)."""
        route, reply = await self._call(calls.create_catalog_package(body))
        return self._one(route, reply, normalize.catalog_package)

    async def update_catalog_package(self, package_id: str, body: Mapping[str, Any]) -> RemoteCatalogPackage:
        """PUT the given fields (wrapped as ``{"package": {...}}``; ``items`` replaces the list)."""
        route, reply = await self._call(calls.update_catalog_package(package_id, body))
        return self._one(route, reply, normalize.catalog_package)

    # -- client packages ----------------------------------------------------------------------

    async def create_client_package(self, body: Mapping[str, Any]) -> RemoteClientPackage:
        """Assign a package to a client (creates an overdue payment request).

        Never repeated blindly: when the outcome cannot be known this raises OutcomeUnknownError.
        A ``conversation_id`` is sent as ``matter_uid``, the name the controller reads.
        """
        route, reply = await self._call(calls.create_client_package(body))
        return self._one(route, reply, normalize.client_package)

    async def get_client_package(self, uid: str) -> RemoteClientPackage:
        route, reply = await self._send("get_client_package", uid=uid)
        return self._asked(route, reply, self._one(route, reply, normalize.client_package), uid)

    async def get_client_packages(self, uids: Iterable[str], on_each: Callable[[str], None] | None = None,
                                  ) -> dict[str, RemoteClientPackage | None]:
        """Read many client packages concurrently (within the limits); None for those not found.
        ``on_each(uid)`` is called as each read ends (for progress).

        Any other error stops the others and is raised as it is (the first one, if several).
        """
        ids = list(dict.fromkeys(uids))
        found: dict[str, RemoteClientPackage | None] = {}
        pending = iter(ids)

        async def worker() -> None:  # as many workers as slots, not one task per package
            for uid in pending:
                try:
                    found[uid] = await self.get_client_package(uid)
                except NotFoundError:
                    found[uid] = None
                if on_each is not None:
                    on_each(uid)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(len(ids), self.settings.concurrency)):
                    group.create_task(worker())
        except BaseExceptionGroup as errors:
            raise errors.exceptions[0] from None
        return {uid: found[uid] for uid in ids}

    async def update_client_package(
        self, uid: str, valid_until: date | str | None = None,
        credits: Iterable[tuple[str, int]] | None = None,
    ) -> RemoteClientPackage:
        """Change ``valid_until`` and/or booking credits' ``total_bookings`` (the only mutable fields)."""
        if valid_until is None and credits is None:
            raise ValueError("update_client_package needs valid_until or credits")
        call = calls.update_client_package(uid, valid_until, None if credits is None else list(credits))
        route, reply = await self._call(call)
        return self._one(route, reply, normalize.client_package)

    # -- payment requests (API-NOTES §11; read by remote/discovery.py) -----------------------

    async def list_payment_requests(self, params: Mapping[str, str], pages: list[int] | None = None,
                                    on_rows: Callable[[list[RemotePaymentRequest]], None] | None = None,
                                    ) -> list[RemotePaymentRequest]:
        """Every payment request the filters ``params`` (``filter[...]``, ``sort``) select, walking
        the pages; a page shorter than the spec's default page size (25) ends it.  ``on_rows``
        receives each page's new requests as the page arrives."""
        return await self._pages("list_payment_requests", params, normalize.payment_request,
                                 end_below=PAYMENT_REQUESTS_DEFAULT_PAGE, id_key="uid", pages=pages,
                                 on_rows=on_rows)

    async def get_payment_request(self, uid: str) -> RemotePaymentRequest:
        route, reply = await self._send("get_payment_request", uid=uid)
        return self._one(route, reply, normalize.payment_request)

    # -- clients and services -----------------------------------------------------------------

    async def list_clients(self, search_email: str | None = None,
                           stop: Callable[[list[RemoteClient]], bool] | None = None) -> list[RemoteClient]:
        """Every client of the business, or those the API finds for an e-mail address; ``stop``
        ends the walk after a page (given the clients read so far)."""
        params: dict[str, str] = {}
        if search_email:
            params = {"search_term": search_email, "search_by": "email"}
        return await self._pages("list_clients", params, normalize.client, stop=stop)

    async def find_client_by_email(self, email: str) -> RemoteClient | None:
        """The client whose e-mail equals ``email`` (case-insensitive), or None.

        With several exact matches the API's first is returned; :meth:`clients_with_email` shows them all.
        """
        found = await self.clients_with_email(email)
        return found[0] if found else None

    async def clients_with_email(self, email: str) -> list[RemoteClient]:
        """Every client whose e-mail equals ``email`` (case-insensitive), in the API's order."""
        wanted = email.strip().lower()
        return [c for c in await self.list_clients(search_email=email.strip())
                if (c.email or "").strip().lower() == wanted]

    async def list_services(self) -> list[RemoteService]:
        return await self._pages("list_services", {"business_id": self.target.business_id},
                                 normalize.service)


def _answered_for_another(call: calls.Call, got: RemoteCatalogPackage | RemoteClientPackage) -> str:
    """What is wrong when the object of a write's answer is not the one the request was about
    ("" when it is): a package of another id than the path's, a new client package of another
    client or catalog package than the body's, or a new catalog package of another name (tracked,
    the client packages sold "of it" would be sales of that other package)."""
    for key in ("uid", "package_id"):
        want = call.params.get(key)
        if isinstance(want, str) and got.id != want:
            return f"package {got.id}, not {want}, the one the request changed"
    body = call.body or {}
    if call.route == "create_client_package" and isinstance(got, RemoteClientPackage):
        for field in ("client_id", "package_id"):
            want = body.get(field)
            if isinstance(want, str) and getattr(got, field) != want:
                return (f"a client package ({got.id}) of {field.removesuffix('_id')} {getattr(got, field)}, "
                        f"not {want}, the one it was asked to create")
    if call.route == "create_catalog_package" and isinstance(got, RemoteCatalogPackage):
        want = body.get("name")  # the create's body is flat (calls.create_catalog_package)
        if isinstance(want, str) and got.name.strip() != want.strip():
            return f"a catalog package ({got.id}) named {got.name!r}, not {want!r}, the one it was asked to create"
    return ""
