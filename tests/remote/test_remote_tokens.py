"""Token and door choice against the sandbox (in-process and served): the directory token where the
list refuses the staff token (remembered for the run), pins that never switch, a directory-only
target that sends nothing it has no token for, and a lagging list read by id."""

from __future__ import annotations

import pytest
from remote_support import CLIENTS, Sbx, package_body

from reconciler.core.errors import AuthError, NotFoundError, UnsupportedRouteError
from reconciler.refresh.full import read_catalog
from reconciler.remote import DEFAULT_ROUTES, RoutePin, TokenKind
from reconciler.remote.routes import Door, Try, next_try

pytestmark = pytest.mark.anyio

LIST = "/platform/v1/payment/packages"
UNAUTHORIZED_422 = {"status": "Error", "error": "Unauthorized"}


async def test_the_list_switches_to_the_directory_token_once_and_remembers(sbx: Sbx) -> None:
    async with sbx.client() as api:
        made = await api.create_catalog_package(package_body())
    await sbx.operator.call("PUT", "/_sandbox/settings", {"list_refuses_staff": ["fallback"]})
    await sbx.operator.clear_stats()
    async with sbx.client() as api:
        assert [p.id for p in await api.list_catalog_packages()] == [made.id]
        first, second = api.history  # page 1, then the empty page 2 (the list is walked to the end)
        assert (first.door, first.token, first.attempts) == ("fallback", "directory", 2)
        assert (second.token, second.attempts) == ("directory", 1)  # remembered
        assert api.dispatcher.token_switched == {"list_catalog_packages"}
        await api.get_catalog_package(made.id)
        assert api.last_served.token == "staff"  # only the list switched
    assert await sbx.operator.hits(door="fallback", method="GET", route=LIST) == 3  # 1 refused + 2 pages


async def test_without_a_directory_token_the_refusal_says_what_would_work(sbx: Sbx) -> None:
    await sbx.operator.call("PUT", "/_sandbox/settings", {"list_refuses_staff": ["fallback"]})
    async with sbx.client(target=sbx.target_with(directory_token=None)) as api:
        with pytest.raises(AuthError) as err:
            await api.list_catalog_packages()
    assert "VCITA_DIRECTORY_TOKEN" in (err.value.hint or "") and "X-On-Behalf-Of" in (err.value.hint or "")


async def test_a_pinned_token_or_door_is_never_switched(sbx: Sbx) -> None:
    await sbx.operator.call("PUT", "/_sandbox/settings", {"list_refuses_staff": ["fallback"]})
    pinned = sbx.target_with(route_pins=(("list_catalog_packages", RoutePin(token=TokenKind.STAFF)),))
    async with sbx.client(target=pinned) as api:
        with pytest.raises(AuthError):
            await api.list_catalog_packages()
        assert not api.dispatcher.token_switched
    at_gateway = sbx.target_with(route_pins=(("list_catalog_packages", RoutePin(door=Door.GATEWAY)),))
    await sbx.operator.clear_stats()
    async with sbx.client(target=at_gateway) as api:
        with pytest.raises(AuthError) as err:
            await api.list_catalog_packages()
        assert "pinned to the gateway" in (err.value.hint or "")
        assert not api.dispatcher.rerouted
    # the staff request, then the directory token on the same (pinned) door: never the fallback
    assert await sbx.operator.hits(door="fallback") == 0
    assert await sbx.operator.hits(door="gateway", route=LIST) == 2


async def test_a_directory_only_target_sends_only_what_its_token_may(sbx: Sbx) -> None:
    directory_only = sbx.target_with(staff_token=None)
    await sbx.operator.clear_stats()
    async with sbx.client(target=directory_only) as api:
        assert api.can("list_catalog_packages") and api.can("create_catalog_package")
        assert not api.can("get_client_package") and not api.can("create_client_package")
        made = await api.create_catalog_package(package_body())  # directory + X-On-Behalf-Of
        assert api.last_served.token == "directory"
        with pytest.raises(UnsupportedRouteError) as err:
            await api.create_client_package({"client_id": CLIENTS[0]["id"], "package_id": made.id})
        assert "has only a directory token" in err.value.message and "staff token" in (err.value.hint or "")
        with pytest.raises(UnsupportedRouteError):
            await api.get_catalog_package(made.id)
    assert await sbx.operator.hits(method="POST", route="/platform/v1/payment/client_packages") == 0


