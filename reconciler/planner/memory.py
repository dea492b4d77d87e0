"""What the plan does with the second memory: client packages vcita showed through the business's
payment requests (``Actual.discovered``, API-NOTES §11).  Pure, like the rest of the planner.

* A client-package create whose answer was lost (a pending record) is **adopted** when exactly one
  client package of that client, opened since the intent was written (less :data:`CLOCK_SKEW`),
  matches what was sent (catalog package, and ``valid_from`` / ``valid_until`` / price when they
  were sent); several are listed for a person to choose; none is reported with where and since
  when the search looked, and stays of unknown outcome: absence is only evidence (the list may
  lag, a package of price 0 may open no payment request), so re-creating it needs a person's
  explicit ``reconciler state forget-intent`` and a reviewed plan.
* A create whose identity (client, catalog package, ``valid_from`` when declared) matches a client
  package vcita has and the state does not know (a lost, foreign or *older* state: a restored
  copy) is **refused** with the command that adopts it, ``reconciler import --discover``.

  The rule is a count, and it holds for ``repeat_purchase: true`` objects too: for an identity, vcita
  holds T packages the state tracks plus N that no record owns; the manifests declare the T tracked
  objects plus M untracked ones (repeats included), and the plan would create M.  Creating is safe
  only while vcita never holds more than the manifests declare: T + N + M <= T + M, i.e. N = 0.  A
  repeat object asks for one sale *more than the state tracks*, and a state restored from an older
  copy tracks too few, so ``repeat_purchase`` is no exemption.  When N > 0 every create of the
  identity is refused, naming N and the ids; ``import --discover`` adopts min(N, M) of them
  (deterministically, ``discover_import.py``) and the next plan creates the M - N still missing.
* A create for a client the list cannot vouch for (one of its payment requests links back to no
  package; the list leaves out a package the state tracks for it) is refused, naming the way out:
  a person who checked the client's packages in vcita plans with ``--checked-client`` (the
  client is in ``Discovered.checked``), and the create goes ahead with a warning saying so.  A
  package vcita is seen to hold is never waived.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from reconciler.model.manifest import ClientPackageSpec
from reconciler.plan.document import Problem, fingerprint
from reconciler.plan.operations import ABSENT, CreateClientPackage, Operation, ResolvePendingCreate
from reconciler.planner import identity as ident
from reconciler.planner.actual import Discovered, PendingLike, RemoteObject

#: How far before an intent's time a found package may have been opened to be adopted on its own
#: (clock skew between this machine and vcita); the search looks further back
#: (``remote.discovery.SEARCH_MARGIN``), so that one opened earlier is found and refused, not missed.
CLOCK_SKEW = timedelta(minutes=15)
#: The fields of a pending create's details compared with a found package's view.
SENT_FIELDS = ("package_id", "valid_from", "valid_until", "price")


def moment(text: str | None) -> datetime | None:
    """An ISO time with its offset (``Z`` for UTC); None when absent, unreadable or naive."""
    if not text:
        return None
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def has_sent(view: dict[str, Any], details: dict[str, Any]) -> bool:
    """Whether a client package's ``view`` holds every value a pending create sent (``details``:
    its client, and the catalog package, dates and price it sent): it may be that create's package."""
    return view.get("client_id") == details.get("client_id") and all(
        view.get(k) == details[k] for k in SENT_FIELDS if details.get(k) is not None)


def _opened_since(obj: RemoteObject, d: Discovered, opened_at: str) -> bool:
    when, since = moment(d.opened_at.get(obj.id)), moment(opened_at)
    return when is None or since is None or when >= since - CLOCK_SKEW


