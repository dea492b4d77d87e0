"""Benchmark: the served sandbox's CPU per create of a client package (issue 15's apply).

Each run starts ``python -m reconciler.sandbox serve`` in its own process on a fresh database,
makes a business through the operator API (20 clients, 3 services, 2 products, as
``bench/harness.py`` does for the apply benchmark) and one catalog package through the API, warms
up with WARMUP creates, then POSTs CREATES creates of client packages (clients in rotation)
through the gateway door (the door the reconciler creates through), CONCURRENCY at a time over
keep-alive connections, with a minimal asyncio HTTP/1.1 load generator (on uvloop when installed;
it shares the machine's two cores with the server, so it is kept light).  Every answer must be a
201.

``--latency-ms`` injects a latency fault on every request, as ``bench/bench_apply.py`` does
(requests then arrive spread out, as in an apply, rather than in bursts).

Reported per run: the SERVER process's CPU (user + system, from ``/proc/PID/stat``, so it counts
every thread of the server and nothing of the load generator) divided by the creates, and the
wall time.  Medians of the runs, per checkout.

``--checkout DIR`` (repeatable) serves the sandbox from another checkout's source (e.g. ``main``'s
worktree) with the same interpreter; several checkouts are run alternately (A B A B ...), so that
the machine's drift (other work shares its two cores) falls on both alike.  Default: this
checkout only.

Usage:
    python bench/bench_sandbox_creates.py [--creates 2000] [--concurrency 32] [--runs 5]
                                         [--latency-ms 0] [--checkout ../main --checkout .]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sandbox import call, read_answer, run, start_server

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def served_from(checkout: Path) -> str:
    """Where the sandbox module is imported from with ``checkout``'s environment (a check that
    the comparison compares what it says)."""
    out = subprocess.run([sys.executable, "-c", "import reconciler.sandbox as s; print(s.__file__)"],
                         cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of proc(5)


def prepare(base: str) -> tuple[str, str, list[str]]:
    """(staff token, catalog package id, client ids) of a business made for the run."""
    business = call("POST", base + "/_sandbox/businesses",
                    body={"name": "bench creates", "clients": 20, "services": 3, "products": 2})
    token = business["staff_token"]
    service = business["services"][0]["id"]
    package = call("POST", base + "/api2/platform/v1/payment/packages", token, {
        "name": "Bench Package", "price": 100, "currency": "USD", "expiration": 6,
        "expiration_unit": "M", "products": [],
        "items": [{"total_bookings": 10, "services": [{"id": service}]}],
    })["data"]["package"]
    return token, package["id"], [c["id"] for c in business["clients"]]


async def worker(host: str, port: int, requests: list[bytes]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            writer.write(request)
            await read_answer(reader, b"201")
    finally:
        writer.close()


async def creates(base: str, token: str, package: str, clients: list[str], count: int,
                  concurrency: int) -> None:
    host, port = base.removeprefix("http://").split(":")
    path = "/apigw/platform/v1/payment/client_packages"
    requests = []
    for i in range(count):
        body = json.dumps({"client_id": clients[i % len(clients)], "package_id": package}).encode()
        requests.append((f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         f"Authorization: Bearer {token}\r\nAccept: application/json\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                         "\r\n").encode() + body)
    shares = [requests[i::concurrency] for i in range(concurrency)]
    await asyncio.gather(*(worker(host, int(port), share) for share in shares if share))


def one_run(checkout: Path, count: int, concurrency: int, warmup: int,
            latency_ms: float) -> tuple[float, float]:
    """(server CPU ms per create, wall s) of one run on a fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp) / "bench.db", checkout)
        try:
            token, package, clients = prepare(base)
            if latency_ms:  # as bench/harness.py's set_latency: every API request waits
                call("POST", base + "/_sandbox/faults",
                     body={"method": "*", "path": "*", "door": "*", "latency_ms": latency_ms})
            run(creates(base, token, package, clients, warmup, concurrency))
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            run(creates(base, token, package, clients, count, concurrency))
            wall, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            assert proc.stdout is not None
            proc.stdout.close()
    return cpu * 1000 / count, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="injected latency on every request (bench_apply.py uses 20)")
    parser.add_argument("--checkout", type=Path, action="append",
                        help="serve from this checkout (repeatable; alternated). Default: this one")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in (args.checkout or [ROOT])]
    for checkout in checkouts:
        print(f"{checkout}: {served_from(checkout)}")
    results: dict[Path, list[tuple[float, float]]] = {c: [] for c in checkouts}
    for n in range(args.runs):
        for checkout in checkouts:
            cpu, wall = one_run(checkout, args.creates, args.concurrency, args.warmup,
                                args.latency_ms)
            results[checkout].append((cpu, wall))
            load = os.getloadavg()[0]
            print(f"run {n + 1} {checkout.name:>12}: server CPU {cpu:.3f} ms/create, "
                  f"wall {wall:.3f} s, load {load:.2f}", flush=True)
    print(f"\nserved sandbox, {args.creates} creates of client packages x {args.runs} runs, "
          f"{args.concurrency} in flight, {args.latency_ms:g} ms injected latency\n(medians; the machine "
          "is shared: see the load column)")
    print(f"{'checkout':>30} {'CPU ms/create':>14} {'wall s':>8} {'creates/s':>10}")
    for checkout, rows in results.items():
        cpu = statistics.median(r[0] for r in rows)
        wall = statistics.median(r[1] for r in rows)
        print(f"{checkout!s:>30} {cpu:14.3f} {wall:8.3f} {args.creates / wall:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
