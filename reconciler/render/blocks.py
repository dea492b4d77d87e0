"""One reviewable block per operation, by the operation's type; the text and Markdown renderers
lay the blocks out.

A block is what a reviewer reads about one operation: a symbol and a verb, the object, why, the
field lines (``+`` new, ``~`` changed, ``-`` removed), the requests apply sends (as the remote
layer described them), warnings, what it waits for, and why apply would refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import singledispatch

from reconciler.model import views as nz
from reconciler.model.manifest import credit_key
from reconciler.plan.operations import (
    AdoptCatalogPackage,
    ArchiveResource,
    CreateCatalogPackage,
    CreateClientPackage,
    FieldChange,
    IdOf,
    MoveResource,
    Operation,
    ReadoptArchived,
    ReorderCatalogPackage,
    Request,
    ResolvePendingCreate,
    SetBookingCredits,
    UpdateCatalogPackage,
    UpdateClientPackage,
)
from reconciler.render.common import SYMBOL, VERB, flat_fields, leaf_key, value

Row = tuple[str, str, str]  # (sign, field, value text)

RESOLUTION = {
    "created": "has a create pending from an interrupted run, which is closed (the state records it)",
    "adopt": "was created by an interrupted run that never heard back: it will be adopted",
    "not_created": "has a create pending from an interrupted run that never reached vcita: it is closed",
    "unknown": "has a create pending from an interrupted run, of unknown outcome: apply leaves it alone",
}


@dataclass(frozen=True)
class Block:
    action: str
    symbol: str
    says: str
    address: str
    remote_id: str | None = None
    reason: str | None = None
    rows: tuple[Row, ...] = ()
    requests: tuple[Request, ...] = ()
    warnings: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    blocked: str | None = None
    fields: tuple[str, ...] = ()  # the paths that differ (for a summary table)

    @property
    def title(self) -> str:
        return f"{self.address} (id {self.remote_id})" if self.remote_id else self.address


def _block(op: Operation, rows: list[Row] | tuple[Row, ...] = (), *, remote_id: str | None = None,
           says: str | None = None, fields: tuple[FieldChange, ...] = (), blocked: str | None = None) -> Block:
    return Block(action=op.action, symbol=SYMBOL[op.action], says=says or VERB[op.action], address=op.address,
                 remote_id=remote_id, reason=op.reason, rows=tuple(rows), requests=op.requests,
                 warnings=op.warnings, after=op.depends_on, blocked=blocked,
                 fields=tuple(fc.path for fc in fields))


def _created(view: dict[str, object]) -> list[Row]:
    return [("+", k, value(leaf_key(k), v)) for k, v in flat_fields(view)]


def _changed(fcs: tuple[FieldChange, ...], forcing: frozenset[str] = frozenset()) -> list[Row]:
    rows = []
    for fc in fcs:
        k = leaf_key(fc.path)
        if fc.before is None:
            row = ("+", fc.path, value(k, fc.after))
        elif fc.after is None:
            row = ("-", fc.path, value(k, fc.before))
        else:
            row = ("~", fc.path, f"{value(k, fc.before)} -> {value(k, fc.after)}")
        if k in forcing:
            row = (row[0], row[1], row[2] + "  # forces replacement")
        rows.append(row)
    return rows


@singledispatch
def block(op: Operation) -> Block:
    """The block of ``op``."""
    raise TypeError(f"no block for {type(op).__name__}")


@block.register
def _(op: CreateCatalogPackage) -> Block:
    return _block(op, _created(nz.catalog_desired(op.spec)))


@block.register
def _(op: UpdateCatalogPackage) -> Block:
    rid = op.remote_id if isinstance(op.remote_id, str) else None
    return _block(op, _changed(op.field_changes), remote_id=rid, fields=op.field_changes)


@block.register
def _(op: ReorderCatalogPackage) -> Block:
    rid = op.remote_id if isinstance(op.remote_id, str) else None
    rows = _changed(op.field_changes) if op.field_changes else [("~", "order", str(op.order))]
    return _block(op, rows, remote_id=rid, fields=op.field_changes, says="will move in the catalog's display order")


@block.register
def _(op: AdoptCatalogPackage) -> Block:
    return _block(op, _changed(op.field_changes), remote_id=op.remote_id, fields=op.field_changes)


@block.register
def _(op: CreateClientPackage) -> Block:
    if op.replaces:
        rows = _changed(op.field_changes, frozenset(nz.REPLACE_FIELDS))
        return _block(op, rows, remote_id=op.replaces, fields=op.field_changes, blocked=op.blocked)
    view: dict[str, object] = {"client_id": op.client_id,
                               "package_id": str(op.package_id) if isinstance(op.package_id, IdOf) else op.package_id}
    if op.price is not None:
        view["price"] = nz.money(op.price)
    for key in ("valid_from", "valid_until"):
        day = getattr(op, key)
        if day is not None:
            view[key] = day.isoformat()
    if op.matter_uid is not None:
        view["matter_uid"] = op.matter_uid
    return _block(op, _created(view), blocked=op.blocked)


@block.register
def _(op: UpdateClientPackage) -> Block:
    rid = op.remote_id if isinstance(op.remote_id, str) else None
    return _block(op, _changed(op.field_changes), remote_id=rid, fields=op.field_changes)


@block.register
def _(op: SetBookingCredits) -> Block:
    rows = [("+", f"booking_credits[{credit_key(c.services)}]", str(c.total_bookings)) for c in op.credits]
    return _block(op, rows)


@block.register
def _(op: ArchiveResource) -> Block:
    return _block(op, remote_id=op.remote_id)


@block.register
def _(op: MoveResource) -> Block:
    return _block(op, remote_id=op.remote_id)


@block.register
def _(op: ReadoptArchived) -> Block:
    return _block(op, remote_id=op.remote_id)


@block.register
def _(op: ResolvePendingCreate) -> Block:
    return _block(op, remote_id=op.remote_id, says=RESOLUTION[op.resolution])


#: The longest name shown next to an id (a name is a label, not a document).
NAME_CHARS = 60
_ID = re.compile(r"[A-Za-z0-9_-]+")


def label(name: str) -> str:
    """A name as a plan shows it: one line of printable characters, cut short."""
    shown = "".join(c if c.isprintable() and c != "`" else "\ufffd" if c != "`" else "'" for c in name)
    return shown if len(shown) <= NAME_CHARS else shown[:NAME_CHARS - 3] + "..."


def named(b: Block, names: Mapping[str, str]) -> Block:
    """``b`` with the names of the ids its rows show (clients, catalog packages, the services of
    an item's key) after each row, as a comment: ``client_id = "xdbi6p16xrye9wo9"  # Chloe Dubois``."""
    if not names or not b.rows:
        return b
    rows = []
    for sign, key, text in b.rows:
        ids = [i for i in _ID.findall(key[len(leaf_key(key)):]) + _ID.findall(text.split("  # ", 1)[0])
               if i in names]
        shown = ", ".join(dict.fromkeys(label(names[i]) for i in ids))
        rows.append((sign, key, f"{text}  # {shown}" if shown else text))
    return replace(b, rows=tuple(rows))
