"""Clients found by e-mail (issue 19): a few e-mails are looked up one by one; many are found in
the clients list, walked only as far as needed and never costing more than 1.5x the lookups it
replaces (the sandbox counts every request)."""

from __future__ import annotations

import pytest
from remote_support import Sbx, fast_settings

from reconciler.refresh.full import LOOKUPS_BEFORE_LIST, find_clients
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


async def test_a_long_list_stops_at_its_budget_and_looks_up_the_rest(sbx: Sbx) -> None:
    emails = sorted(KNOWN) + UNKNOWN  # 12 e-mails: at most 6 pages of the list
    found, requests = await _found(sbx, emails, per_page=1)
    assert found == {**KNOWN, **dict.fromkeys(UNKNOWN)}
    assert requests <= 1.5 * len(emails)
    # 6 pages of one client, then 6 lookups: with one client a page, a lookup that finds its client
    # reads a second (empty) page, so 3 x 2 + 3.
    assert requests == 6 + 3 * 2 + 3


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
