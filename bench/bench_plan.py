"""Benchmark: planning, in memory at 100,000 resources and against the served sandbox.

1. **In memory** (``--resources 100000``): the pure planner on 1,000 catalog packages and 99,000
   client packages, 98% tracked in state (1% of those changed remotely, so they plan as
   updates) and 2% new (creates).  Inputs are built in memory first (not timed); then
   ``planner.plan`` is timed.  It runs in a fresh process so that its peak memory (``VmHWM``,
   inputs included) means something.  Targets: under 3 s and under 1 GiB.
2. **Served** (``--served 5000``): ``reconciler plan`` (a fresh process, as a user runs it)
   against the sandbox in its own process, with 5,000 tracked client packages and 20 ms of
   latency injected on every API request.  The sandbox counts the requests: there must be
   exactly one GET per tracked client package, plus the catalog list pages (one page and the
   empty page that ends the walk) and the few lookups (one services page; no client looked up
   by e-mail here), and no more.  Reported against the bound
   ``requests x latency / concurrency``.  The plan must show no changes (the state and
   manifests are made to match).  The peer, a plain sequential loop of the same GETs (what a
   user writes by hand), is timed on a sample and extrapolated.

Usage: ``python bench/bench_plan.py [--resources 100000] [--served 5000] [--runs 3] [--skip-served]``.
Exit status 1 when a target or the request-count check is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    ServedSandbox,
    catalog_doc,
    client_doc,
    count_requests,
    median,
    reconciler,
    write_docs,
)

TIME_TARGET_S = 3.0
#: the client's CPU per request (seconds; this process's ``process_time`` over the requests the
#: sandbox counted) of each run of the last ``_library_plans`` call
LAST_CPU: list[float] = []
MEMORY_TARGET = 1 << 30
CP_ROUTE = "/business/payments/v1/client_packages/{uid}"

# --- 1. in memory ---------------------------------------------------------------------------------


def _uid(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))


def build_inputs(resources: int, seed: int = 1) -> tuple[Any, dict[str, Any], Any, Any]:
    """(desired, state resources, actual, options) for ``resources`` objects."""
    from datetime import date

    from reconciler.model import views as nz
    from reconciler.model.manifest import DOCUMENT_ADAPTER
    from reconciler.model.manifest_set import ManifestSet
    from reconciler.plan.document import PlanTarget, fingerprint
    from reconciler.planner import Actual, PlanOptions, RemoteObject
    from reconciler.state.store import ResourceState

    rng = random.Random(seed)
    services = [_uid(rng) for _ in range(20)]
    clients = [_uid(rng) for _ in range(5000)]
    n_catalog = max(1, resources // 100)
    n_client = resources - n_catalog
    desired = ManifestSet()
    state: dict[str, Any] = {}
    catalog: dict[str, Any] = {}
    client_objs: dict[str, Any] = {}
    package_ids: dict[str, str] = {}
    now = "2026-01-01T00:00:00Z"

    def track(i: int) -> bool:
        return i % 50 != 0  # 2% are new: creates

    for i in range(n_catalog):
        doc = DOCUMENT_ADAPTER.validate_python({
            "apiVersion": "reconciler/v1", "kind": "CatalogPackage", "metadata": {"name": f"pkg-{i}"},
            "spec": {"name": f"Package {i}", "price": 100 + i % 50, "currency": "USD", "expiration": 6,
                     "expiration_unit": "M", "products": [],
                     "items": [{"total_bookings": 10, "services": [services[i % 20], services[(i + 1) % 20]]}]}})
        desired.catalog_packages[doc.metadata.name] = doc
        if not track(i):
            continue
        rid = _uid(rng)
        package_ids[doc.metadata.name] = rid
        view = {**nz.catalog_desired(doc.spec), "description": None, "image_path": None, "discount_amount": None,
                "discount_unit": None, "online_payment_enabled": None}
        if i % 100 == 1:
            view["price"] = "1"  # changed in vcita: an update
        catalog[rid] = RemoteObject(id=rid, view=view)
        state[doc.address] = ResourceState(kind="CatalogPackage", id=rid, fingerprint=fingerprint(view),
                                           applied=view, updated_at=now)
    names = list(desired.catalog_packages)
    for i in range(n_client):
        pkg = names[i % len(names)]
        spec: dict[str, Any] = {"client": clients[i % len(clients)], "package": pkg}
        if i >= math.lcm(len(clients), len(names)):  # this client has had this package before: a declared repeat
            spec["repeat_purchase"] = True
        if i % 3 == 0:
            spec["valid_until"] = "2027-06-30"
        if i % 5 == 0:
            spec["booking_credits"] = [{"services": [services[i % len(names) % 20]], "total_bookings": 12}]
        doc = DOCUMENT_ADAPTER.validate_python({"apiVersion": "reconciler/v1", "kind": "ClientPackage",
                                                "metadata": {"name": f"cp-{i}"}, "spec": spec})
        desired.client_packages[doc.metadata.name] = doc
        if not track(i) or pkg not in package_ids:
            continue
        rid = _uid(rng)
        view = {"client_id": spec["client"], "package_id": package_ids[pkg], "price": "100",
                "valid_from": "2026-01-01", "valid_until": spec.get("valid_until", "2026-07-01"),
                "matter_uid": None,
                "booking_credits": {nz.credit_key([services[i % len(names) % 20], services[(i % len(names) + 1) % 20]]):
                                    10}}
        if "booking_credits" in spec:
            view["booking_credits"] = {nz.credit_key(spec["booking_credits"][0]["services"]): 12}
        if i % 100 == 7:
            view = {**view, "valid_until": "2026-12-31"}  # changed in vcita: an update
        client_objs[rid] = RemoteObject(id=rid, view=view, usage=dict.fromkeys(view["booking_credits"], 0),
                                        credit_ids={k: _uid(rng) for k in view["booking_credits"]})
        state[doc.address] = ResourceState(kind="ClientPackage", id=rid, fingerprint=fingerprint(view),
                                           applied=view, updated_at=now)
    desired.files.append("memory.yaml")
    actual = Actual(catalog_packages=catalog, client_packages=client_objs,
                    catalog_names={rid: o.view["name"] for rid, o in catalog.items()},
                    service_ids=frozenset(services), refreshed=True)
    opts = PlanOptions(target=PlanTarget(gateway_url="http://127.0.0.1/apigw", business_id="bench"),
                       today=date(2026, 3, 1), created_at=now, state_lineage="0" * 32, state_serial=1)
    return desired, state, actual, opts


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _in_memory_child(resources: int, runs: int) -> dict[str, Any]:
    from reconciler.planner import plan
    from reconciler.remote import DEFAULT_ROUTES
    from reconciler.remote.calls import Offline

    describe = Offline(DEFAULT_ROUTES, lambda route: route.door)  # as the client does, with each table door

    from harness import python_speed

    t0 = time.perf_counter()
    desired, state, actual, opts = build_inputs(resources)
    build = time.perf_counter() - t0
    speed = python_speed(3)  # this minute's machine speed, beside a figure bound by CPU
    rss_inputs = _vm("VmRSS")
    times, result = [], None
    for _ in range(runs):
        result = None
        t0 = time.perf_counter()
        result = plan(desired, state, actual, opts, describe)
        times.append(time.perf_counter() - t0)
    assert result is not None
    # For the owners of the planner and the CLI: the same plan with the inputs moved out of the
    # garbage collector's reach (gc.freeze), as a process that has loaded them could do.
    import gc

    result = None
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    result = plan(desired, state, actual, opts, describe)
    frozen = time.perf_counter() - t0
    gc.unfreeze()
    counts: dict[str, int] = {}
    for op in result.operations:
        counts[op.action] = counts.get(op.action, 0) + 1
    return {"resources": resources, "build_s": build, "times": times, "median_s": median(times), "frozen_s": frozen,
            "speed_ms": (speed + python_speed(3)) / 2,
            "peak_rss": _vm("VmHWM"), "inputs_rss": rss_inputs, "changes": counts,
            "noops": result.noop_count, "errors": len(result.errors)}


def in_memory(resources: int = 100_000, runs: int = 3) -> dict[str, Any]:
    """Run :func:`_in_memory_child` in a fresh interpreter and return its figures."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            f"import bench_plan; print(json.dumps(bench_plan._in_memory_child({resources}, {runs})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"in-memory planning failed:\n{proc.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["ok"] = out["median_s"] < TIME_TARGET_S and out["peak_rss"] < MEMORY_TARGET and not out["errors"]
    return out


# --- 2. served ------------------------------------------------------------------------------------


def seed_tracked(sandbox: ServedSandbox, folder: Path, count: int, *, name: str = "bench plan") -> dict[str, Any]:
    """A business with one catalog package and ``count`` client packages of it (made through the
    API and the operator's bulk endpoint), manifests that declare exactly them, and a state file
    that tracks them all, as an apply would have left it.  Returns the business."""
    import asyncio

    from reconciler.model import views as nz
    from reconciler.plan.document import fingerprint
    from reconciler.refresh.full import target_ref
    from reconciler.remote import VcitaClient
    from reconciler.remote import normalize as api_nz
    from reconciler.remote.target import resolve_target
    from reconciler.state.store import ResourceState, State, StateStore, utc_now

    business = sandbox.new_business(name, clients=min(max(count, 1), 500))
    services = [business["services"][0]["id"]]
    target = resolve_target(flags={}, env=sandbox.env(business), cwd=folder.parent)
    body = {"name": "Bench Package", "price": 100, "currency": "USD", "expiration": 6, "expiration_unit": "M",
            "items": [{"total_bookings": 10, "services": [{"id": services[0]}]}], "products": []}

    async def create() -> Any:
        async with VcitaClient(target) as api:
            return await api.create_catalog_package(body)

    pkg = asyncio.run(create())
    made = sandbox.op("POST", "/bulk/client_packages", {"business_id": business["business_id"],
                                                        "package_id": pkg.id, "count": count})["ids"] if count else []
    listed = {cp["id"]: cp for cp in sandbox.client_packages(business["business_id"])}
    write_docs(folder / "catalog.yaml", [catalog_doc("bench-pkg", "Bench Package", services)])
    resources: dict[str, ResourceState] = {}
    view = nz.catalog_remote(pkg)
    resources["catalog_package.bench-pkg"] = ResourceState(kind="CatalogPackage", id=pkg.id,
                                                           fingerprint=fingerprint(view), applied=view,
                                                           updated_at=utc_now())
    docs = []
    for i, uid in enumerate(made):
        cp = api_nz.client_package(listed[uid])
        v = nz.client_remote(cp)
        resources[f"client_package.cp-{i:05d}"] = ResourceState(
            kind="ClientPackage", id=uid, fingerprint=fingerprint(v), applied=v,
            booking_credit_ids=nz.client_credit_ids(cp), updated_at=utc_now())
        docs.append(client_doc(f"cp-{i:05d}", cp.client_id, "bench-pkg"))
    for n in range(0, len(docs), 100):
        write_docs(folder / f"clients-{n // 100:04d}.yaml", docs[n:n + 100])
    store = StateStore.locate([folder])
    state = State.new(target_ref(target))._with_resources(resources)
    store.write(state, expected_serial=0)
    return business


def served_plan(sandbox: ServedSandbox, count: int, *, latency_ms: float = 20.0, concurrency: int = 32,
                runs: int = 1, sample: int = 300, work: Path | None = None) -> dict[str, Any]:
    """Time ``reconciler plan`` of ``count`` tracked client packages; count its requests."""
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        sandbox.clear_faults()
        folder = Path(tmp) / "manifests"
        business = seed_tracked(sandbox, folder, count)
        env = sandbox.env(business)
        sandbox.set_latency(latency_ms)
        walls, stats_list = [], []
        proc = None
        for _ in range(runs):
            sandbox.reset_stats()
            t0 = time.perf_counter()
            proc = reconciler(["plan", "--detailed-exitcode", "--concurrency", str(concurrency), "--rate", "10000",
                               str(folder)], cwd=Path(tmp), env=env)
            walls.append(time.perf_counter() - t0)
            stats_list.append(sandbox.stats())
            if proc.returncode != 0:
                raise RuntimeError(f"reconciler plan -> {proc.returncode} (expected 0: no changes)\n"
                                   f"{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
        stats = stats_list[-1]
        gets = count_requests(stats, method="GET", route=CP_ROUTE)
        catalog_pages = count_requests(stats, method="GET", route="/platform/v1/payment/packages")
        services = count_requests(stats, method="GET", route="/platform/v1/services")
        clients = count_requests(stats, method="GET", route="/platform/v1/clients")
        total = stats["total"]
        # One catalog package in the business: one page, and one empty page after it (the
        # catalog list is walked until an empty page; see VcitaClient._pages).
        exact = (gets == count and 1 <= catalog_pages <= 2 and services == 1 and clients == 0
                 and total == gets + catalog_pages + services + clients)
        lib_walls, lib_requests = _library_plans(sandbox, business, folder, concurrency=concurrency, runs=runs)
        lib_cpu = median(LAST_CPU)
        peer = sequential_peer(sandbox, business, folder, sample) if sample else None
        sandbox.clear_faults()
    wall = median(walls)
    lib_wall = median(lib_walls)
    lib_bound = lib_requests * latency_ms / 1000 / concurrency
    bound = total * latency_ms / 1000 / concurrency
    out: dict[str, Any] = {
        "count": count, "latency_ms": latency_ms, "concurrency": concurrency, "runs": runs, "walls": walls,
        "wall": wall, "requests": total, "client_package_gets": gets, "catalog_pages": catalog_pages,
        "service_pages": services, "client_lookups": clients, "requests_exact": exact,
        "bound": bound, "ratio": wall / bound if bound else float("nan"),
        "by_route": list(stats["requests"]),
        "library_wall": lib_wall, "library_walls": lib_walls, "library_requests": lib_requests,
        "library_bound": lib_bound, "library_ratio": lib_wall / lib_bound if lib_bound else float("nan"),
        "library_cpu_per_request": lib_cpu,
    }
    if peer is not None:
        per_request = peer["wall"] / peer["sample"]
        out["sequential_wall"] = per_request * total  # the same requests, one after another
        out["sequential_sample"] = peer["sample"]
        out["speedup"] = out["sequential_wall"] / lib_wall
    return out


def _library_plans(sandbox: ServedSandbox, business: dict[str, Any], folder: Path, *, concurrency: int,
                   runs: int) -> tuple[list[float], int]:
    """Time ``make_plan`` (refresh + plan: what ``reconciler plan`` does after start-up) in this
    process ``runs`` times; (walls, requests of the last run)."""

    from reconciler.cli.common import run_async
    from reconciler.manifest.load import load_manifests
    from reconciler.refresh.full import make_plan
    from reconciler.remote import ClientSettings, VcitaClient
    from reconciler.remote.target import resolve_target
    from reconciler.state.store import StateStore

    desired = load_manifests([folder])
    state = StateStore.locate([folder]).load()
    target = resolve_target(flags={}, env=sandbox.env(business), cwd=folder.parent)

    async def once() -> tuple[float, float, Any]:
        async with VcitaClient(target, settings=ClientSettings(concurrency=concurrency, rate=None)) as api:
            t0, c0 = time.perf_counter(), time.process_time()
            p = await make_plan(api, desired, state, target=target)
            return time.perf_counter() - t0, time.process_time() - c0, p

    walls, requests = [], 0
    LAST_CPU.clear()
    for _ in range(runs):
        sandbox.reset_stats()
        wall, cpu, p = run_async(once())  # on the CLI's event loop (uvloop)
        if p.has_changes or p.errors:
            raise RuntimeError("expected a plan with no changes")
        walls.append(wall)
        requests = sandbox.stats()["total"]
        LAST_CPU.append(cpu / max(requests, 1))
    return walls, requests


def library_refresh(sandbox: ServedSandbox, count: int, *, latency_ms: float = 20.0, concurrency: int = 32,
                    runs: int = 1, work: Path | None = None) -> dict[str, Any]:
    """Refresh + plan of ``count`` tracked client packages in this process (for the size chart)."""
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        sandbox.clear_faults()
        folder = Path(tmp) / "manifests"
        business = seed_tracked(sandbox, folder, count)
        sandbox.set_latency(latency_ms)
        walls, requests = _library_plans(sandbox, business, folder, concurrency=concurrency, runs=runs)
        sandbox.clear_faults()
    wall = median(walls)
    bound = requests * latency_ms / 1000 / concurrency
    return {"count": count, "wall": wall, "walls": walls, "requests": requests, "bound": bound,
            "ratio": wall / bound if bound else float("nan")}


def sequential_peer(sandbox: ServedSandbox, business: dict[str, Any], folder: Path, sample: int) -> dict[str, Any]:
    """What a user writes by hand: one GET after another with a plain ``httpx.Client``, timed on
    ``sample`` of the tracked client packages (latency still injected)."""
    import httpx

    state = json.loads((folder / ".reconciler" / "state.json").read_text())
    uids = [r["id"] for a, r in sorted(state["resources"].items()) if a.startswith("client_package.")]
    uids = random.Random(0).sample(uids, min(sample, len(uids)))
    headers = {"Authorization": f"Bearer {business['staff_token']}", "Accept": "application/json"}
    with httpx.Client(base_url=sandbox.fallback_url, headers=headers, timeout=30) as http:
        t0 = time.perf_counter()
        for uid in uids:
            r = http.get(f"/business/payments/v1/client_packages/{uid}")
            if r.status_code != 200:
                raise RuntimeError(f"sequential GET {uid} -> {r.status_code}")
        wall = time.perf_counter() - t0
    return {"sample": len(uids), "wall": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--served", type=int, default=5000, help="tracked client packages for the served plan")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=300, help="sequential peer: requests timed, then extrapolated")
    parser.add_argument("--skip-served", action="store_true")
    args = parser.parse_args(argv)

    mem = in_memory(args.resources, args.runs)
    print(f"in-memory plan of {mem['resources']:,} resources (inputs built in {mem['build_s']:.1f} s): "
          f"median {mem['median_s']:.3f} s of runs {[round(t, 3) for t in mem['times']]}, "
          f"peak memory {mem['peak_rss'] / 2**20:.0f} MiB (inputs {mem['inputs_rss'] / 2**20:.0f} MiB); "
          f"changes {mem['changes']}, {mem['noops']:,} unchanged; {mem['frozen_s']:.3f} s with gc.freeze()  "
          f"{'OK' if mem['ok'] else 'MISSED'} (targets < {TIME_TARGET_S:g} s, < 1 GiB); machine speed "
          f"{mem['speed_ms']:.1f} ms (harness.python_speed: higher is slower)")
    ok = mem["ok"]
    if not args.skip_served:
        with tempfile.TemporaryDirectory() as tmp, ServedSandbox(Path(tmp) / "sandbox.db") as sandbox:
            r = served_plan(sandbox, args.served, latency_ms=args.latency_ms, concurrency=args.concurrency,
                            runs=args.runs, sample=args.sample)
        print(f"served plan of {r['count']:,} tracked client packages, {r['latency_ms']:g} ms latency, concurrency "
              f"{r['concurrency']}: median {r['wall']:.3f} s of runs {[round(w, 3) for w in r['walls']]} "
              f"(fresh process each)")
        print(f"  requests {r['requests']:,} = {r['client_package_gets']:,} client-package GETs + "
              f"{r['catalog_pages']} catalog list page(s) + {r['service_pages']} services page(s) + "
              f"{r['client_lookups']} client lookups: {'exact' if r['requests_exact'] else 'NOT EXACT'}")
        print(f"  bound = requests x latency / concurrency = {r['bound']:.3f} s; ratio {r['ratio']:.2f}x "
              "(the whole command: start-up, reading manifests and state, refresh, plan, output)")
        print(f"  refresh + plan alone (make_plan, in process): median {r['library_wall']:.3f} s, "
              f"{r['library_requests']:,} requests, bound {r['library_bound']:.3f} s, ratio {r['library_ratio']:.2f}x")
        if "speedup" in r:
            print(f"  sequential peer (timed on {r['sequential_sample']}, extrapolated): "
                  f"{r['sequential_wall']:.1f} s; speed-up over refresh + plan {r['speedup']:.1f}x")
        ok = ok and r["requests_exact"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
