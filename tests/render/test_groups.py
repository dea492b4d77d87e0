"""The Markdown plan's table grouped by catalog package or by client when that is shorter (issue 19)."""

from __future__ import annotations

from reconciler.operations import (
    ArchiveResource,
    CreateClientPackage,
    CreditOverride,
    IdOf,
    SetBookingCredits,
)
from reconciler.render.groups import grouped_rows
from reconciler.render.markdown import _escape


def _create(client: str, package: str | IdOf, n: int = 0) -> CreateClientPackage:
    return CreateClientPackage(address=f'client_package_set.s{n}["{client}"]', client_id=client, package_id=package)


def test_forty_clients_of_one_package_are_one_row() -> None:
    ops = [_create(f"c{i:02d}", IdOf("catalog_package.piano-10")) for i in range(40)]
    ops.append(SetBookingCredits(address=ops[0].address, credits=(CreditOverride(services=("s1",), total_bookings=3),)))
    ops.append(ArchiveResource(address="client_package.old", remote_id="x1"))
    rows = grouped_rows(ops, {"c01": "Ann | Lee"}, _escape)
    assert rows is not None and len(rows) == 3 + 2
    assert rows[3] == ("| `+` | client packages of piano-10: c00, Ann \\| Lee (c01), c02, c03, c04, c05, c06, c07 "
                       "and 32 more | create | 40 |")
    assert rows[4] == "| | `client_package.old` | archive | 1 |"


def test_one_client_many_packages_groups_by_client() -> None:
    ops = [_create("alice", f"pkg{i}", i) for i in range(5)]
    rows = grouped_rows(ops, {"pkg0": "Piano"}, _escape)
    assert rows is not None and rows[3:] == ["| `+` | packages for alice: Piano, pkg1, pkg2, pkg3, pkg4 | create | 5 |"]


def test_nothing_to_gain_keeps_one_row_per_address() -> None:
    assert grouped_rows([_create("a", "p")], {}, _escape) is None
    assert grouped_rows([_create("a", "p", 0), _create("b", "q", 1)], {}, _escape) is None