def resolve_client(it: PendingLike, base: dict[str, Any], discovered: Discovered | None, taken: Collection[str],
                   *, in_manifests: bool, elsewhere: Sequence[tuple[str, Any]] = ()) -> ResolvePendingCreate:
    """The resolution of a client package's pending create, looked up in the second memory
    (``elsewhere``: records of its client and catalog package at other addresses, named when one
    may be its package, imported there by hand)."""
    details = it.details
    client = str(details.get("client_id"))
    intro = (f"unknown outcome of an earlier create (intent {it.id}, {it.opened_at}): client {client}, "
             f"package {details.get('package_id')}")
    fix = (f"Check vcita, then run 'reconciler import {it.address} UID' or 'reconciler state forget-intent "
           f"{it.address}'" if in_manifests else
           f"Check vcita, then run 'reconciler state forget-intent {it.address}' (it is no longer in the "
           "manifests, so it cannot be imported)")
    searched = discovered.searched.get(client) if discovered is not None else None
    if discovered is None or searched is None:
        return ResolvePendingCreate(**base, resolution="unknown", reason=f"{intro}. {fix}")
    if discovered.unavailable:
        return ResolvePendingCreate(**base, resolution="unknown",
                                    reason=f"{intro}; vcita's payment requests could not serve as a second memory "
                                           f"({discovered.unavailable}). {fix}")
    found = sorted(
        (obj for obj in discovered.of_client(client)
         if obj.id not in taken and obj.view.get("client_id") == client and _opened_since(obj, discovered, it.opened_at)
         and has_sent(obj.view, {**details, "client_id": client})),
        key=lambda obj: obj.id)
    if len(found) == 1:
        obj = found[0]
        return ResolvePendingCreate(
            **base, resolution="adopt", remote_id=obj.id, remote_fingerprint=fingerprint(obj.view), expects=ABSENT,
            reason=(f"an interrupted run had created {obj.id} (intent {it.id}, {it.opened_at}) without hearing back: "
                    "found through its payment request "
                    f"(opened {discovered.opened_at.get(obj.id, 'at an unknown time')}), "
                    "it is adopted; no request is sent"))
    if found:
        ids = ", ".join(obj.id for obj in found)
        return ResolvePendingCreate(
            **base, resolution="unknown",
            reason=(f"{intro}: {len(found)} client packages in vcita match it ({ids}), found through their payment "
                    f"requests; adopt the right one with 'reconciler import {it.address} ID'"))
    return ResolvePendingCreate(
        **base, resolution="unknown",
        reason=(f"{intro}: not found in vcita's payment requests (searched {searched}). Absence is only evidence: "
                "the list may lag behind creation, and a package of price 0 may open no payment request. Plan again "
                f"later; once sure it was never created, 'reconciler state forget-intent {it.address}' and review the "
                "plan that creates it again" + _recorded_elsewhere(it, elsewhere)))


def _recorded_elsewhere(it: PendingLike, elsewhere: Sequence[tuple[str, Any]]) -> str:
    """A sentence naming the records of another address that match what a pending create sent and
    were written after it: its package imported there by hand, most likely (the search does not
    read tracked packages again, so it never finds it for this address)."""
    since = moment(it.opened_at)
    same = [(a, t) for a, t in elsewhere if has_sent(t.applied, it.details) and since is not None
            and (when := moment(getattr(t, "updated_at", None))) is not None and when >= since]
    if not same:
        return ""
    a, t = same[0]
    return (f". {a} tracks {t.id}, which matches what this create sent and was recorded after it "
            f"({getattr(t, 'updated_at', '')}): if it was imported there by hand, it is this create's package, and "
            f"'reconciler state forget-intent {it.address}' closes this record (the plan then judges {it.address} "
            f"beside {a}: a second sale, refused unless it says repeat_purchase)")


