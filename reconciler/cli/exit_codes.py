"""Every exit code of reconciler, in one place: decided here from what library code returns.

Library code returns outcomes (a Plan, an apply Result, a drift verdict, a fleet row's status)
and raises errors; only the CLI turns them into numbers, with the functions below.  The README's
"Exit codes" table lists the same codes; a new code is added to both.

    0    success: valid; applied and verified; no changes (plan --detailed-exitcode); in sync (drift)
    1    error: invalid input, refused or failed command, plan errors, an operation not done
    2    changes present (plan --detailed-exitcode); remote drift (drift), client packages created
         outside reconciler included (drift status created_outside)
    3    only pending changes (drift)
    4    plan: creates of unknown outcome to resolve first (import or forget-intent), no other error
    130  interrupted (Ctrl-C, SIGINT)
    143  terminated (SIGTERM)
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any

OK = 0
ERROR = 1
CHANGES = 2
DRIFT = 2
PENDING = 3
UNRESOLVED = 4
INTERRUPTED = 130
TERMINATED = 143

_DRIFT = {"in_sync": OK, "drift": DRIFT, "pending": PENDING}
#: Exit codes from worst to best, per command of a fleet: an error beats drift beats pending beats sync.
_SEVERITY = {"drift": (ERROR, DRIFT, PENDING, OK), "plan": (ERROR, UNRESOLVED, CHANGES, OK), "apply": (ERROR, OK)}


def for_plan(plan: Any, *, detailed: bool) -> int:
    """``reconciler plan``: 1 with plan errors; 4 when creates of unknown outcome must be resolved
    by a person first (whatever the mode: something to do before apply can finish); 2 with
    changes under --detailed-exitcode; else 0."""
    if plan.errors:
        return ERROR
    if any(getattr(op, "resolution", None) == "unknown" for op in plan.operations):
        return UNRESOLVED
    return CHANGES if detailed and plan.has_changes else OK


def for_apply(plan: Any, result: Any, verify: Any) -> int:
    """``reconciler apply``: 0 when every operation is done and a fresh plan shows no changes and
    no errors (or there was nothing to apply); 1 otherwise."""
    if result is None:
        return ERROR if plan.errors else OK
    if not result.ok:
        return ERROR
    return ERROR if verify is not None and (verify.has_changes or verify.errors) else OK


def for_signal(sig: signal.Signals) -> int:
    """A command stopped by a signal: 128 + its number, as a shell reports it (130, 143)."""
    return TERMINATED if sig == signal.SIGTERM else INTERRUPTED


def for_drift(verdict: str) -> int:
    """``reconciler drift``: 0 in sync, 2 remote drift (a client package created outside
    reconciler is remote drift: someone sold a managed package in vcita), 3 only pending changes."""
    return _DRIFT[verdict]


def for_business(command: str, status: str, *, detailed: bool = True) -> int:
    """One business of ``plan --all`` / ``drift --all`` / ``apply --all`` from the status of its row."""
    if status in ("error", "errors"):
        return ERROR
    if command == "apply":  # applied and verified, or nothing to apply; anything else is an error
        return OK if status in ("applied", "no changes") else ERROR
    if command == "drift":
        return for_drift(status.replace(" ", "_"))
    return CHANGES if detailed and status == "changes" else OK


def worst(codes: Sequence[int], command: str) -> int:
    """A fleet's exit code: the worst of its businesses' (0 for none)."""
    present = set(codes)
    return next((c for c in _SEVERITY[command] if c in present), OK)
