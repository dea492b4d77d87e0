"""The pull-request comment grouped by client and by catalog package (issue 19): used when it is
shorter than the flat table, and holding everything the flat layout holds (under the limit, no
row or code block cut, the money first, every change shown or counted), hostile names included.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from plancases import run_case
from test_markdown_sizes import check_well_formed, sized_plan

from reconciler.plan.document import Plan
from reconciler.render.groups import group_operations
from reconciler.render.markdown import LIMIT, layouts, render_markdown

#: A client's name also shows in the money list, inside a code span (where HTML is not read), so
#: the checker's count of '<details>' is not given one there.
CLIENT = "\r\n`x`|y|[a](https://evil.example)\u202e*b* # Approved\n"
HOSTILE = "x</details>\n\n```\n| <script>alert(1)</script> |\n# Approved [ok](https://evil.example) `code` *b*"


def _catalog(name: str, title: str, price: int) -> str:
    return (f"apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {{name: {name}}}\n"
            f"spec: {{name: {title}, price: {price}, currency: USD, expiration: 6, expiration_unit: M, "
            f"items: [{{total_bookings: 10, services: [svc1]}}]}}\n")


def _remote_catalog(rid: str, title: str, price: int) -> dict[str, Any]:
    return {"id": rid, "name": title, "price": f"{price}.0", "currency": "USD", "expiration": 6,
            "expiration_unit": "m", "items": [{"total_bookings": "10", "services": [{"id": "svc1"}]}], "products": []}


def business(tmp_path: Path, *, packages: int, sets: dict[int, list[int]], singles: list[tuple[int, int]] = (),  # type: ignore[assignment]
             updates: list[tuple[int, int]] = (), names: dict[str, str] | None = None) -> Plan:  # type: ignore[assignment]
    """A plan of ``sets`` (package index -> client indices, one ClientPackageSet each), single
    client packages created (client, package) and tracked ones whose valid_until moves."""
    docs = [_catalog(f"pkg-{p}", f"Package {p}", 100 + p) for p in range(packages)]
    state: dict[str, dict[str, str]] = {f"catalog_package.pkg-{p}": {"id": f"rp{p}"} for p in range(packages)}
    clients: dict[str, Any] = {}
    for p, members in sets.items():
        docs.append(f"apiVersion: reconciler/v1\nkind: ClientPackageSet\nmetadata: {{name: set-{p}}}\nspec:\n"
                    f"  package: pkg-{p}\n  valid_from: 2027-03-01\n  valid_for: 3M\n  clients:\n"
                    + "".join(f"    - cl{c:03d}\n" for c in members))
    for n, (c, p) in enumerate(singles):
        docs.append(f"apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata: {{name: single-{n}}}\n"
                    f"spec: {{client: cl{c:03d}, package: pkg-{p}, valid_until: 2027-06-30}}\n")
    for n, (c, p) in enumerate(updates):
        docs.append(f"apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata: {{name: moved-{n}}}\n"
                    f"spec: {{client: cl{c:03d}, package: pkg-{p}, valid_until: 2027-09-30}}\n")
        state[f"client_package.moved-{n}"] = {"id": f"cpu{n}"}
        clients[f"cpu{n}"] = {"id": f"cpu{n}", "active": "true", "amount": str(100 + p), "client_id": f"cl{c:03d}",
                              "package_id": f"rp{p}", "valid_from": "2026-10-01", "valid_until": "2027-06-30",
                              "booking_credits": []}
    case = {"manifests": "---\n".join(docs), "state": state,
            "remote": {"catalog_packages": [_remote_catalog(f"rp{p}", f"Package {p}", 100 + p) for p in range(packages)],
                       "client_packages": clients, "service_ids": ["svc1"]}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    plan = run_case(case, tmp_path)
    shown = {f"rp{p}": f"Package {p}" for p in range(packages)}
    shown.update({f"cl{c:03d}": f"Client {c} <c{c}@example.com>" for c in range(100)})
    return plan.model_copy(update={"names": {**shown, **(names or {})}})


def test_a_set_of_40_clients_is_shown_under_its_catalog_package(tmp_path: Path) -> None:
    plan = business(tmp_path, packages=2, sets={0: list(range(40))}, singles=[(50, 1)])
    doc = render_markdown(plan)
    flat = layouts(plan)[0].doc
    assert len(doc) < len(flat) and "####" not in flat  # chosen because it is shorter
    check_well_formed(doc, plan, LIMIT)
    assert "#### Catalog package Package 0 (`rp0`): 40 change(s)" in doc
    assert "#### Other changes (1)" in doc
    group = doc.split("#### Catalog package Package 0")[1].split("#### Other changes")[0]
    assert group.count("| `+` | `client_package_set.set-0[") == 40
    assert "package_id" not in group  # the heading says it once, not 40 times
    assert group.count('client_id   = "cl0') == 40  # what differs stays in each diff
    other = doc.split("#### Other changes")[1]
    assert 'package_id  = "rp1"  # Package 1' in other  # ungrouped: the diff keeps it


def test_one_client_with_several_packages_is_shown_under_the_client(tmp_path: Path) -> None:
    plan = business(tmp_path, packages=8, sets={}, singles=[*((7, p) for p in range(7)), (8, 7)], updates=[(7, 7)])
    groups, ungrouped = group_operations(plan)
    assert [(g.kind, g.key) for g in groups] == [("client", "cl007")]
    # The update of a tracked client package joins its client's group (the plan's subjects).
    assert {plan.operations[i].address for i in groups[0].members} == {
        *(f"client_package.single-{n}" for n in range(7)), "client_package.moved-0"}
    assert [plan.operations[i].address for i in ungrouped] == ["client_package.single-7"]
    doc = render_markdown(plan)
    check_well_formed(doc, plan, LIMIT)
    assert "#### Client Client 7 &lt;c7@example.com&gt; (`cl007`): 8 change(s)" in doc
    group = doc.split("#### Client Client 7")[1].split("####")[0]
    assert "client_id" not in group and group.count('package_id  = "rp') == 7
    assert "valid_until = \"2027-06-30\" -> \"2027-09-30\"" in group
    # Three packages of one client save less than their heading costs: flat.
    few = business(tmp_path / "few", packages=4, sets={}, singles=[(7, 0), (7, 1), (7, 2), (8, 3)])
    assert group_operations(few)[0] and "####" not in render_markdown(few)


def test_a_plan_whose_groups_would_not_be_shorter_stays_flat(tmp_path: Path) -> None:
    # 300 changes: the creates are folded to names first, so grouping would only add headings.
    assert "####" not in render_markdown(sized_plan(300, tmp_path))
    # Two clients with two updates each: grouping saves no line of a diff.
    plan = business(tmp_path, packages=2, sets={}, updates=[(1, 0), (1, 1), (2, 0), (2, 1)])
    assert group_operations(plan)[0]
    assert "####" not in render_markdown(plan)


def test_hostile_names_cannot_break_a_group_heading(tmp_path: Path) -> None:
    # A catalog package's name from vcita, and a client's.
    client = CLIENT
    plan = business(tmp_path, packages=8, sets={0: list(range(12))}, singles=[(30, p) for p in range(1, 8)],
                    names={"rp0": HOSTILE, "rp1": "`" * 70, "cl030": client})
    for limit in (LIMIT, 6_000, 10**9):
        doc = render_markdown(plan, limit)
        check_well_formed(doc, plan, limit)
        headings = [line for line in doc.splitlines() if line.startswith("####")]
        if limit > 6_000:
            assert sorted(h.split(" ")[1] for h in headings) == ["Catalog", "Client"]
        for h in headings:
            text = h.rsplit(" (`", 1)[0]  # the name, before the id's code span
            assert "<" not in text and "](" not in text and "\u202e" not in text
            assert not re.search(r"(?<!\\)[`*\[\]|]", text)  # no code span, emphasis, link or cell of its own
        assert "\n# Approved" not in doc and "<script>" not in doc and "<c" not in "".join(headings)
    # An id from vcita is shown as text too when it is not a plain id.
    evil = plan.model_copy(update={"subjects": {a: (c, "x</details>`|[a](b)" if p == "rp0" else p)
                                                for a, (c, p) in plan.subjects.items()}})
    doc = render_markdown(evil)
    check_well_formed(doc, evil, LIMIT)
    assert "#### Catalog package (x&lt;/details&gt;'\\|\\[a\\]\\(b\\)): 12 change(s)" in doc
    heading = next(h for h in render_markdown(plan).splitlines() if h.startswith("#### Client"))
    assert heading == ("#### Client \ufffd\ufffd'x'\\|y\\|\\[a\\]\\(https://evil.example\\)\ufffd\\*b\\* \\# Approved\ufffd "
                       "(`cl030`): 7 change(s)")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(packages=st.integers(1, 4),
       sets=st.dictionaries(st.integers(0, 3), st.lists(st.integers(0, 30), min_size=1, max_size=40, unique=True),
                            max_size=3),
       singles=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=12),
       updates=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=6),
       limit=st.sampled_from([1_500, 3_000, 8_000, 20_000, LIMIT]),
       hostile=st.booleans())
def test_any_grouped_plan_keeps_every_rule_of_the_comment(tmp_path: Path, packages: int, sets: dict[int, list[int]],
                                                          singles: list[tuple[int, int]],
                                                          updates: list[tuple[int, int]], limit: int,
                                                          hostile: bool) -> None:
    sets = {p % packages: members for p, members in sets.items()}
    singles = [(c, p % packages) for c, p in singles]
    updates = [(c, p % packages) for c, p in updates]
    # A client holds one package once (a second sale is refused, not planned).
    taken = {(c, p) for p, members in sets.items() for c in members}
    singles = [s for s in dict.fromkeys(singles) if s not in taken]
    taken |= set(singles)
    updates = [u for u in dict.fromkeys(updates) if u not in taken]
    if not (sets or singles or updates):
        return
    where = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
    where.mkdir()
    plan = business(where, packages=packages, sets=sets, singles=singles, updates=updates,
                    names={"rp0": HOSTILE, "cl001": CLIENT} if hostile else None)
    assert not plan.errors, plan.errors
    doc = render_markdown(plan, limit)
    event("grouped" if "####" in doc else "flat")
    check_well_formed(doc, plan, limit)
    flat, grouped = layouts(plan, limit)
    if "####" in doc:  # grouped: only when shorter, and showing no less than flat
        assert grouped is not None and doc == grouped.doc
        assert len(doc) < flat.size and grouped.folded <= flat.folded
    else:
        assert doc == flat.doc
