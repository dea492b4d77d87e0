"""Benchmark: the served sandbox answers GETs of one client package from 16 concurrent clients.

It starts `python -m reconciler.sandbox serve` in its own process (so the server does not share a
GIL with the load generator) on a fresh database, creates a catalog package and a client package
through the API, warms up, then runs ROUNDS rounds of REQUESTS GETs of
`/api2/business/payments/v1/client_packages/{uid}` spread over CONCURRENCY keep-alive
connections (16 concurrent clients), and prints median and p95 latency per round and pooled.

Latency is measured per request from writing the request to reading the whole answer. The
default load generator is a minimal asyncio HTTP/1.1 client (so that the client's own CPU cost,
which shares this machine's two cores with the server, disturbs the measure as little as
possible; it runs on uvloop when installed); `--client httpx` uses one httpx.AsyncClient per
worker instead, closer to what the reconciler does, but then the client's CPU dominates.

Exits 1 when the pooled median is not under the target (5 ms). Usage:
    python bench/bench_sandbox.py [--requests 1000] [--concurrency 16] [--rounds 3] [--client raw|httpx]
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
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 5.0


def start_server(db: Path, checkout: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    """The sandbox served in a child process; from ``checkout``'s source (its folder first on the
    module path) when given, else from this one."""
    cmd = [sys.executable, "-m", "reconciler.sandbox", "serve", "--port", "0", "--db", str(db),
           "--operator"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    proc = subprocess.Popen(cmd, cwd=checkout or ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("fallback:"):
            return proc, line.split()[1].removesuffix("/api2")
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"the sandbox{f' from {checkout}' if checkout else ''} did not start")


def call(method: str, url: str, token: str | None = None, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def prepare(base: str) -> tuple[str, str]:
    info = call("GET", base + "/_sandbox/info")
    token = info["staff_token"]
    api = base + "/api2"
    services = call("GET", f"{api}/platform/v1/services?business_id={info['business_id']}", token)
    clients = call("GET", f"{api}/platform/v1/clients?per_page=1", token)
    package = call("POST", api + "/platform/v1/payment/packages", token, {
        "name": "Bench 10 lessons", "price": 250, "currency": "USD", "expiration": 6,
        "expiration_unit": "M", "products": [],
        "items": [{"total_bookings": 10, "services": [{"id": services["data"]["services"][0]["id"]}]}],
    })["data"]["package"]
    created = call("POST", api + "/platform/v1/payment/client_packages", token, {
        "client_id": clients["data"]["clients"][0]["id"], "package_id": package["id"]})
    return token, "/api2/business/payments/v1/client_packages/" + created["data"]["client_package"]["id"]


async def read_answer(reader: asyncio.StreamReader, status: bytes = b"200") -> None:
    """Read one Content-Length-framed answer whole; RuntimeError unless its status is ``status``."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 " + status):
        raise RuntimeError(head.decode(errors="replace"))
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)


async def raw_worker(host: str, port: int, request: bytes, count: int, out: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(count):
            start = time.perf_counter()
            writer.write(request)
            await read_answer(reader)
            out.append(time.perf_counter() - start)
    finally:
        writer.close()


async def httpx_worker(client: object, url: str, count: int, out: list[float]) -> None:
    for _ in range(count):
        start = time.perf_counter()
        response = await client.get(url)  # type: ignore[attr-defined]
        response.raise_for_status()
        out.append(time.perf_counter() - start)


async def run_round(base: str, token: str, path: str, requests: int, concurrency: int,
                    kind: str) -> tuple[list[float], float]:
    host, port = base.removeprefix("http://").split(":")
    per_worker = [requests // concurrency + (1 if i < requests % concurrency else 0)
                  for i in range(concurrency)]
    out: list[float] = []
    start = time.perf_counter()
    if kind == "raw":
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n").encode()
        await asyncio.gather(*(raw_worker(host, int(port), request, n, out) for n in per_worker))
    else:
        import httpx

        # one client (one connection) per worker: a shared pool adds lock contention
        clients = [httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"})
                   for _ in per_worker]
        try:
            await asyncio.gather(*(httpx_worker(c, base + path, n, out)
                                   for c, n in zip(clients, per_worker, strict=False)))
        finally:
            for c in clients:
                await c.aclose()
    return out, time.perf_counter() - start


def summary(samples: list[float]) -> tuple[float, float, float]:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * len(ms)) - 1)]
    return statistics.median(ms), p95, max(ms)


def run(coroutine: Any) -> Any:
    """asyncio.run, on uvloop when it is installed (a cheaper load generator)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp) / "bench.db")
        try:
            token, path = prepare(base)
            run(run_round(base, token, path, 200, args.concurrency, args.client))
            rows, pooled = [], []
            for n in range(1, args.rounds + 1):
                samples, elapsed = run(run_round(
                    base, token, path, args.requests, args.concurrency, args.client))
                pooled += samples
                rows.append((f"round {n}", *summary(samples), len(samples) / elapsed))
            rows.append(("pooled", *summary(pooled), float("nan")))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"sandbox GET client package: {args.requests} requests x {args.rounds} rounds, "
          f"{args.concurrency} concurrent clients, client={args.client}")
    print(f"{'':10} {'median ms':>10} {'p95 ms':>10} {'max ms':>10} {'req/s':>10}")
    for name, median, p95, worst, rate in rows:
        print(f"{name:10} {median:10.2f} {p95:10.2f} {worst:10.2f} {rate:10.0f}")
    median = rows[-1][1]
    verdict = "PASS" if median < TARGET_MS else "FAIL"
    print(f"{verdict}: pooled median {median:.2f} ms (target < {TARGET_MS:.0f} ms)")
    return 0 if median < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
