"""Benchmark: candidate HTTP stacks behind the client's transport seam, same requests, same sandbox.

2,000 GETs of client packages (``VcitaClient.get_client_packages``: the dispatcher, its limits
and retries, as a refresh sends them) at 20 ms injected latency and 32 in flight, against the
sandbox served in its own process.  For each candidate: wall time against the bound
``requests x latency / concurrency`` and the client's CPU per request (this process's
``time.process_time``; the sandbox's CPU is in the other process).  Candidates run in turns
(``--rounds``), so a busy spell of the shared machine does not fall on one of them only; medians
are reported.

Candidates (``--only`` picks some):

* ``stack``: the transport the client uses (``reconciler.remote.http``);
* ``httpx``: httpx's own transport (httpcore's connection pool), limits 32/32;
* ``httpcore-conn``: httpcore's connections in a plain idle list (no pool scan);
* ``httpx-aiohttp``: the ``httpx-aiohttp`` package's transport, when installed (not used: it
  maps aiohttp's "server disconnected" to ``ConnectTimeout``, which would repeat a create).

Usage: ``python bench/bench_transport.py [--count 2000] [--rounds 3] [--only stack,httpx]``
(``BENCH_OLD_WIRE=/path/wire.py`` adds the retired home-made transport, from git history).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refresh import prepare, target_for
from harness import ServedSandbox

from reconciler.cli.common import run_async  # the CLI's event loop (uvloop)
from reconciler.remote import ClientSettings, VcitaClient


def candidates(concurrency: int) -> dict[str, Callable[[], httpx.AsyncBaseTransport]]:
    out: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {}
    try:
        from reconciler.remote.http import HttpTransport

        out["stack"] = lambda: HttpTransport(max_connections=concurrency)
    except ImportError:
        pass
    old_wire = os.environ.get("BENCH_OLD_WIRE")  # a copy of the retired home-made transport, to compare
    if old_wire:
        sys.path.insert(0, str(Path(old_wire).parent))
        wire = __import__(Path(old_wire).stem)
        out["wire-retired"] = lambda: wire.WireTransport(max_connections=concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    out["httpx"] = lambda: httpx.AsyncHTTPTransport(limits=limits)
    try:
        from httpx_aiohttp import AiohttpTransport

        out["httpx-aiohttp"] = lambda: AiohttpTransport(limits=limits)
    except ImportError:
        pass
    out["httpcore-conn"] = lambda: CoreConnections(concurrency)
    return out


class CoreConnections(httpx.AsyncBaseTransport):
    """httpcore's connections (h11, anyio) in a plain idle list: httpx's transport without its
    pool's scan of every connection on every event (a candidate measured, not used)."""

    def __init__(self, max_connections: int) -> None:
        self._max = max_connections
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[Any] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import httpcore

        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max)
        url = request.url
        core = httpcore.Request(method=request.method, url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        async with self._slots:
            connection = None
            while self._idle:
                candidate = self._idle.pop()
                if candidate.is_available() and not candidate.has_expired():
                    connection = candidate
                    break
                await candidate.aclose()
            if connection is None:
                connection = httpcore.AsyncHTTPConnection(origin=core.url.origin, keepalive_expiry=4.0)
            response = await connection.handle_async_request(core)
            body = await response.aread()
            await response.aclose()
            if connection.is_available():
                self._idle.append(connection)
        return httpx.Response(response.status, headers=response.headers, content=body)

    async def aclose(self) -> None:
        for connection in self._idle:
            await connection.aclose()


async def one_run(base_url: str, uids: list[str], concurrency: int,
                  make: Callable[[], httpx.AsyncBaseTransport]) -> tuple[float, float]:
    settings = ClientSettings(concurrency=concurrency, rate=None, timeout=30.0)
    async with VcitaClient(target_for(base_url), settings=settings, transport=make()) as api:
        c0, t0 = time.process_time(), time.perf_counter()
        got = await api.get_client_packages(uids)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if len(got) != len(uids) or any(cp is None for cp in got.values()):
        raise SystemExit("incomplete run")
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="")
    args = parser.parse_args(argv)
    makers = candidates(args.concurrency)
    if args.only:
        makers = {k: v for k, v in makers.items() if k in args.only.split(",")}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in makers}
    with tempfile.TemporaryDirectory() as tmp, ServedSandbox(Path(tmp) / "sandbox.db") as sandbox:
        uids = asyncio.run(prepare(sandbox.base_url, args.count, args.latency_ms))
        for make in makers.values():  # warm-up, not measured
            run_async(one_run(sandbox.base_url, uids[:200], args.concurrency, make))
        for _ in range(args.rounds):
            for name, make in makers.items():
                results[name].append(run_async(one_run(sandbox.base_url, uids, args.concurrency, make)))
    bound = args.count * args.latency_ms / 1000 / args.concurrency
    print(f"{args.count} GETs, {args.latency_ms:g} ms latency, {args.concurrency} in flight, bound {bound:.3f} s; "
          f"medians of {args.rounds} rounds (shared, noisy machine)")
    rows: dict[str, Any] = {}
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs) / args.count * 1000
        rows[name] = (wall, cpu)
        print(f"  {name:14s} wall {wall:6.3f} s  {wall / bound:5.2f}x bound  client CPU {cpu:5.3f} ms/request  "
              f"(walls {' '.join(f'{w:.2f}' for w, _ in runs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
