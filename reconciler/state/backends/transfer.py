"""Moving a state between backends (``reconciler state push|pull``), never backwards.

The state is copied as it is: same lineage, same serial, same records (tracked, archived,
pending), under both states' locks.  The copy is refused, and nothing is written, when the
destination holds another state (another lineage), a newer serial, or the same serial with other
content (two histories that diverged), or a newer serial that does not know an object the
destination records (a client package id tracked or archived there, or a create still pending
there): two histories that diverged after their last copy, where copying would make the state
forget a sale.  It does nothing when the destination already holds the same state.  What a
backend file or row held before is kept as its backup (``.backup`` / the row's ``previous``
column).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.core.errors import StateError


@dataclass(frozen=True)
class Transferred:
    """What a transfer did: ``copied`` False when the destination already held the same state."""

    copied: bool
    serial: int
    message: str


def transfer(src: Any, dst: Any, operation: str) -> Transferred:
    """Copy the state of ``src`` into ``dst`` (two backends; see the module docstring)."""
    # Both are read first, before any lock file or row is made: a database that cannot be used
    # (unreachable, refused, not reconciler's) is reported with nothing created anywhere.
    for store in (src, dst):
        store.load()
    if not src.exists():
        raise StateError(f"nothing to copy: {src.where} does not exist yet")
    with src.lock(operation), dst.lock(operation):
        state = src.load()
        there = dst.exists()
        current = dst.load() if there else None
        if current is not None:
            if current.lineage != state.lineage:
                raise StateError(
                    f"{dst.where} holds another state (lineage {current.lineage}, serial {current.serial}) than "
                    f"{src.where} (lineage {state.lineage}, serial {state.serial}); nothing was written",
                    hint="Two different states for one business: find out which one is right before replacing either.")
            if current.serial > state.serial:
                raise StateError(f"{dst.where} is newer (serial {current.serial}) than {src.where} "
                                 f"(serial {state.serial}); refusing to overwrite a newer state, nothing was written",
                                 hint="Copy the other way round, or find out who wrote the newer one.")
            if current.serial == state.serial:
                if current == state:
                    return Transferred(False, state.serial, f"{dst.where} already holds this state (serial "
                                                            f"{state.serial}); nothing to do.")
                raise StateError(f"{dst.where} and {src.where} are both at serial {state.serial} but differ: "
                                 "their histories diverged; nothing was written",
                                 hint="Compare them ('reconciler state list' on each) and keep the right one by hand.")
            forgotten = _forgotten(current, state)
            if forgotten:
                shown = ", ".join(forgotten[:5]) + (f" and {len(forgotten) - 5} more" if len(forgotten) > 5 else "")
                raise StateError(
                    f"{src.where} (serial {state.serial}) does not know {len(forgotten)} object(s) that {dst.where} "
                    f"(serial {current.serial}) records: {shown}; copying would make the state forget them "
                    "(a later plan could create them again: a second sale); nothing was written",
                    hint="The two histories diverged (runs on each since they were last copied). Adopt the missing "
                         "ones into the source first ('reconciler import ADDRESS ID' against it), then copy again; "
                         "or compare them ('reconciler state list' on each) and keep the right one by hand.")
        if state.target is not None:  # a database row belongs to one business
            dst.check_target(state, state.target)
        written = dst.write(state, expected_serial=current.serial if current is not None else 0,
                            set_serial=state.serial)
    return Transferred(True, written.serial, f"Copied {src.where} (serial {written.serial}, "
                                             f"{len(written.resources)} tracked, {len(written.archived)} archived, "
                                             f"{len(written.pending)} pending) to {dst.where}.")


def _forgotten(older: Any, newer: Any) -> list[str]:
    """What ``older`` records that ``newer`` does not know: ids tracked or archived there and
    neither tracked nor archived here, and creates pending there that are neither pending here
    nor settled (tracked at their address).  Records only ever move from pending to tracked to
    archived, so a state that continues another keeps every one of its ids (a person's ``state
    rm --archived`` aside)."""
    known = {rs.id for rs in newer.resources.values()} | set(newer.archived)
    missing = [f"{address} ({rs.id})" for address, rs in sorted(older.resources.items()) if rs.id not in known]
    missing += [f"{ar.address} ({rid}, archived)" for rid, ar in sorted(older.archived.items()) if rid not in known]
    missing += [f"{pc.address} (a pending create since {pc.opened_at})" for pid, pc in sorted(older.pending.items())
                if pid not in newer.pending and pc.address not in newer.resources]
    return missing