def already_in_vcita(address: str, spec: ClientPackageSpec, client_id: str, package_id: str,
                     discovered: Discovered | None, owned: Container[str],
                     replaces: str | None = None) -> Problem | None:
    """The plan error when a create's identity matches client packages vcita has and no record of
    the state owns (None: no such package, or the second memory was not read).  Repeat purchases
    are guarded too: see the count rule in the module docstring.  ``replaces``: the create is the
    replacement of that tracked package (which the state owns); it is matched on the whole
    identity its manifest declares, price included (the packages the address was replaced from
    earlier stay in vcita, untracked, with their old values): one found is likely the
    replacement another run made with an older copy of the state."""
    if discovered is None or discovered.unavailable:
        return None
    checked = client_id in discovered.checked  # a person vouched for it: checked_warning says so instead
    way_out = (f" If you checked client {client_id}'s packages in vcita and this one is not there, plan again "
               f"with '--checked-client {client_id}' (the plan then shows the create with a warning).")
    doubtful = _doubtful(client_id, discovered)
    if doubtful and not checked:
        shown = ", ".join(doubtful[:5]) + (f" and {len(doubtful) - 5} more" if len(doubtful) > 5 else "")
        return Problem(
            address=address, severity="error",
            message=(f"{len(doubtful)} payment request(s) of client {client_id} for a client package ({shown}) link "
                     "back to no client package: each may stand for a package vcita holds and the list cannot show, "
                     "perhaps this one, so creating it could bill the client a second time"),
            hint=(f"Check the client's packages in vcita: if this one exists, 'reconciler import {address} ID'."
                  f"{way_out} 'reconciler doctor' checks the second memory of this target."))
    unlisted = discovered.unlisted.get(client_id, ())
    if unlisted and not checked:
        return Problem(
            address=address, severity="error",
            message=(f"vcita's payment request list does not show {len(unlisted)} client package(s) the state tracks "
                     f"for client {client_id} ({', '.join(unlisted[:5])}): it lags behind or leaves packages out, so "
                     "not finding this one there proves nothing, and creating it could bill the client a second time"),
            hint=("Plan again in a few minutes (a new payment request may take a while to appear); if it persists, "
                  f"'reconciler doctor' checks the second memory of this target.{way_out}"))
    want: dict[str, Any] = {"client_id": client_id, "package_id": package_id}
    if spec.valid_from is not None:
        want["valid_from"] = spec.valid_from.isoformat()
    if replaces is not None:
        # the packages this address was replaced from stay in vcita untracked, of the same client
        # and catalog package: only one of the identity the replacement makes (its price too) is
        # one another run made
        want = ident.desired_client(spec, client_id, package_id)
    found = sorted(obj.id for obj in discovered.of_client(client_id)
                   if obj.id not in owned and ident.matches(obj.view, want))
    if not found:
        return None
    what = ident.describe("ClientPackage", want)
    where = (f"{len(found)} client packages of the {what} exist in vcita ({', '.join(found)})" if len(found) > 1 else
             f"a client package of the {what} already exists in vcita as {found[0]}")
    repeat = (" This object is a repeat purchase, but a repeat asks for one sale more than the state tracks, and "
              "this state tracks fewer than vcita holds." if spec.repeat_purchase else "")
    if replaces is not None:
        return Problem(
            address=address, severity="error",
            message=(f"the replacement of {replaces} would be a new client package of the {what}, and {where} (found "
                     f"through the payment requests) that no record of the state owns: another run may have made "
                     f"this replacement with another copy of the state; replacing again would bill the client a "
                     f"second time"),
            hint=(f"If {found[0]} is the replacement, track it instead of {replaces}: 'reconciler state rm {address}' "
                  f"(which archives {replaces}), then 'reconciler import {address} {found[0]}'. If it is not, assign "
                  "it to a manifest object with 'reconciler import', then plan again."))
    return Problem(
        address=address, severity="error",
        message=(f"{where} (found through the payment requests), and no record of the state owns "
                 f"{'them' if len(found) > 1 else 'it'} (a lost or older copy of the state, or an assignment made "
                 "outside reconciler): creating would make vcita hold more of them than the manifests declare and "
                 f"would bill the client a second time.{repeat}"),
        hint=(f"Adopt {'them' if len(found) > 1 else 'it'} with 'reconciler import --discover' (it adopts as many as "
              f"the manifests declare, oldest first; the next plan creates only what is still missing), or "
              f"'reconciler import {address} {found[0]}'. A further sale is planned once vcita holds no package "
              "of this identity that the state does not know."))


