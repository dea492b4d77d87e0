"""A plan people can read (issue 19): names next to ids in every format, from the lists the
refresh reads anyway: no request of its own (the sandbox counts every request)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.plan.document import Plan
from reconciler.render import render

CLI = Callable[..., tuple[int, str, str]]
CP_ROUTE = "/business/payments/v1/client_packages/{uid}"


def _count(stats: dict[str, Any], method: str, route: str) -> int:
    return sum(r["count"] for r in stats["requests"] if r["method"] == method and r["route"] == route)


def test_names_next_to_ids_in_every_format_without_a_request_of_their_own(
        workdir: Path, cli: CLI, operator: Any) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text()
                       + "\n---\napiVersion: reconciler/v1\nkind: ClientPackageSet\nmetadata:\n  name: spring\n"
                         "spec:\n  package: piano-10\n  valid_from: 2027-03-01\n  valid_for: 3M\n  clients:\n"
                         "    - {email: isla.novak@example.com, booking_credits: "
                         "[{services: [bop374z43h5xezh3], total_bookings: 12}]}\n")
    operator("DELETE", "/stats")
    code, out, err = cli("plan", "--format", "json", "--out", str(workdir / "plan.json"))
    assert code == 0, err
    stats = operator("GET", "/stats")
    # The refresh's requests, exactly: one GET per tracked client package, the catalog list
    # (a page and the empty page after it), one services page, one lookup per distinct e-mail;
    # no request for a name.
    tracked = 8
    emails = 3  # ben.cohen, farid.haddad, isla.novak
    catalog = _count(stats, "GET", "/platform/v1/payment/packages")
    assert _count(stats, "GET", CP_ROUTE) == tracked
    assert _count(stats, "GET", "/platform/v1/services") == 1
    assert _count(stats, "GET", "/platform/v1/clients") == emails
    # The second memory (issue 18) lists the payment requests of the one client a package is
    # created for: its request, not the names'.
    second_memory = _count(stats, "GET", "/business/payments/v1/payment_requests")
    assert second_memory == 1
    assert 1 <= catalog <= 2 and stats["total"] == tracked + catalog + 1 + emails + second_memory, stats
    plan = Plan.model_validate(json.loads(out))
    member = 'client_package_set.spring["isla.novak@example.com"]'
    assert plan.names["bop374z43h5xezh3"] == "Piano Lesson (45 min)"
    assert plan.names[next(op.client_id for op in plan.operations if op.address == member
                           and op.action == "create")].startswith("Isla Novak <isla.novak@example.com>")
    assert "10 Piano Lessons" in plan.names.values()
    text = render(plan, "text")
    assert "# Isla Novak <isla.novak@example.com>" in text and "# 10 Piano Lessons" in text
    assert "booking_credits[bop374z43h5xezh3] = 12  # Piano Lesson (45 min)" in text
    assert f"{member}: client " in text and "(Isla Novak <isla.novak@example.com>), piano-10" in text
    markdown = render(plan, "markdown")
    assert "# Isla Novak <isla.novak@example.com>" in markdown and "# Piano Lesson (45 min)" in markdown


def test_a_name_is_one_printable_line(workdir: Path) -> None:
    from reconciler.render.blocks import Block, label, named

    assert label("Evil\n+ client_id = \"x\"\x1b[31m`") == "Evil\ufffd+ client_id = \"x\"\ufffd[31m'"
    assert len(label("x" * 500)) == 60
    b = Block(action="create", symbol="+", says="", address="a", rows=(("+", "client_id", '"abc"'),
                                                                          ("+", "price", "10")))
    assert named(b, {"abc": "Alice"}).rows == (("+", "client_id", '"abc"  # Alice'), ("+", "price", "10"))
