"""memory.sold_meanwhile: a client package create of a catalog package the plan creates itself is
refused for a client sold a package of that name moments ago, of a catalog package the list does
not show (another runner's apply while the list lags); not for an older sale, nor one of a listed
catalog package.  (The e2e flow: tests/e2e/test_runner_behind_the_list_lag.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.planner.actual import Discovered, RemoteObject
from reconciler.planner.memory import sold_meanwhile

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
LAG = timedelta(seconds=26)


def _at(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _sale(cid: str, package: str, client: str = "c1") -> RemoteObject:
    return RemoteObject(id=cid, view={"client_id": client, "package_id": package, "price": "540"})


def _discovered(*sales: tuple[RemoteObject, str, str]) -> Discovered:
    return Discovered(packages={obj.id: obj for obj, _, _ in sales}, opened_at={obj.id: at for obj, at, _ in sales},
                      names={obj.id: name for obj, _, name in sales})


def _check(d: Discovered, listed: frozenset[str] = frozenset(), owned: frozenset[str] = frozenset()) -> Any:
    return sold_meanwhile("client_package.a", "c1", "catalog_package.piano", "10 Piano", d, owned, listed, NOW, LAG)


def test_two_recent_sales_of_an_unlisted_catalog_package_are_both_named() -> None:
    d = _discovered((_sale("zz", "new-pkg"), _at(-timedelta(seconds=5)), "10 Piano"),
                    (_sale("aa", "new-pkg"), _at(-timedelta(seconds=3)), "10 Piano"))
    problem = _check(d)
    assert problem is not None and problem.severity == "error"
    assert problem.message.index("aa (") < problem.message.index("zz (")


def test_what_is_not_another_runs_sale_moments_ago_refuses_nothing() -> None:
    recent = _at(-timedelta(seconds=5))
    assert _check(_discovered((_sale("a1", "new-pkg"), recent, "10 Piano")), listed=frozenset({"new-pkg"})) is None
    assert _check(_discovered((_sale("a1", "new-pkg"), recent, "10 Piano")), owned=frozenset({"a1"})) is None
    assert _check(_discovered((_sale("a1", "new-pkg"), recent, "Guitar"))) is None
    assert _check(_discovered((_sale("a1", "new-pkg", client="c2"), recent, "10 Piano"))) is None
    assert _check(_discovered((_sale("a1", "new-pkg"), _at(-timedelta(hours=1)), "10 Piano"))) is None
    assert _check(Discovered(unavailable="refused")) is None
