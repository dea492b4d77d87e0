"""Benchmark: the postgres state backend against the file backend, in one run.

Setup: the sandbox runs in its own process (``bench/harness.py``) and a throwaway PostgreSQL
server is started for the run (``tests/support/pg_cluster.py``: initdb in a temporary folder, a
free loopback port, durable defaults: fsync and synchronous_commit on, as the file backend's
fsync'd writes are).

Measured:

* **apply**: the applier applying COUNT client packages (``bench_apply.apply_once``: 20 ms injected
  latency on every request, concurrency 32; the committer writes the state dozens of times), with
  the file backend and with the postgres backend, alternating, ``--runs`` times each (medians).
  Target: postgres / file <= 1.2.
* **fleet**: ``reconciler plan --all --jobs N`` over BUSINESSES business folders (a fresh process;
  every folder's ``target.toml`` says ``state = "postgres"``; each business was applied first
  with ``apply --all``, which wrote its state into the database), all against one server: wall time, and the number of
  businesses that ended in an error (lock errors included).  Target: no error.  With
  ``--processes P``, also P ``plan --all --shard I/P`` processes at once over the same folders
  (the server's default 100 connection slots; a full server is waited for, not an error).

Usage: ``python bench/bench_state_backend.py [--count 1000] [--runs 3] [--businesses 200] [--jobs 200]``.
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "support"))

import bench_apply  # noqa: E402
from harness import ServedSandbox, reconciler, write_client_packages  # noqa: E402
from pg_cluster import PgCluster  # noqa: E402

RATIO_TARGET = 1.2


def measure_apply(sandbox: ServedSandbox, dsn: str, count: int, runs: int) -> dict[str, Any]:
    from reconciler.state.backends.config import StateConfig

    os.environ["BENCH_STATE_DSN"] = dsn
    pg = StateConfig(backend="postgres", dsn_env="BENCH_STATE_DSN", source="bench")
    walls: dict[str, list[float]] = {"file": [], "postgres": []}
    writes: dict[str, list[int]] = {"file": [], "postgres": []}
    for _ in range(runs):
        for name, config in (("file", None), ("postgres", pg)):
            r = bench_apply.apply_once(sandbox, count, cli=False, state_config=config)
            walls[name].append(r["wall"])
            writes[name].append(r["state_writes"])
    med = {k: statistics.median(v) for k, v in walls.items()}
    return {"count": count, "runs": runs, "file": med["file"], "postgres": med["postgres"],
            "ratio": med["postgres"] / med["file"], "walls": walls, "state_writes": writes}


def measure_fleet(sandbox: ServedSandbox, pg: PgCluster, businesses: int, jobs: int, work: Path,
                  processes: int = 0) -> dict[str, Any]:
    dsn = pg.new_database("fleet_bench")
    root = work / "fleet" / "manifests"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCITA_", "RECONCILER_"))}
    env["FLEET_DSN"] = dsn
    for i in range(businesses):
        b = sandbox.new_business(f"fleet {i}", clients=3)
        folder = root / f"b{i:04d}"
        write_client_packages(folder, b, 3)
        var = f"TOKEN_{i}"
        env[var] = b["staff_token"]
        (folder / "target.toml").write_text(
            f'gateway_url = "{sandbox.gateway_url}"\nfallback_url = "{sandbox.fallback_url}"\n'
            f'business_id = "{b["business_id"]}"\ntoken_env = "{var}"\n'
            'state = "postgres"\nstate_dsn_env = "FLEET_DSN"\n')
    # every business applied once (its state written into the database), then planned together
    t0 = time.perf_counter()
    proc = reconciler(["apply", "--all", "--auto-approve", "--jobs", "32", "--rate", "10000", str(root)],
                      cwd=root.parent, env=env)
    apply_wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"apply --all -> {proc.returncode}: {proc.stdout[-2000:]}{proc.stderr[-1000:]}")
    t0 = time.perf_counter()
    proc = reconciler(["plan", "--all", "--jobs", str(jobs), "--rate", "10000", "--format", "json", str(root)],
                      cwd=root.parent, env=env)
    wall = time.perf_counter() - t0
    doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {"businesses": []}
    errors = [b for b in doc["businesses"] if b["exit_code"] == 1]
    lock_errors = [b for b in errors if "lock" in (b.get("error") or "")]
    out = {"businesses": businesses, "jobs": jobs, "wall": wall, "apply_all_wall": apply_wall,
           "rows": len(doc["businesses"]), "errors": len(errors), "lock_errors": len(lock_errors),
           "first_error": errors[0]["error"] if errors else None, "exit_code": proc.returncode}
    if processes:
        out["processes"] = measure_processes(root, env, processes)
    return out


def measure_processes(root: Path, env: dict[str, str], processes: int) -> dict[str, Any]:
    """``processes`` concurrent ``plan --all --shard I/P`` processes over the same fleet (as a
    Kubernetes indexed Job would run them), all against the one server."""
    import subprocess

    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "reconciler", "plan", "--all", "--shard", f"{i}/{processes}",
                               "--jobs", "16", "--rate", "10000", "--format", "json", str(root)],
                              cwd=root.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(processes)]
    rows, errors, lock_errors, first = 0, 0, 0, None
    for p in procs:
        stdout, _ = p.communicate(timeout=900)
        doc = json.loads(stdout) if stdout.strip().startswith("{") else {"businesses": []}
        rows += len(doc["businesses"])
        for b in doc["businesses"]:
            if b["exit_code"] == 1:
                errors += 1
                lock_errors += "lock" in (b.get("error") or "")
                first = first or b.get("error")
    return {"processes": processes, "wall": time.perf_counter() - t0, "rows": rows, "errors": errors,
            "lock_errors": lock_errors, "first_error": first}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--businesses", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--processes", type=int, default=0,
                        help="also run this many 'plan --all --shard I/P' processes at once over the same fleet")
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, ServedSandbox(Path(tmp) / "sandbox.db") as sandbox, \
            PgCluster(fsync=True, max_connections=100) as pg:
        dsn = pg.new_database("apply_bench")
        a = measure_apply(sandbox, dsn, args.count, args.runs)
        f = None if args.skip_fleet else measure_fleet(sandbox, pg, args.businesses, args.jobs, Path(tmp),
                                                       args.processes)
    ok = a["ratio"] <= RATIO_TARGET and (f is None or (f["errors"] == 0 and f["rows"] == f["businesses"]))
    print(f"apply of {a['count']} client packages (20 ms latency, concurrency 32), medians of {a['runs']} runs each, "
          "alternating:")
    print(f"  file backend {a['file']:.3f} s (runs {[round(w, 3) for w in a['walls']['file']]}, state writes "
          f"{a['state_writes']['file']}); postgres backend {a['postgres']:.3f} s (runs "
          f"{[round(w, 3) for w in a['walls']['postgres']]}, state writes {a['state_writes']['postgres']})")
    print(f"  postgres / file = {a['ratio']:.2f}x (target <= {RATIO_TARGET}x)")
    if f is not None:
        print(f"plan --all of {f['businesses']} businesses, --jobs {f['jobs']}, states in one PostgreSQL server: "
              f"{f['wall']:.2f} s, {f['rows']} rows, {f['errors']} errors ({f['lock_errors']} lock errors); "
              f"apply --all before it (--jobs 32): {f['apply_all_wall']:.2f} s")
        if f["first_error"]:
            print(f"  first error: {f['first_error']}")
        pr = f.get("processes")
        if pr:
            print(f"{pr['processes']} concurrent 'plan --all --shard I/{pr['processes']}' processes over the same "
                  f"businesses: {pr['wall']:.2f} s, {pr['rows']} rows, {pr['errors']} errors ({pr['lock_errors']} "
                  "lock errors)" + (f"; first error: {pr['first_error']}" if pr["first_error"] else ""))
            ok = ok and pr["errors"] == 0 and pr["rows"] == f["businesses"]
    print("OK" if ok else "MISSED")
    if args.json:
        print(json.dumps({"apply": a, "fleet": f}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
