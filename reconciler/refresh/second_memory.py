"""Where the plan reads the second memory: vcita's payment requests, for the clients that need it.

A plan is made from the state and the refresh first.  When it would create client packages, or
holds creates of unknown outcome, the clients concerned are searched through the business's
payment requests (``remote/discovery.py``) and the plan is made again with what was found
(``Actual.discovered``): a lost answer's package is adopted, and a create that matches a package
vcita has but the state does not know is refused (``planner/memory.py``).  Creates of a client are
searched over all time; a pending create's client from the day of its intent, less a clock-skew
margin.

A plan that creates client packages walks the **business-wide** list and keeps the packages whose
own ``client_id`` (read from the package the request links to) is a client it creates for: the
list's client filter and ``client_uid`` are labels a server can get wrong, and a request filed
under a client the plan does not search would hide a package the create would duplicate.  Cost:
the business's client-package payment requests in pages of 100 (until one shorter than 25) plus
one GET per package listed that the state does not track (the tracked ones were just read by the
refresh); a plan without such creates reads none of it.  A plan whose only need is a lost answer
(no create) searches its clients one by one, from the day of the intent (cheaper, and a miss there
re-creates nothing: it is reported for a person).

A saved plan (a business's, or each business's of a fleet plan) is applied later, and a plan shown
at apply's prompt is applied once the user has read it: :func:`recheck_saved` looks again, just
before apply sends anything, at the catalog list and for the clients it creates for, and refuses
the plan when vcita now holds what it would create, unknown to the state (another runner with its
own state applied meanwhile, an assignment in the UI): a client package of a planned create's
identity, a catalog package of a planned create's name, or, for a client package of a catalog
package the plan creates itself, a package of that name sold to the client since the plan was made.

A list that leaves out packages the state tracks for a client (it lags) cannot vouch for that
client: its creates are refused (``Discovered.unlisted``).  When the API does not serve the list as
the spec says (refused, another shape, nothing links back, or it names none of the packages the
state tracks for the clients searched), the plan falls back to what the state alone knows, and
says so (a warning when it creates client packages).  Transient failures (5xx, 429,
timeouts after every retry) fail the plan: a guard that could not look is not skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from reconciler.core.errors import PlanFileError
from reconciler.plan.document import Plan, Problem
from reconciler.plan.operations import CreateCatalogPackage, CreateClientPackage, ResolvePendingCreate
from reconciler.planner import Actual, from_client_package
from reconciler.planner.actual import Discovered
from reconciler.planner.memory import CLOCK_SKEW, moment
from reconciler.remote.client import VcitaClient
from reconciler.remote.discovery import Discovery, DiscoveryUnavailable, discover, since_intent

log = logging.getLogger("reconciler.refresh.second_memory")
_warnings = logging.getLogger("reconciler.warnings")  # printed by the CLI as "Warning: ..." lines


def clients_to_search(plan: Plan) -> dict[str, date | None]:
    """The clients a plan needs the second memory for, and the day to search each from."""
    wanted: dict[str, date | None] = {}
    for op in plan.operations:
        if isinstance(op, CreateClientPackage):  # a replacement is a sale too
            wanted[op.client_id] = None
        elif (isinstance(op, ResolvePendingCreate) and op.resolution == "unknown" and op.kind == "ClientPackage"
              and op.details.get("client_id")):
            client = str(op.details["client_id"])
            since = since_intent(op.opened_at)
            if client not in wanted:
                wanted[client] = since
            elif wanted[client] is not None:
                wanted[client] = None if since is None else min(since, wanted[client])  # type: ignore[type-var]
    return wanted


def creates_client_packages(plan: Plan) -> bool:
    """Whether ``plan`` creates a client package (a replacement of one too)."""
    return any(isinstance(op, CreateClientPackage) for op in plan.operations)


def as_discovered(found: Discovery, clients: Sequence[str]) -> Discovered:
    """The planner's view of a discovery over ``clients``."""
    described = {s.client_id: s.describe() for s in found.searches}
    wide = described.get(None)
    return Discovered(
        packages={cp.id: from_client_package(cp) for cp in found.packages},
        opened_at=dict(found.opened_at),
        searched={c: described.get(c) or wide or "" for c in clients},
        doubtful=dict(found.doubtful),
        names={cp.id: cp.name for cp in found.packages if cp.name},
    )