async def test_a_lagging_list_is_completed_by_reading_tracked_ids(sbx: Sbx) -> None:
    await sbx.operator.call("PUT", "/_sandbox/settings", {"list_lag_seconds": 60})
    async with sbx.client() as api:
        made = await api.create_catalog_package(package_body())
        assert await api.list_catalog_packages() == []  # not listed yet
        gone = "zzzzzzzzzzzzzzzz"
        with pytest.raises(NotFoundError):
            await api.get_catalog_package(gone)
        found = await read_catalog(api, [made.id, gone, made.id])
        assert [p.id for p in found] == [made.id]
        assert [p.id for p in await read_catalog(api, [])] == []  # untracked: only what the list shows


def _try(route: str, door: Door, token: TokenKind, status: int, body: object, **kw: bool) -> Try | None:
    opts = {"has_fallback": True, "has_alt_token": True, "fell_back": False, "switched_token": False, **kw}
    return next_try(DEFAULT_ROUTES[route], Try(door, token), status=status, body=body, content=b"", **opts)


@pytest.mark.parametrize("case", [
    # (route, door, token, status, body, options, expected (door, token) or None)
    ("list_catalog_packages", Door.GATEWAY, TokenKind.STAFF, 422, UNAUTHORIZED_422, {}, (Door.FALLBACK, TokenKind.STAFF)),
    ("list_catalog_packages", Door.FALLBACK, TokenKind.STAFF, 422, UNAUTHORIZED_422, {}, (Door.FALLBACK, TokenKind.DIRECTORY)),
    ("list_catalog_packages", Door.GATEWAY, TokenKind.STAFF, 422, UNAUTHORIZED_422, {"has_fallback": False},
     (Door.GATEWAY, TokenKind.DIRECTORY)),
    ("list_catalog_packages", Door.FALLBACK, TokenKind.STAFF, 401, {}, {}, (Door.FALLBACK, TokenKind.DIRECTORY)),
    ("list_catalog_packages", Door.FALLBACK, TokenKind.STAFF, 422, UNAUTHORIZED_422, {"has_alt_token": False}, None),
    ("list_catalog_packages", Door.FALLBACK, TokenKind.STAFF, 422, UNAUTHORIZED_422, {"switched_token": True}, None),
    ("list_catalog_packages", Door.FALLBACK, TokenKind.DIRECTORY, 401, {}, {}, None),
    ("list_catalog_packages", Door.FALLBACK, TokenKind.STAFF, 422, {"status": "Error", "error": "Bad"}, {}, None),
    ("list_catalog_packages", Door.FALLBACK, TokenKind.STAFF, 403, {"status": "module_permission_missing"}, {}, None),
    ("list_clients", Door.GATEWAY, TokenKind.STAFF, 401, {}, {}, None),  # the list only
    ("create_catalog_package", Door.GATEWAY, TokenKind.STAFF, 401, {}, {}, None),  # never a write
    ("create_catalog_package", Door.GATEWAY, TokenKind.STAFF, 502, "Bad Gateway", {}, None),  # a POST: no proof
    ("get_catalog_package", Door.GATEWAY, TokenKind.STAFF, 502, "Bad Gateway", {}, (Door.FALLBACK, TokenKind.STAFF)),
    ("get_client_package", Door.GATEWAY, TokenKind.STAFF, 401, {}, {"fell_back": True}, None),
])
def test_next_try(case: tuple) -> None:  # type: ignore[type-arg]
    route, door, token, status, body, opts, expected = case
    got = _try(route, door, token, status, body, **opts)
    assert (None if got is None else (got.door, got.token)) == expected
