"""What the plan does about creates an interrupted run left pending (the state's pending records).

A create is recorded as pending in the state before it is sent; a run killed or cut off before
its outcome was recorded leaves the record.  The refresh hands the pending records over, and
:func:`resolve` turns each into a :class:`ResolvePendingCreate` that the plan shows and apply
carries out, deciding nothing:

* the state already records the address: ``created``, for a catalog package;
* a catalog package (they can be listed): exactly one untracked package with the create's name is
  ``adopt``-ed; none, in a list read once the list could no longer be hiding it
  (``reconciler.core.listlag``: the refresh waits for that), means the create never reached vcita
  (``not_created``: the plan's create sends it again); none in a list read earlier proves
  nothing (``unknown``: plan again later); several cannot be told apart (``unknown``);
* a client package is looked for in vcita's payment requests (the second memory, ``memory.py``):
  exactly one match is ``adopt``-ed; otherwise its outcome is ``unknown`` until a person checks
  vcita and imports or forgets it; apply leaves the address alone meanwhile.

Without a refresh (``--no-refresh``) nothing can be looked up: an untracked catalog package's
pending create is ``unknown`` too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from reconciler.core.listlag import parse_utc, utc_stamp
from reconciler.plan.operations import ABSENT, ExpectedState, ResolvePendingCreate
from reconciler.planner.actual import Actual, PendingLike


class TrackedId(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...


def resolve(it: PendingLike, tracked: TrackedId | None, actual: Actual, taken: Collection[str],
            by_name: Mapping[str, list[str]], *, in_manifests: bool,
            elsewhere: Sequence[tuple[str, Any]] = ()) -> ResolvePendingCreate:
    """The resolution of one pending create; ``taken`` are remote ids owned by an address already;
    ``elsewhere``: the records (address, record) of its client and catalog package at other addresses."""
    from reconciler.plan.document import fingerprint

    base: dict[str, Any] = {"address": it.address, "intent_id": it.id, "opened_at": it.opened_at,
                            "details": dict(it.details)}
    since = f"intent {it.id}, {it.opened_at}"
    if it.kind == "ClientPackage":
        from reconciler.planner.memory import resolve_client

        op = resolve_client(it, base, actual.discovered, taken, in_manifests=in_manifests, elsewhere=elsewhere)
        if op.resolution == "adopt" and tracked is not None and it.details.get("replaces") == tracked.id:
            # an interrupted replacement: adopting its package replaces the record the address tracks
            op = replace(op, expects=ExpectedState(present=True, id=tracked.id, fingerprint=tracked.fingerprint))
        return op
    name = str(it.details.get("name"))
    if tracked is not None:
        return ResolvePendingCreate(
            **base, resolution="created", remote_id=tracked.id,
            expects=ExpectedState(present=True, id=tracked.id, fingerprint=tracked.fingerprint),
            reason=f"an interrupted run created it ({since}); the state records it as {tracked.id}")
    if not actual.refreshed:
        return ResolvePendingCreate(
            **base, resolution="unknown",
            reason=(f"unknown outcome of an earlier create ({since}) of a catalog package named {name!r}: "
                    "planned without a refresh, so vcita was not looked at; plan again with a refresh"))
    found = sorted(rid for rid in by_name.get(name, []) if rid not in taken)
    if len(found) == 1:
        obj = actual.catalog_packages[found[0]]
        return ResolvePendingCreate(
            **base, resolution="adopt", remote_id=found[0], remote_fingerprint=fingerprint(obj.view),
            expects=ABSENT,
            reason=f"an interrupted run had created {found[0]} ({name!r}, {since}) without hearing back: it is adopted")
    if not found:
        try:
            settled = actual.list_lag.settled_at(it.opened_at)
        except ValueError:
            return ResolvePendingCreate(
                **base, resolution="unknown",
                reason=(f"unknown outcome of an earlier create ({since}) of a catalog package named {name!r}: its "
                        f"time cannot be read, so vcita's lagging list proves nothing; adopt it with 'reconciler "
                        f"import {it.address} ID' or drop it with 'reconciler state forget-intent {it.address}'"))
        when: dict[str, Any] = {"listed_at": actual.catalog_listed_at, "settled_at": utc_stamp(settled)}
        if actual.catalog_listed_at is None or parse_utc(actual.catalog_listed_at) < settled:
            return ResolvePendingCreate(
                **base, resolution="unknown", **when,
                reason=(f"unknown outcome of an earlier create ({since}) of a catalog package named {name!r}: "
                        f"vcita's package list, which lags creation, may not show it before {when['settled_at']}; "
                        "plan again after that"))
        return ResolvePendingCreate(
            **base, resolution="not_created", expects=ABSENT, **when,
            reason=f"an interrupted create ({since}) never reached vcita (no untracked package is named {name!r})")
    return ResolvePendingCreate(
        **base, resolution="unknown",
        reason=(f"unknown outcome: {len(found)} untracked packages named {name!r} ({', '.join(found)}); "
                f"adopt one with 'reconciler import {it.address} ID'"))