def sold_meanwhile(address: str, client_id: str, catalog_address: str, catalog_name: str,
                   discovered: Discovered | None, owned: Container[str], listed: Container[str],
                   now: datetime | None, lag: timedelta) -> Problem | None:
    """The plan error when a client package create of a catalog package this plan creates itself
    (no id yet, so no identity to match) finds, through the payment requests, a package of that
    catalog package's display name sold to the client within the list's lag, of a catalog package
    the catalog list does not show (None: no such package, or the second memory was not read).

    That is another run's apply moments ago, with another copy of the state (a CI runner whose
    checkout predates the state commit of the job before it): it created the catalog package,
    which vcita's list hides for a while after creation (API-NOTES §8), and sold it.  Planned
    from the list, this plan would create a second catalog package of that name and sell it to
    the client again.  ``lag``: how long the list may hide a new package (plus the clocks'
    margins); an older sale, or one of a catalog package the list shows, is not this."""
    if discovered is None or discovered.unavailable or not discovered.names:
        return None
    since = None if now is None else now - lag - CLOCK_SKEW
    found = sorted(
        (obj for obj in discovered.of_client(client_id)
         if obj.id not in owned and obj.view.get("client_id") == client_id
         and discovered.names.get(obj.id) == catalog_name
         and str(obj.view.get("package_id")) not in listed and str(obj.view.get("package_id")) not in owned
         and (since is None or (when := moment(discovered.opened_at.get(obj.id))) is None or when >= since)),
        key=lambda obj: obj.id)
    if not found:
        return None
    first = found[0]
    shown = ", ".join(f"{obj.id} (catalog package {obj.view.get('package_id')}, payment request opened "
                      f"{discovered.opened_at.get(obj.id, 'at an unknown time')})" for obj in found[:3])
    return Problem(
        address=address, severity="error",
        message=(f"client {client_id} was sold a package named {catalog_name!r} moments ago ({shown}), of a catalog "
                 f"package vcita's catalog list does not show yet (it lags behind creation) and no record of the "
                 f"state knows: another run, with another copy of the state, very likely created "
                 f"{catalog_address} and sold it; this plan would create a second catalog package of that name and "
                 "bill the client a second time"),
        hint=(f"Plan again once the catalog list shows catalog package {first.view.get('package_id')} (vcita's list "
              "lags up to about 20 s): the plan then adopts it by its name, and 'reconciler import --discover' adopts "
              "the client packages that run sold. Better: restore the newest state (that run's) first."))


def _doubtful(client_id: str, discovered: Discovered) -> list[str]:
    return sorted({*discovered.doubtful.get(client_id, ()), *discovered.doubtful.get(None, ())})


def checked_warning(address: str, client_id: str, discovered: Discovered | None) -> list[Problem]:
    """The warning on a create that goes ahead only because a person checked its client in vcita
    (``--checked-client``) although its payment requests cannot vouch for it; none otherwise."""
    if discovered is None or discovered.unavailable or client_id not in discovered.checked:
        return []
    doubtful, unlisted = _doubtful(client_id, discovered), discovered.unlisted.get(client_id, ())
    reasons = []
    if doubtful:
        reasons.append(f"{len(doubtful)} of its payment requests link back to no client package "
                       f"({', '.join(doubtful[:5])})")
    if unlisted:
        reasons.append(f"the list does not show {len(unlisted)} package(s) the state tracks for it "
                       f"({', '.join(unlisted[:5])})")
    if not reasons:
        return []
    why = "; ".join(reasons)
    return [Problem(address=address, severity="warning",
                    message=(f"created although vcita's payment requests cannot vouch for client {client_id} ({why}): "
                             f"'--checked-client {client_id}' says a person checked this client's packages in vcita"))]


def unavailable_warning(ops: Iterable[Operation], discovered: Discovered | None) -> list[Problem]:
    """A warning that creates were planned from the state alone (the second memory failed)."""
    if discovered is None or not discovered.unavailable:
        return []
    creates = sum(1 for op in ops if isinstance(op, CreateClientPackage) and not op.replaces)
    if not creates:
        return []
    return [Problem(address="target", severity="warning",
                    message=(f"{creates} client package create(s) were checked against the state alone: vcita's "
                             f"payment requests could not serve as a second memory ({discovered.unavailable})"))]
