"""Benchmark: the second memory — discovery of 5,000 client packages over 300 clients through the
business's payment requests (``remote/discovery.py``), against the served sandbox.

Setup: the sandbox is served on loopback in a child process; a business with 300 clients, one
catalog package and 5,000 client packages of it (the operator's bulk insert, clients in turn:
each opens its payment request, linked both ways), and ``--latency-ms`` (default 20 ms) injected
on every API request.

Measured, each ``--runs`` times (medians), after one unmeasured warm-up:

* **business-wide** (``discover(api)``, what ``import --discover``, ``export`` and ``drift`` do):
  requests must be exactly ``pages + 5,000`` (pages of 100, the last one short or empty, one
  confirmation GET per client package), checked against the sandbox's request counts; the wall time
  is compared with its bound ``pages x latency + 5,000 x latency / concurrency`` (the pages one
  after another, the confirmations concurrent; since the confirmations start as each page arrives,
  overlapping the walk, a run may end below it); target: within 1.3x.
* **per client** (``discover(api, clients)`` with all 300 clients, what a plan does for up to
  ``PER_CLIENT_MAX`` clients): requests ``300 + 5,000`` (one page each: 17 or so a client), wall
  against ``(300 + 5,000) x latency / concurrency``.  Reported to choose between the two modes.

Usage: ``python bench/bench_discovery.py [--count 5000] [--clients 300] [--latency-ms 20]
[--modes business-wide]``.
Exit status 1 when a target is missed or a request count is not exact.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ServedSandbox, count_requests

from reconciler.remote import (
    ClientSettings,
    Secret,
    Target,
    VcitaClient,
    discovery,
)

LIST = "/business/payments/v1/payment_requests"
GET_CP = "/business/payments/v1/client_packages/{uid}"
BOUND_FACTOR = 1.3


def _target(sandbox: ServedSandbox, business: dict) -> Target:  # type: ignore[type-arg]
    return Target(name="bench", gateway_url=sandbox.gateway_url, fallback_url=sandbox.fallback_url,
                  business_id=business["business_id"], staff_token=Secret(business["staff_token"]))


async def _run(target: Target, concurrency: int, clients: list[str] | None) -> tuple[float, discovery.Discovery]:
    settings = ClientSettings(concurrency=concurrency, rate=None, timeout=60.0)
    async with VcitaClient(target, settings=settings) as api:
        t0 = time.perf_counter()
        found = await discovery.discover(api, None if clients is None else dict.fromkeys(clients))
        return time.perf_counter() - t0, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="business-wide,per client",
                        help="comma-separated: business-wide, per client (both by default)")
    args = parser.parse_args(argv)
    lat = args.latency_ms / 1000
    ok = True
    with tempfile.TemporaryDirectory() as tmp, ServedSandbox(Path(tmp) / "sandbox.db") as sandbox:
        business = sandbox.new_business("Discovery bench", clients=args.clients, services=1, products=0)
        package = sandbox.op("POST", "/bulk/packages", {"business_id": business["business_id"], "count": 1})["ids"][0]
        client_ids = [c["id"] if isinstance(c, dict) else c for c in business["clients"]]
        for start in range(0, args.count, 1000):  # the bulk insert in slices (one write each)
            sandbox.op("POST", "/bulk/client_packages", {"business_id": business["business_id"], "package_id": package,
                                                         "client_ids": client_ids, "count": min(1000, args.count - start)})
        target = _target(sandbox, business)
        sandbox.set_latency(args.latency_ms)
        asyncio.run(_run(target, args.concurrency, None))  # warm-up, not measured
        results = {}
        modes = [m.strip() for m in args.modes.split(",")]
        for mode, clients in (("business-wide", None), ("per client", client_ids)):
            if mode not in modes:
                continue
            old = discovery.PER_CLIENT_MAX
            discovery.PER_CLIENT_MAX = len(client_ids) if clients else old
            walls, counts = [], []
            try:
                for _ in range(args.runs):
                    sandbox.reset_stats()
                    wall, found = asyncio.run(_run(target, args.concurrency, clients))
                    stats = sandbox.stats()
                    counts.append((count_requests(stats, route=LIST), count_requests(stats, route=GET_CP),
                                   sum(s.pages for s in found.searches), len(found.packages)))
                    walls.append(wall)
            finally:
                discovery.PER_CLIENT_MAX = old
            lists, gets, pages, found_n = counts[0]
            expected_pages = (args.count // 100 + 1) if clients is None else len(client_ids)
            exact = (all(c == counts[0] for c in counts) and found_n == args.count and gets == args.count
                     and lists == pages == expected_pages)
            bound = (pages * lat + args.count * lat / args.concurrency if clients is None
                     else (pages + args.count) * lat / args.concurrency)
            results[mode] = (walls, bound, lists, gets, exact)
            ok = ok and exact and (clients is not None or statistics.median(walls) / bound <= BOUND_FACTOR)
    print(f"discovery of {args.count} client packages over {args.clients} clients, {args.latency_ms:g} ms injected "
          f"latency, concurrency {args.concurrency}, served sandbox (child process), medians of {args.runs} runs "
          "after one unmeasured warm-up (shared, noisy machine)")
    for mode, (walls, bound, lists, gets, exact) in results.items():
        med = statistics.median(walls)
        target_note = f"(target <= {BOUND_FACTOR}x)" if mode == "business-wide" else "(reported)"
        print(f"{mode:<14} requests: {lists} list pages + {gets} client package GETs = {lists + gets} "
              f"({'exact' if exact else 'NOT EXACT'}); wall {'  '.join(f'{w:.3f}' for w in walls)} s, "
              f"median {med:.3f} s; bound {bound:.3f} s; ratio {med / bound:.2f}x {target_note}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