def unlisted(found: Discovery, clients: Mapping[str, date | None], actual: Actual) -> dict[str, tuple[str, ...]]:
    """Per client searched over all time, the client packages the state tracks for it (each with a
    price, so each opened a payment request) that the list did not name.  A list that leaves out
    what is known to exist (it lags) proves nothing by what it leaves out: the planner refuses
    creates for those clients (``planner/memory.py``).  A list that names none of them at all is
    no second memory on this target: ``replan`` falls back to the state alone, and says so."""
    out: dict[str, list[str]] = {}
    for rid, obj in actual.client_packages.items():
        if obj is None:
            continue
        client = str(obj.view.get("client_id"))
        if client not in clients or clients[client] is not None or rid in found.seen_known:
            continue
        if obj.view.get("price") not in (None, "0"):
            out.setdefault(client, []).append(rid)
    return {c: tuple(sorted(ids)) for c, ids in out.items()}


async def replan(api: VcitaClient, plan: Plan, actual: Actual, make: Callable[[Actual], Plan],
                 checked: frozenset[str] = frozenset()) -> Plan:
    """``plan`` made again with the second memory of the clients it needs (``plan`` itself when
    it needs none, or was made without a refresh); ``checked``: clients a person vouched for."""
    if not actual.refreshed:
        return _unused(plan, checked)
    clients = clients_to_search(plan)
    if not clients:
        return _unused(plan, checked)
    # The client packages the state tracks were just read by the refresh: not read again (only
    # packages no record knows matter here, and in a healthy state they are few).
    known = {rid: obj.payment_request_id for rid, obj in actual.client_packages.items() if obj is not None}
    try:
        found = await discover(api, clients, known=known, wide=creates_client_packages(plan))
    except DiscoveryUnavailable as exc:
        log.warning("second memory unavailable: %s", exc.message)
        discovered = Discovered(searched=dict.fromkeys(clients, ""), unavailable=exc.message)
    else:
        missing = unlisted(found, clients, actual)
        if missing and not found.seen_known and not found.packages:
            # it showed none of what is known to exist: this target's list is no second memory
            # (the spec's inference does not hold here, or it answers empty): the state alone, said
            why = (f"the payment request list named none of the {sum(map(len, missing.values()))} client package(s) "
                   "the state tracks for the clients searched, each of which opened a payment request: what it does "
                   "not list proves nothing")
            log.warning("second memory unavailable: %s", why)
            discovered = Discovered(searched=dict.fromkeys(clients, ""), unavailable=why)
        else:
            discovered = replace(as_discovered(found, list(clients)), unlisted=missing, checked=checked)
        log.info("second memory: %d client package(s) of %d client(s) found through payment requests",
                 len(found.packages), len(clients))
    return _unused(make(replace(actual, discovered=discovered)), checked, discovered)


def _unused(plan: Plan, checked: frozenset[str], discovered: Discovered | None = None) -> Plan:
    """``plan`` with a warning naming each ``--checked-client`` that waived nothing (a mistyped id
    must not look like a check that was taken into account)."""
    if not checked:
        return plan
    doubted = set() if discovered is None or discovered.unavailable else (
        {c for c, uids in discovered.doubtful.items() if uids} | {c for c, ids in discovered.unlisted.items() if ids})
    searched = discovered.searched if discovered is not None else {}  # the clients the plan creates for
    used = {c for c in checked if (c in doubted or None in doubted) and c in searched}
    extra = tuple(Problem(address="target", severity="warning",
                          message=(f"--checked-client {cid}: vcita's payment requests vouch for this client, or the "
                                   "plan creates nothing for it: the option changed nothing (is the id right?)"))
                  for cid in sorted(checked - used))
    return plan.model_copy(update={"problems": plan.problems + extra}) if extra else plan


