"""Planner cases of a given size for the golden Markdown renderings (1, 300 and 3,000 changes):
a business with a mix of what a real change set holds, scaled.  Deterministic: the same size gives
the same case, so the renderings can be pinned."""

from __future__ import annotations

from typing import Any


def sized_case(changes: int) -> dict[str, Any]:
    """A case whose plan has exactly ``changes`` changes: 1, or a multiple of 300.

    Per 300: 260 client packages created (each opens a payment request), 24 client packages
    updated (valid_until), 6 catalog packages updated (price), 2 catalog packages created, 2
    imported (one of them with a price that differs), 5 client packages archived and 1 replace
    refused without --allow-replace.
    """
    if changes == 1:
        return _case(docs=[_catalog("piano-0", "Piano 0", 280)], state={"catalog_package.piano-0": {"id": "pkg0"}},
                     catalog=[_remote_catalog("pkg0", "Piano 0", 260)], clients={})
    if changes % 300:
        raise ValueError("changes must be 1 or a multiple of 300")
    k = changes // 300
    docs: list[str] = []
    state: dict[str, dict[str, str]] = {}
    catalog: list[dict[str, Any]] = []
    clients: dict[str, dict[str, Any]] = {}
    steady = [f"steady-{i}" for i in range(10 * k)]
    for i, name in enumerate(steady):  # tracked, unchanged: what creates refer to
        docs.append(_catalog(name, f"Steady {i}", 100 + i))
        state[f"catalog_package.{name}"] = {"id": f"pkg-s{i}"}
        catalog.append(_remote_catalog(f"pkg-s{i}", f"Steady {i}", 100 + i))
    for i in range(6 * k):  # price updates
        name = f"repriced-{i}"
        docs.append(_catalog(name, f"Repriced {i}", 300 + i))
        state[f"catalog_package.{name}"] = {"id": f"pkg-r{i}"}
        catalog.append(_remote_catalog(f"pkg-r{i}", f"Repriced {i}", 250 + i))
    for i in range(2 * k):  # new catalog packages
        docs.append(_catalog(f"new-{i}", f"New {i}", 400 + i))
    for i in range(2 * k):  # untracked in state, found by name: imported (odd ones with a new price)
        docs.append(_catalog(f"found-{i}", f"Found {i}", 500 + i + (i % 2) * 50))
        catalog.append(_remote_catalog(f"pkg-f{i}", f"Found {i}", 500 + i))
    for i in range(260 * k):  # client packages created: one payment request each
        docs.append(_client(f"c{i:05d}-{steady[i % len(steady)]}", f"cli{i:05d}", steady[i % len(steady)]))
    for i in range(24 * k):  # valid_until moved
        name = f"u{i:05d}"
        docs.append(_client(name, f"clu{i:05d}", steady[i % len(steady)], until="2027-09-30"))
        state[f"client_package.{name}"] = {"id": f"cpu{i}"}
        clients[f"cpu{i}"] = _remote_client(f"cpu{i}", f"clu{i:05d}", f"pkg-s{i % len(steady)}", 100 + i % len(steady))
    for i in range(5 * k):  # in state, gone from the manifests: archived
        state[f"client_package.gone-{i}"] = {"id": f"cpg{i}"}
    for i in range(k):  # a price change: a replace, refused without --allow-replace
        name = f"repriced-client-{i}"
        docs.append(_client(name, f"clr{i:05d}", steady[0], price=90))
        state[f"client_package.{name}"] = {"id": f"cpr{i}"}
        clients[f"cpr{i}"] = _remote_client(f"cpr{i}", f"clr{i:05d}", "pkg-s0", 100)
    return _case(docs, state, catalog, clients)


def _case(docs: list[str], state: dict[str, Any], catalog: list[dict[str, Any]], clients: dict[str, Any]) -> dict[str, Any]:
    return {"manifests": "---\n".join(docs), "state": state, "allow_replace": False,
            "remote": {"catalog_packages": catalog, "client_packages": clients, "service_ids": ["svc1"]}}


def _catalog(name: str, title: str, price: int) -> str:
    return (f"apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {{name: {name}}}\n"
            f"spec: {{name: {title}, price: {price}, currency: USD, expiration: 6, expiration_unit: M, "
            f"items: [{{total_bookings: 10, services: [svc1]}}]}}\n")


def _remote_catalog(rid: str, title: str, price: int) -> dict[str, Any]:
    return {"id": rid, "name": title, "price": f"{price}.0", "currency": "USD", "expiration": 6,
            "expiration_unit": "m", "items": [{"total_bookings": "10", "services": [{"id": "svc1"}]}], "products": []}


def _client(name: str, client: str, package: str, *, until: str = "2027-06-30", price: int | None = None) -> str:
    extra = f", price: {price}" if price is not None else ""
    return (f"apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata: {{name: {name}}}\n"
            f"spec: {{client: {client}, package: {package}, valid_until: {until}{extra}}}\n")


def _remote_client(rid: str, client: str, package_id: str, amount: int) -> dict[str, Any]:
    return {"id": rid, "active": "true", "amount": str(amount), "client_id": client, "package_id": package_id,
            "valid_from": "2026-10-01", "valid_until": "2027-06-30", "booking_credits": []}
