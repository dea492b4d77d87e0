"""Benchmark: peak memory of ``reconciler plan`` against servers that attack it.

The misbehaving server of the test suite (``tests/support/hostile.py``) stands on loopback in
front of the sandbox (served in its own process) and answers every GET with a gzip bomb (1 MiB
that decodes to 1 GiB), with header lines that never end, or with one header value that never
ends.  ``reconciler plan`` runs in a fresh process against it; its peak resident memory is the
kernel's ``ru_maxrss`` of that process alone (``tests/support/peakrun.py``).  Target: under 300 MiB each, and exit status 1 (one
clear error).

Usage: ``python bench/bench_hostile.py [--runs 3]``.  Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "support"))

from harness import ROOT, ServedSandbox, median  # noqa: E402
from hostile import HostileProxy  # noqa: E402
from peakrun import run_measured  # noqa: E402

MEMORY_TARGET = 300 << 20
MODES = ("gzip-bomb", "endless-headers", "endless-value")


def plan_once(sandbox: ServedSandbox, mode: str, work: Path) -> dict[str, Any]:
    from reconciler.sandbox import DEMO

    with HostileProxy(sandbox.base_url, mode) as hostile:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VCITA_", "RECONCILER_"))}
        env.update(VCITA_GATEWAY_URL=hostile.url + "/apigw", VCITA_FALLBACK_URL=hostile.url + "/api2",
                   VCITA_BUSINESS_ID=DEMO["business"]["id"], VCITA_STAFF_TOKEN=DEMO["tokens"]["staff"])
        t0 = time.perf_counter()
        run = run_measured([sys.executable, "-m", "reconciler", "plan", "manifests"], cwd=work, env=env)
        message = next((line for line in run.err.splitlines() if line.startswith("Error:")), "")
    return {"wall": time.perf_counter() - t0, "peak": run.peak, "exit": run.code, "error": message[:160]}


def measure(sandbox: ServedSandbox, runs: int = 3) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "manifests", work / "manifests")
        for mode in MODES:
            samples = [plan_once(sandbox, mode, work) for _ in range(runs)]
            peak = median([s["peak"] for s in samples])
            out[mode] = {"peak": peak, "peaks": [s["peak"] for s in samples], "wall": median([s["wall"] for s in samples]),
                         "exits": [s["exit"] for s in samples], "error": samples[-1]["error"],
                         "ok": peak < MEMORY_TARGET and all(s["exit"] == 1 for s in samples)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, ServedSandbox(Path(tmp) / "sandbox.db") as sandbox:
        results = measure(sandbox, args.runs)
    for mode, r in results.items():
        print(f"plan against {mode:16s} peak {r['peak'] / 2**20:6.1f} MiB (runs "
              f"{', '.join(f'{p / 2**20:.0f}' for p in r['peaks'])}), {r['wall']:.2f} s, exits {r['exits']}, "
              f"target < 300 MiB and exit 1: {'OK' if r['ok'] else 'MISSED'}\n    {r['error']}")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
