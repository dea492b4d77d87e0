"""Clients found by e-mail (issue 19): a few e-mails are looked up one by one; many are found in
the clients list, walked to its end within a budget (half a page per e-mail), else every e-mail
looked up: never more than 1.5x the lookups it replaces, and every client of an e-mail found
wherever it is (the sandbox counts every request)."""

from __future__ import annotations

from typing import Any

import pytest
from remote_support import Sbx, fast_settings

from reconciler.refresh.full import LOOKUPS_BEFORE_LIST, find_clients
from reconciler.remote.target import Secret
from reconciler.sandbox import DEMO

pytestmark = pytest.mark.anyio
CLIENTS = "/platform/v1/clients"
KNOWN = {c["email"].lower(): c["id"] for c in DEMO["clients"]}
UNKNOWN = ["nobody1@example.com", "nobody2@example.com", "nobody3@example.com"]


async def _found(sbx: Sbx, emails: list[str], per_page: int = 100) -> tuple[dict[str, str | None], int]:
    await sbx.operator.clear_stats()
    async with sbx.client(settings=fast_settings(per_page=per_page)) as api:
        found = await find_clients(api, emails)
    return {e: (c.id if c else None) for e, c in found.items()}, await sbx.operator.hits(route=CLIENTS)


async def test_a_few_emails_are_looked_up_one_by_one(sbx: Sbx) -> None:
    emails = [*list(KNOWN)[:2], UNKNOWN[0]]
    found, requests = await _found(sbx, emails)
    assert found == {**{e: KNOWN[e] for e in emails[:2]}, UNKNOWN[0]: None}
    assert requests == 3


async def test_many_emails_read_the_list_once(sbx: Sbx) -> None:
    emails = sorted(KNOWN) + UNKNOWN
    assert len(emails) > LOOKUPS_BEFORE_LIST
    found, requests = await _found(sbx, emails)
    assert found == {**KNOWN, **dict.fromkeys(UNKNOWN)}  # the whole list was read: absent is absent
    assert requests == 1


async def test_a_long_list_stops_at_its_budget_and_looks_up_every_email(sbx: Sbx) -> None:
    emails = sorted(KNOWN) + UNKNOWN  # 12 e-mails: at most 6 pages of the list
    found, requests = await _found(sbx, emails, per_page=1)
    assert found == {**KNOWN, **dict.fromkeys(UNKNOWN)}
    # 6 pages of one client (half a lookup per e-mail: the 1.5x bound), then each e-mail looked up,
    # the 6 seen on those pages too (a part of the list cannot tell that no other client shares
    # one): with one client a page, a lookup that finds its client reads a second (empty) page.
    assert requests == 6 + 9 * 2 + 3


@pytest.mark.parametrize("many", [False, True], ids=["looked-up", "listed"])
async def test_an_email_several_clients_have_is_reported_with_every_id(sbx: Sbx, many: bool) -> None:
    """Looked up one by one or found in the list: an e-mail two clients have (one in another case)
    is reported with both ids, oldest first, so the plan can refuse it."""
    by_email = list(KNOWN)
    first, second = KNOWN[by_email[0]], KNOWN[by_email[1]]
    await sbx.operator.call("PATCH", f"/_sandbox/objects/clients/{second}", {"email": by_email[0].upper()})
    emails = (sorted(set(KNOWN) - {by_email[1]}) + UNKNOWN) if many else [by_email[0]]
    assert (len(emails) > LOOKUPS_BEFORE_LIST) == many
    shared: dict[str, tuple[str, ...]] = {}
    async with sbx.client(settings=fast_settings()) as api:
        found = await find_clients(api, emails, shared)
    assert found[by_email[0]] is not None
    assert shared == {by_email[0]: tuple(sorted((first, second), key=[c["id"] for c in DEMO["clients"]].index))}


async def _business_of(sbx: Sbx, clients: int) -> tuple[Any, list[dict[str, str]]]:
    made = await sbx.operator.call("POST", "/_sandbox/businesses", {"name": "Many clients", "clients": clients})
    target = sbx.target_with(business_id=made["business_id"], staff_token=Secret(made["staff_token"]),
                             directory_token=None)
    return target, made["clients"]


@pytest.mark.parametrize("per_page, walked", [(5, "to its end"), (1, "cut at its budget")])
async def test_a_second_client_of_an_email_on_a_later_page_is_seen(sbx: Sbx, per_page: int, walked: str) -> None:
    """Every e-mail is on the first pages; a later page holds a second client of the first e-mail.
    The walk used to stop once each e-mail was seen, and the plan took the first client for it."""
    target, clients = await _business_of(sbx, 30)
    emails = sorted(c["email"].lower() for c in clients[:15])
    first = next(c for c in clients if c["email"].lower() == emails[0])
    late = clients[27]
    await sbx.operator.call("PATCH", f"/_sandbox/objects/clients/{late['id']}", {"email": emails[0].upper()})
    shared: dict[str, tuple[str, ...]] = {}
    await sbx.operator.clear_stats()
    async with sbx.client(target=target, settings=fast_settings(per_page=per_page)) as api:
        found = await find_clients(api, emails, shared)
    requests = await sbx.operator.hits(route=CLIENTS)
    assert shared == {emails[0]: (first["id"], late["id"])}, walked
    assert {e: c.id for e, c in found.items() if c is not None and e != emails[0]} == {
        c["email"].lower(): c["id"] for c in clients[:15] if c["email"].lower() != emails[0]}
    assert requests <= 1.5 * len(emails) * (2 if per_page == 1 else 1), requests  # (a lookup of 1 a page: 2 pages)
