"""Benchmark: a refresh of 5,000 client packages through VcitaClient against the served sandbox.

Setup: the sandbox is served on loopback by uvicorn in a child process (so that server and client
do not share one interpreter lock), 5,000 client packages are made through the operator bulk
endpoint, and 20 ms of latency is injected on ``GET /business/payments/v1/client_packages/*``.

Measured, each ``--runs`` times (medians reported), after one unmeasured warm-up pass:

* **client**: ``VcitaClient.get_client_packages`` of all 5,000 at concurrency 32 (no rate limit),
  compared with the bound ``requests x latency / concurrency``; target: within 1.3x of it.
* **sequential**: a plain sequential ``httpx.Client`` loop over the same requests.  To keep the
  run short it is timed on a sample (``--sample``, default 300 requests) and extrapolated linearly
  to all requests (the output says so); target: at least 15x slower than the client.

Usage: ``python bench/bench_refresh.py [--count 5000] [--latency-ms 20] [--concurrency 32]``.
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ServedSandbox

from reconciler.remote import ClientSettings, Secret, Target, VcitaClient
from reconciler.sandbox import DEMO

CP_PATH = "/business/payments/v1/client_packages"
BOUND_FACTOR = 1.3
SPEEDUP_TARGET = 15.0

def target_for(base_url: str) -> Target:
    return Target(name="bench", gateway_url=base_url + "/apigw", fallback_url=base_url + "/api2",
                  business_id=DEMO["business"]["id"], staff_token=Secret(DEMO["tokens"]["staff"]))


async def prepare(base_url: str, count: int, latency_ms: float) -> list[str]:
    """A catalog package, ``count`` client packages of it, and the latency fault."""
    async with VcitaClient(target_for(base_url)) as api:
        service = DEMO["services"][0]["id"]
        package = await api.create_catalog_package({
            "name": "Bench 10", "price": 100, "currency": "USD", "expiration": 12, "expiration_unit": "M",
            "items": [{"total_bookings": 10, "services": [{"id": service}]}], "products": []})
    with httpx.Client(base_url=base_url + "/_sandbox", timeout=120) as op:
        made = op.post("/bulk/client_packages", json={
            "business_id": DEMO["business"]["id"], "package_id": package.id, "count": count})
        made.raise_for_status()
        op.post("/faults", json={"method": "GET", "path": CP_PATH + "/*", "door": "*",
                                 "latency_ms": latency_ms}).raise_for_status()
    return list(made.json()["ids"])


async def client_run(base_url: str, uids: list[str], concurrency: int) -> float:
    settings = ClientSettings(concurrency=concurrency, rate=None, timeout=30.0)
    async with VcitaClient(target_for(base_url), settings=settings) as api:
        t0 = time.perf_counter()
        got = await api.get_client_packages(uids)
        wall = time.perf_counter() - t0
        doors = {s.door for s in api.history}
    missing = [uid for uid, cp in got.items() if cp is None]
    if missing or len(got) != len(uids) or doors != {"fallback"}:
        raise SystemExit(f"client run incomplete: {len(missing)} missing, doors {doors}")
    return wall


def sequential_run(base_url: str, uids: list[str]) -> float:
    headers = {"Authorization": f"Bearer {DEMO['tokens']['staff']}", "Accept": "application/json"}
    with httpx.Client(base_url=base_url + "/api2", headers=headers, timeout=30) as http:
        t0 = time.perf_counter()
        for uid in uids:
            response = http.get(f"{CP_PATH}/{uid}")
            if response.status_code != 200 or not response.json()["success"]:
                raise SystemExit(f"sequential GET {uid} -> {response.status_code}")
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sample", type=int, default=300, help="sequential requests timed (then extrapolated)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, ServedSandbox(Path(tmp) / "sandbox.db") as sandbox:
        base_url = sandbox.base_url
        uids = asyncio.run(prepare(base_url, args.count, args.latency_ms))
        sample = random.Random(0).sample(uids, min(args.sample, len(uids)))
        asyncio.run(client_run(base_url, sample, args.concurrency))  # warm-up, not measured
        client_walls, seq_walls = [], []
        for _ in range(args.runs):
            client_walls.append(asyncio.run(client_run(base_url, uids, args.concurrency)))
            seq_walls.append(sequential_run(base_url, sample) * len(uids) / len(sample))

    bound = args.count * args.latency_ms / 1000 / args.concurrency
    client = statistics.median(client_walls)
    seq = statistics.median(seq_walls)
    ratio, speedup = client / bound, seq / client
    ok_bound, ok_speedup = ratio <= BOUND_FACTOR, speedup >= SPEEDUP_TARGET

    def runs(values: list[float]) -> str:
        return "  ".join(f"{v:8.3f}" for v in values)

    print(f"refresh of {args.count} client packages, {args.latency_ms:g} ms injected latency, "
          f"served sandbox (child process), medians of {args.runs} runs after one unmeasured "
          f"warm-up pass of {len(sample)} requests")
    print(f"{'measure':<44} {'runs (s)':<{10 * args.runs}} {'median':>9}")
    print(f"{'bound = requests x latency / concurrency':<44} {'':<{10 * args.runs}} {bound:9.3f}")
    print(f"{f'VcitaClient, concurrency {args.concurrency}':<44} {runs(client_walls):<{10 * args.runs}} {client:9.3f}")
    print(f"{f'sequential httpx (timed on {len(sample)}, extrapolated)':<44} "
          f"{runs(seq_walls):<{10 * args.runs}} {seq:9.3f}")
    print(f"client / bound   = {ratio:6.2f}x   (target <= {BOUND_FACTOR}x)  {'OK' if ok_bound else 'MISSED'}")
    print(f"sequential / client = {speedup:6.1f}x  (target >= {SPEEDUP_TARGET:g}x)  {'OK' if ok_speedup else 'MISSED'}")
    print(f"client throughput: {args.count / client:,.0f} requests/s")
    return 0 if ok_bound and ok_speedup else 1


if __name__ == "__main__":
    sys.exit(main())
