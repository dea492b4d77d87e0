"""Benchmark: drift over many businesses, concurrently across businesses vs one after the other.

Setup: the sandbox is served on loopback by uvicorn in a child process (so server and client do
not share one interpreter lock).  ``--businesses`` businesses are made through the operator API,
each with one catalog package and ``--packages`` client packages of it; each gets a folder
``manifests/<business>/`` (the catalog package adopted with ``reconciler export``, one
ClientPackage manifest per client package, a state tracking all of them, a ``target.toml`` with
its own token file).  Then ``--latency-ms`` (20 ms) of latency is injected on every request
through the operator's faults endpoint.

Measured, ``--runs`` times each (medians reported), with the code of ``reconciler drift --all``
(``reconciler.fleet.businesses``):

* **concurrent**: every business at once (``--jobs`` = number of businesses);
* **sequential sum**: each business alone, one after the other; the sum of their wall times.

Every run must find every business in sync (exit 0), so the drift really read everything.
Per-business client limits: ``--concurrency`` (8, the SaaS default) and ``--rate`` (1000/s: the
SaaS default of 20/s would make the sequential sum minutes long).  Exit status 1 when concurrency
gives no speed-up (``sequential sum / concurrent`` below ``--min-speedup``, default 1.5).

Usage: ``python bench/bench_drift.py [--quick] [--businesses 20] [--packages 250] [--runs 3]``.
``--quick`` is 6 businesses x 60 client packages (well under a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ServedSandbox

from reconciler.adopt import export
from reconciler.fleet import businesses as fleet
from reconciler.model import views as nz
from reconciler.plan.document import fingerprint
from reconciler.remote import Secret, Target, VcitaClient
from reconciler.remote.normalize import client_package
from reconciler.state.store import ResourceState, State, StateStore, TargetRef, utc_now


async def make_business(op: httpx.Client, base_url: str, root: Path, n: int, packages: int) -> fleet.Business:
    """One sandbox business, adopted into ``root/bizNN/`` with every client package tracked."""
    made = op.post("/businesses", json={"name": f"Bench {n}", "services": 1, "clients": 25}).json()
    bid, token = made["business_id"], made["staff_token"]
    folder = root / f"biz{n:02d}"
    folder.mkdir(parents=True)
    (folder / "token").write_text(token)
    (folder / "target.toml").write_text(
        f'gateway_url = "{base_url}/apigw"\nfallback_url = "{base_url}/api2"\nbusiness_id = "{bid}"\n'
        'token_file = "token"\n')
    target = Target(name=folder.name, gateway_url=f"{base_url}/apigw", fallback_url=f"{base_url}/api2",
                    business_id=bid, staff_token=Secret(token))
    op.post("/bulk/packages", json={"business_id": bid, "count": 1}).raise_for_status()
    async with VcitaClient(target) as api:
        listed = await api.list_catalog_packages(include_items=True)
        services = {s.id: s.name for s in await api.list_services()}
    store = StateStore.locate([folder])
    state = State.new(TargetRef(gateway_url=target.gateway_url, business_id=bid))
    adopted = export.prepare(listed, services, state, folder, schema_ref="schema.json")
    state = export.write(adopted, store, state)
    package_name, package_id = adopted.files[0].name, adopted.files[0].remote_id
    op.post("/bulk/client_packages", json={"business_id": bid, "package_id": package_id,
                                           "count": packages}).raise_for_status()
    raw = op.get("/client_packages", params={"business_id": bid}).json()["client_packages"]
    docs, resources = [], dict(state.resources)
    for i, row in enumerate(raw):
        cp = client_package(row)
        view = nz.client_remote(cp)
        name = f"cp-{i:04d}"
        docs.append(f"apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata: {{name: {name}}}\n"
                    f"spec: {{client: {cp.client_id}, package: {package_name}}}\n")
        resources[f"client_package.{name}"] = ResourceState(
            kind="ClientPackage", id=cp.id, fingerprint=fingerprint(view), applied=view,
            booking_credit_ids=nz.client_credit_ids(cp), updated_at=utc_now())
    (folder / "clients.yaml").write_text("---\n".join(docs))
    store.write(State(lineage=state.lineage, serial=state.serial, target=state.target, resources=resources),
                expected_serial=state.serial)
    return fleet.Business(folder.name, folder)


async def drift_all(businesses: list[fleet.Business], opts: fleet.WorkOptions) -> float:
    t0 = time.perf_counter()
    outcomes = await fleet.run_all(businesses, lambda b: fleet.drift_business(b, opts), jobs=len(businesses))
    wall = time.perf_counter() - t0
    bad = [(o.business, o.status, o.error) for o in outcomes if o.status != "in sync"]
    if bad:
        raise SystemExit(f"drift did not find every business in sync: {bad[:3]}")
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 businesses x 60 client packages")
    parser.add_argument("--businesses", type=int, default=20)
    parser.add_argument("--packages", type=int, default=250, help="client packages per business")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8, help="per business")
    parser.add_argument("--rate", type=float, default=1000.0, help="request starts per second, per business")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--min-speedup", type=float, default=1.5)
    args = parser.parse_args(argv)
    if args.quick:
        args.businesses, args.packages = 6, 60

    with tempfile.TemporaryDirectory() as tmp, ServedSandbox(Path(tmp) / "sandbox.db") as sandbox:
        base_url = sandbox.base_url
        root = Path(tmp) / "manifests"
        t0 = time.perf_counter()
        with httpx.Client(base_url=base_url + "/_sandbox", timeout=120) as op:
            businesses = [asyncio.run(make_business(op, base_url, root, n, args.packages))
                          for n in range(args.businesses)]
            op.post("/faults", json={"latency_ms": args.latency_ms}).raise_for_status()
        setup = time.perf_counter() - t0
        opts = fleet.WorkOptions(cwd=Path(tmp), env=dict(os.environ), concurrency=args.concurrency,
                                 rate=args.rate)
        asyncio.run(drift_all(businesses[:1], opts))  # warm-up, not measured
        concurrent, sequential, per_business = [], [], []
        for _ in range(args.runs):
            concurrent.append(asyncio.run(drift_all(businesses, opts)))
            alone = [asyncio.run(drift_all([b], opts)) for b in businesses]
            sequential.append(sum(alone))
            per_business.append(statistics.median(alone))

    conc, seq = statistics.median(concurrent), statistics.median(sequential)
    speedup = seq / conc
    requests = args.businesses * (args.packages + 2)
    ok = speedup >= args.min_speedup

    def runs(values: list[float]) -> str:
        return "  ".join(f"{v:8.2f}" for v in values)

    width = 10 * args.runs
    print(f"drift of {args.businesses} businesses x {args.packages} client packages (+1 catalog package each), "
          f"{args.latency_ms:g} ms injected latency, served sandbox (child process); per-business limits: "
          f"concurrency {args.concurrency}, rate {args.rate:g}/s; medians of {args.runs} runs (setup {setup:.1f} s)")
    print(f"{'measure':<40} {'runs (s)':<{width}} {'median':>8}")
    print(f"{'concurrent (all businesses at once)':<40} {runs(concurrent):<{width}} {conc:8.2f}")
    print(f"{'sequential sum (each business alone)':<40} {runs(sequential):<{width}} {seq:8.2f}")
    print(f"{'  one business alone (median)':<40} {runs(per_business):<{width}} "
          f"{statistics.median(per_business):8.2f}")
    print(f"speed-up = sequential sum / concurrent = {speedup:5.2f}x  (target >= {args.min_speedup:g}x)  "
          f"{'OK' if ok else 'MISSED: concurrency gives no speed-up'}")
    print(f"throughput: {requests / conc:,.0f} requests/s concurrent, {requests / seq:,.0f} requests/s sequential")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