async def recheck_saved(api: VcitaClient, plan: Plan, resources: Any, archived: Any, pending: Any = None, *,
                        blind: str = "warn", checked: frozenset[str] = frozenset()) -> None:
    """Refuse (PlanFileError, exit 1, nothing sent) a plan made earlier (saved, or confirmed at
    the prompt) that would create what vcita got since, unknown to the state:

    * a client package of a planned create's identity (client, catalog package, ``valid_from``);
    * a catalog package of a planned create's name (the planner adopts one by name: it is
      another run's, and so are the sales this plan would make of its own copy);
    * for a client package of a catalog package this plan creates, a package of that name the
      client was sold since the plan was made (another run created the catalog package and sold
      it, and the catalog list may not show it yet);
    * a payment request of a client it creates for that links back to no client package (it may
      stand for such a package, which the list cannot show), unless the client is in ``checked``.

    Another runner with its own state (a CI job that started empty, a second branch) that
    applied meanwhile leaves exactly these; applying the plan would bill its clients again.
    ``pending``: the state's pending records (their addresses are left to the applier).

    When the payment requests cannot be read (this target's list is no second memory, or not
    now), nothing can be seen, and ``blind`` says what the state is worth: ``"warn"`` (a plan
    made moments ago in this run from this very state: go on, saying so), ``"shared"`` (a state
    database every runner writes: the saved plan's serial, checked by the applier, proves no
    apply since) or ``"refuse"`` (a state file: a copy another runner never saw, a CI runner that
    restored an older one, may have applied since, and the serial cannot tell).  Refused, the
    client-package creates go ahead only for the clients in ``checked`` (a person looked at
    their packages in vcita)."""
    # An address with a pending create (an interrupted run of this very plan, whose answer was
    # lost) is the applier's to refuse, naming it: its package is no other run's.
    held = {pc.address for pc in (pending or {}).values()}
    creates = [op for op in plan.operations if isinstance(op, CreateClientPackage) and op.address not in held]
    catalog = {op.address: op for op in plan.operations if isinstance(op, CreateCatalogPackage)}
    if not (creates or catalog) or not plan.refreshed:
        return
    owned = {rs.id for rs in resources.values()} | {r.id for r in archived.values()}
    owned |= {str(rid) for op in plan.operations if isinstance(rid := getattr(op, "remote_id", None), str)}
    # (the objects the plan itself adopts are the plan's, not new)
    made: list[str] = []
    if catalog:
        names = {op.spec.name: address for address, op in catalog.items()}
        listed = await api.list_catalog_packages(include_items=False)
        got: dict[str, list[str]] = {}
        for pkg in listed:
            if pkg.id not in owned and pkg.name in names and not pkg.deleted_at:
                got.setdefault(names[pkg.name], []).append(pkg.id)
        made += [f"{address} (named {catalog[address].spec.name!r}: {', '.join(sorted(ids))})"
                 for address, ids in sorted(got.items())]
    clashes: list[str] = []
    if creates:
        found: Discovery | None = None
        try:
            walked = await discover(api, {op.client_id: None for op in creates}, known=owned, wide=True)
        except DiscoveryUnavailable as exc:
            log.warning("second memory unavailable at apply: %s", exc.message)
            _blind(creates, exc.message, blind, checked)
        else:
            found = walked
            # a list that names none of the client packages the state tracks (each with a price
            # opened a payment request) and nothing else either is no second memory (as replan says)
            priced = {rs.id for rs in resources.values()
                      if rs.kind == "ClientPackage" and rs.applied.get("price") not in (None, "0")}
            if priced and not (walked.seen_known & priced) and not walked.packages:
                _blind(creates, f"the payment request list named none of the {len(priced)} client package(s) the "
                                "state tracks, each of which opened a payment request: what it does not list "
                                "proves nothing", blind, checked)
            _doubted(creates, walked, checked)
        seen = [] if found is None else [cp for cp in found.packages if cp.id not in owned]
        since = moment(plan.created_at)
        for op in creates:
            if isinstance(op.package_id, str):
                # a replacement, on its price too: what earlier replacements of the address left in
                # vcita (untracked, their old price) is not another run's (as the planner matches)
                same = sorted(cp.id for cp in seen if cp.client_id == op.client_id and cp.package_id == op.package_id
                              and (op.valid_from is None or cp.valid_from == op.valid_from)
                              and (not op.replaces or op.price is None or cp.price == op.price))
            else:  # a catalog package this plan creates: another run's copy has another id, the same name
                spec = catalog.get(op.package_id.id_of)
                same = [] if spec is None or found is None or since is None else sorted(
                    cp.id for cp in seen if cp.client_id == op.client_id and cp.name == spec.spec.name
                    and _opened_after(found.opened_at.get(cp.id), since))
            if same:
                clashes.append(f"{op.address} ({', '.join(same)})")
    if made or clashes:
        parts = [f"{len(made)} of the catalog packages"] if made else []
        parts += [f"{len(clashes)} of the client packages"] if clashes else []
        raise PlanFileError(
            f"since this plan was made, vcita got {' and '.join(parts)} it would create, unknown to the state "
            f"(another run's apply, or a change in vcita): {'; '.join(made + clashes)}; applying it would create "
            "them again" + (" and bill these clients a second time" if creates else "") + ", so nothing was applied",
            hint="Adopt them with 'reconciler import --discover' (it adopts the client packages it finds and the "
                 "catalog packages they name), then make a new plan and review it.")


