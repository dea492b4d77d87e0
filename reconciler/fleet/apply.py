"""``apply --all``: apply every business folder of a fleet, each under its own state lock.

Each business (see :mod:`reconciler.fleet.businesses` for the layout, targets and ``--shard``) is applied
as ``reconciler apply`` would apply it alone: its state lock is taken first (a business whose
lock another run holds is reported as an error in its row, and the others go on), then either
its plan from a saved fleet plan (``plan --all --out FILE``: applied exactly, refused when its
target, manifests or state changed since) or a fresh plan, then a verification plan.  Nothing is
shared between businesses but the limits of the run; a failure in one never stops the others.

A fleet plan file is the JSON that ``plan --all --out`` writes (``format_version`` 1, ``command``
``plan``, one row per business with its plan as ``report``), sealed like a saved plan (a
``seal`` digest over all the rest of the file: :mod:`reconciler.plan.document`).  :func:`read_fleet_plan`
refuses it when the seal is missing or does not match (edited anywhere), then reads it into one
:class:`reconciler.plan.document.Plan` per business, or says why one cannot be used.

:class:`FleetStop` lets the command stop the run (a signal): every running applier sends nothing
more, and businesses not started yet are not started.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reconciler.core.errors import PlanFileError
from reconciler.core.fsutil import read_regular
from reconciler.fleet.businesses import Business, Outcome, WorkOptions, open_business


@dataclass(frozen=True)
class ApplyOptions:
    """How every business of ``apply --all`` is applied."""

    stale: Literal["skip", "abort"] = "skip"
    allow_replace: bool = False
    verify: bool = True
    #: the payment-request limit a saved plan is checked against again at apply
    max_payment_requests: int | None = None
    #: make_plan's money-safety arguments for a business (its paths, its target)
    safety: Callable[[list[str], Any], dict[str, Any]] | None = None


@dataclass
class FleetStop:
    """Stop a fleet apply: running appliers send nothing more; waiting businesses never start."""

    reason: str = ""
    appliers: list[Any] = field(default_factory=list)

    def stop(self, why: str) -> None:
        self.reason = self.reason or why
        for applier in list(self.appliers):
            applier.stop(why)


def sealed_fleet_plan(text: str) -> str:
    """The fleet plan file for the JSON of ``plan --all``: sealed as a saved plan is."""
    from reconciler.plan.document import SEAL_KEY, _canonical_digest

    raw = json.loads(text)
    return json.dumps({**raw, SEAL_KEY: _canonical_digest(raw)}, indent=2, ensure_ascii=False) + "\n"


def read_fleet_plan(path: str) -> tuple[dict[str, Any], str | None]:
    """(plan or error text per business folder name, the shard it was made for) of a fleet plan."""
    from pydantic import ValidationError

    from reconciler.plan.document import Plan, check_format_version, unseal

    try:
        raw = json.loads(read_regular(path).decode("utf-8"))
    except FileNotFoundError:
        raise PlanFileError(f"no fleet plan file at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PlanFileError(f"cannot read the fleet plan {path}: {getattr(e, 'strerror', None) or e}") from None
    except json.JSONDecodeError as e:
        raise PlanFileError(f"{path}:{e.lineno}:{e.colno}: not a complete JSON fleet plan ({e.msg}); was it truncated?",
                            hint="Make it again with 'reconciler plan --all --out FILE'.") from None
    if not is_fleet_plan(raw):
        raise PlanFileError(f"{path} is not a fleet plan (the JSON of 'reconciler plan --all --out FILE')",
                            hint="A single business's plan is applied without --all: reconciler apply PLAN.json PATH")
    try:
        raw = unseal(raw)
    except ValueError as e:
        raise PlanFileError(f"{path}: {e}", hint="Make it again with 'reconciler plan --all --out FILE' and review "
                                                 "it; a reviewed plan is applied exactly as it was saved.") from None
    plans: dict[str, Any] = {}
    for i, row in enumerate(raw["businesses"]):
        if not isinstance(row, dict) or not isinstance(row.get("business"), str):
            raise PlanFileError(f"{path}: businesses[{i}] is damaged (no business name)")
        name = row["business"]
        if name in plans:
            raise PlanFileError(f"{path}: business {name} appears twice")
        if row.get("report") is None:
            plans[name] = f"no plan was made for it: {row.get('error') or 'unknown error'}"
            continue
        why = check_format_version(row["report"])
        if why is not None:
            plans[name] = f"its plan in {path} cannot be used: {why}"
            continue
        try:
            plans[name] = Plan.model_validate(row["report"])
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise PlanFileError(f"{path}: the plan of business {name} is damaged at {loc}: {err['msg']}",
                                hint="Make it again with 'reconciler plan --all --out FILE'.") from None
    shard = raw.get("shard")
    return plans, shard if isinstance(shard, str) else None


def is_fleet_plan(raw: Any) -> bool:
    """Whether a parsed JSON document is a fleet plan (``plan --all --out``)."""
    return (isinstance(raw, dict) and raw.get("format_version") == 1 and raw.get("command") == "plan"
            and isinstance(raw.get("businesses"), list))


async def apply_business(b: Business, opts: WorkOptions, how: ApplyOptions, stop: FleetStop,
                         saved: Any = None) -> Outcome:
    """Apply one business folder (see the module docstring); its Outcome."""
    from reconciler.applier import Applier
    from reconciler.refresh.full import make_plan, target_ref

    if stop.reason:
        return Outcome(b.name, str(b.path), status="not started", error=stop.reason)
    if isinstance(saved, str):
        return Outcome(b.name, str(b.path), status="error", error=saved)
    desired, biz = await asyncio.to_thread(functools.partial(open_business, b, opts, writes=True))
    target, store = biz.target, biz.store
    lock = store.lock("apply --all")
    await asyncio.to_thread(lock.acquire)
    try:
        state = await asyncio.to_thread(store.load)
        store.check_target(state, target_ref(target))
        if state.target is None:
            state = state.for_target(target_ref(target))
        async with biz.client() as api:
            safety = how.safety([str(b.path)], target) if how.safety is not None else {}
            plan = saved
            if plan is None:
                plan = await make_plan(api, desired, state, target=target, allow_replace=how.allow_replace, **safety)
            if plan.errors or not plan.has_changes:
                status = "errors" if plan.errors else "no changes"
                return Outcome(b.name, str(b.path), status, business_id=target.business_id,
                               counts={"errors": len(plan.errors)},
                               error=plan.errors[0].message if plan.errors else None)
            applier = Applier(api, store, state, target_ref(target))
            applier.check_plan(plan, desired.digest(), how.max_payment_requests if saved is not None else None)
            if saved is not None:  # made earlier: vcita may have got some of its creates since
                from reconciler.refresh.second_memory import recheck_saved

                await recheck_saved(api, plan, state.resources, state.archived, state.pending,
                                    blind="refuse" if store.kind == "local" else "shared",
                                    checked=safety.get("checked_clients", frozenset()))
            stop.appliers.append(applier)
            try:
                result = await applier.apply(plan, stale=how.stale)
            finally:
                stop.appliers.remove(applier)
            verify = None
            if how.verify and result.state is not None and not stop.reason and not result.unrecorded:
                verify = await make_plan(api, desired, result.state, target=target, allow_replace=how.allow_replace,
                                         **{**safety, "history_guard": False}, settle=False)
    finally:
        await asyncio.to_thread(lock.release)
    counts = {s: result.count(s) for s in ("done", "failed", "skipped", "unknown", "refused")}
    remaining = len(verify.addresses) if verify is not None else None
    if remaining is not None:
        counts["remaining"] = remaining
    problems = [f"{a}: vcita has {rid}, but the state could not record it (reconciler import {a} {rid})"
                for a, rid in result.unrecorded]
    problems += [f"{ev.address}: {ev.message}" for ev in result.outcomes.values()
                 if ev.status in ("failed", "unknown", "refused")]
    if stop.reason:
        status = "interrupted"
    elif not result.ok:
        status = "incomplete"
    elif verify is not None and (verify.has_changes or verify.errors):
        status = "unverified"
        problems.append(f"a fresh plan still shows {len(verify.addresses)} change(s)")
    else:
        status = "applied"
    report = {"outcomes": [ev.as_dict() for ev in result.outcomes.values()], "remaining_changes": remaining,
              "unrecorded": [list(x) for x in result.unrecorded]}
    return Outcome(b.name, str(b.path), status, business_id=target.business_id, counts=counts,
                   error="; ".join(problems[:3]) or None, report=report)


def plan_folders(root: Path, plans: dict[str, Any]) -> list[Business]:
    """The business folders a fleet plan names, under ``root`` (a missing one is still listed:
    its row then says so)."""
    return [Business(name, root / name) for name in sorted(plans)]
