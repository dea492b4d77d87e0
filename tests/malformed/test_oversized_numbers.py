"""Numbers beyond any real amount, from the server: a clear protocol error, never an internal one.

The served sandbox holds whatever price it is sent, as the real API may; a catalog package whose
price has 29 digits used to end ``reconciler plan`` in ``internal error: InvalidOperation``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from snapshots import CLI, snapshot

from reconciler.remote.normalize import catalog_package, client_package


def _package(sandbox: Any, demo: dict[str, Any], price: Any) -> None:
    body = {"name": "Odd", "price": price, "currency": "USD", "expiration": 3, "expiration_unit": "M",
            "products": [], "items": [{"total_bookings": 1, "services": [{"id": demo["services"][0]["id"]}]}]}
    r = httpx.post(sandbox.fallback_url + "/platform/v1/payment/packages", json=body, timeout=30,
                   headers={"Authorization": f"Bearer {demo['tokens']['staff']}"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("price", ["12345678901234567890123456789", "1e400", "0.000000001"])
def test_an_oversized_price_from_the_server_is_a_protocol_error(project: Path, sandbox: Any, demo: dict[str, Any],
                                                                cli: CLI, price: str) -> None:
    _package(sandbox, demo, price)
    before = snapshot(project)
    code, _out, err = cli("plan")
    assert code == 1 and "internal error" not in err, err
    assert "data.packages cannot be read: price: the " in err, err
    assert any(why in err for why in ("larger than any amount", "longer than any number", "decimal places")), err
    assert snapshot(project) == before


def test_normalize_bounds_amounts_and_keeps_messages_short() -> None:
    raw = {"id": "p1", "name": "x", "price": "540.0", "currency": "usd", "expiration": "3", "expiration_unit": "m",
           "discount_amount": "1" * 5000}
    with pytest.raises(ValueError, match=r"discount_amount: the number '1111.*longer than any number") as e:
        catalog_package(raw)
    assert len(str(e.value)) < 200
    with pytest.raises(ValueError, match="amount: the number <a 16610-bit integer> is longer than any number"):
        client_package({"id": "c1", "client_id": "a", "package_id": "b", "amount": 10**5000})
    with pytest.raises(ValueError, match="price: the amount 1000000000000000 is larger than any amount"):
        catalog_package({**raw, "discount_amount": None, "price": 10**15})
    assert catalog_package({**raw, "discount_amount": "99999999999999.5"}).discount_amount is not None