def _doubted(creates: Sequence[CreateClientPackage], found: Discovery, checked: frozenset[str]) -> None:
    """Refuse (as the plan does, ``planner/memory.py``) creates for a client one of whose payment
    requests links back to no client package: it may stand for a package another run made since
    the plan, which the list cannot show; a client in ``checked`` (a person looked) goes ahead."""
    doubted: dict[str, list[str]] = {}
    for op in creates:
        uids = {*found.doubtful.get(op.client_id, ()), *found.doubtful.get(None, ())}
        if uids and op.client_id not in checked:
            doubted.setdefault(op.client_id, sorted(uids))
    if not doubted:
        return
    shown = "; ".join(f"client {c}: {', '.join(uids[:3])}{' and more' if len(uids) > 3 else ''}"
                      for c, uids in sorted(doubted.items())[:5])
    named = " ".join(f"--checked-client {c}" for c in sorted(doubted)[:5]) + (" ..." if len(doubted) > 5 else "")
    raise PlanFileError(
        f"this plan, made earlier, creates client packages for {len(doubted)} client(s) some of whose payment "
        f"requests link back to no client package ({shown}): each may stand for a package vcita got since the "
        "plan was made (another run's) that the list cannot show, so applying could bill these clients a second "
        "time; nothing was applied",
        hint=(f"Check these clients' packages in vcita: if one of the creates is there, 'reconciler import ADDRESS "
              f"ID' it and make a new plan; if none is, apply the plan with {named}."))


def _blind(creates: Sequence[CreateClientPackage], why: str, blind: str, checked: frozenset[str]) -> None:
    """What apply does when it cannot look in vcita for the client packages a plan made earlier
    creates (see :func:`recheck_saved`'s ``blind``)."""
    clients = sorted({op.client_id for op in creates} - checked)
    n = len(creates)
    if blind == "shared" or (blind == "warn" and clients):
        shown = ", ".join(op.address for op in creates[:3]) + (f" and {n - 3} more" if n > 3 else "")
        vouch = ("the state database vouches that no apply happened since the plan was made" if blind == "shared"
                 else "they are checked against this state alone, as the plan said")
        _warnings.warning("vcita's payment requests could not be read to check again the %d client package "
                          "create(s) of this plan (%s): %s", n, shown, vouch)
        return
    if blind == "warn":
        return
    if not clients:
        _warnings.warning("vcita's payment requests could not be read to check again the %d client package "
                          "create(s) of this plan: they go ahead because --checked-client says a person checked "
                          "the packages of their clients in vcita", n)
        return
    named = " ".join(f"--checked-client {c}" for c in clients[:5]) + (" ..." if len(clients) > 5 else "")
    raise PlanFileError(
        f"this plan, made earlier, creates {n} client package(s), and vcita's payment requests cannot be read "
        f"to check that no other run created them since ({why}); the state cannot vouch for it either: it is a "
        "file, and another copy of it (another CI runner's, an older one restored) may have been applied since "
        "without this one knowing, so applying could bill these clients a second time; nothing was applied",
        hint=(f"Check the packages of the {len(clients)} client(s) in vcita; if none of these creates is there, "
              f"apply the plan with {named}; if one is, 'reconciler import ADDRESS ID' it and make a new plan. "
              "'reconciler doctor' says whether this target's payment requests can be read. A state kept in "
              "PostgreSQL, shared by every runner, vouches for itself."))


def _opened_after(opened_at: str | None, since: datetime) -> bool:
    """Whether a package whose payment request was opened at ``opened_at`` (vcita's clock) may be
    newer than ``since`` (this machine's), within the planner's clock-skew margin; unknown: yes."""
    when = moment(opened_at)
    return when is None or when >= since - CLOCK_SKEW
