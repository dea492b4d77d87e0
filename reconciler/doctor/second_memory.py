"""Whether the second memory works on a target: read-only, three requests at most.

The second memory (API-NOTES §11, ``remote/discovery.py``) rests on the spec alone, so a target
is checked before it is trusted: one page of one ``ClientBookingPackage`` payment request
(``GET /business/payments/v1/payment_requests``), then the client package its ``payable_uid``
names, whose ``payment_request_id`` must point back.

* ``works``: an item links back both ways: discovery can find client packages on this target;
* ``unconfirmed``: the list answers but holds no client package's payment request yet (nothing to
  check; not a failure: the first client package created settles it);
* ``unavailable``: the list is refused or answers in another shape, or its item does not link
  back: reconciler falls back to what its state alone knows (README: "The second memory").

None of these fails ``doctor``: reconciler works without the second memory, as it did before it.
"""

from __future__ import annotations

from typing import Any

from reconciler.core.errors import NotFoundError, RemoteError
from reconciler.core.safetext import printable
from reconciler.remote.client import VcitaClient
from reconciler.remote.discovery import ENTITY_TYPES
from reconciler.remote.normalize import payment_request

#: the routes this check reads (not in the doctor's route table: they are optional)
ROUTES = ("list_payment_requests", "get_payment_request")


async def check(api: VcitaClient) -> dict[str, Any]:
    """``{"status": works|unconfirmed|unavailable, "detail": ...}`` for ``api``'s target."""
    if not api.can("list_payment_requests"):
        return {"status": "unavailable", "detail": "the target has no token vcita accepts on the payment request list"}
    route = api.routes["list_payment_requests"]
    params = {"page": 1, "per_page": 1, "filter[entity_type][in]": ",".join(ENTITY_TYPES), "sort": "created_at:desc"}
    try:
        reply = await api.dispatcher.send(route, route.path(), params=params)
    except RemoteError as exc:
        return {"status": "unavailable", "detail": f"the payment request list: {printable(exc.message, limit=200)}"}
    rows = reply.data.get(route.data_key)
    if not isinstance(rows, list):
        return {"status": "unavailable",
                "detail": f"the payment request list's answer has no data.{route.data_key} list"}
    if not rows:
        return {"status": "unconfirmed",
                "detail": "the list answers, but holds no client package's payment request yet: nothing to check"}
    try:
        first = payment_request(rows[0]) if isinstance(rows[0], dict) else None
    except (KeyError, TypeError, ValueError):
        first = None
    if first is None or not first.payable_uid:
        return {"status": "unavailable", "detail": "the list's first item names no client package (payable_uid)"}
    uid = printable(first.payable_uid, limit=64)
    try:
        cp = await api.get_client_package(first.payable_uid)
    except NotFoundError:
        return {"status": "unavailable",
                "detail": f"payment request {printable(first.uid, limit=64)} names client package {uid}, "
                          "which does not exist"}
    except RemoteError as exc:
        return {"status": "unavailable", "detail": f"reading client package {uid}: {printable(exc.message, limit=200)}"}
    if cp.payment_request_id != first.uid:
        return {"status": "unavailable",
                "detail": (f"payment request {printable(first.uid, limit=64)} names client package {uid}, whose "
                           f"payment_request_id is {printable(str(cp.payment_request_id), limit=64)}: no link back")}
    return {"status": "works",
            "detail": (f"payment request {printable(first.uid, limit=64)} names client package {uid}, which points "
                       "back to it: client packages can be found through payment requests")}
