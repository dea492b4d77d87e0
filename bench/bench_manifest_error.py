"""Benchmark: locating one error at the end of a 50 MB manifest (targets: under 60 s, under 2 GiB).

Writes one file of about ``--mb`` MB: catalog and client packages alternating (the documents of
bench_validate.py), the last one with ``expiration: -3``.  Runs the real ``reconciler validate``
in a fresh process, ``--runs`` times, and reports the median wall time, the CPU time and the peak
resident memory of that process (``wait4``'s rusage, so the figure is the child's alone).  Each run
must exit 1 with exactly one diagnostic, at the line and column where the error was written.

    python bench/bench_manifest_error.py [--mb 50] [--runs 3]

Before issue 15 this path parsed the whole file again with ruamel's round-trip loader: about 6 s
and 80 MB per MB of YAML (a 49 MB file took about 20 minutes and 1.5 GB).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_validate import CATALOG, CLIENT  # noqa: E402

WALL_TARGET_S = 60.0
PEAK_TARGET = 2 * 2**30


def write_file(path: Path, mb: float) -> tuple[str, int]:
    """Write about ``mb`` MB of valid documents ending in one invalid one; the diagnostic expected
    (``LINE:COL: ...``) and the number of documents."""
    target = int(mb * 1_000_000)
    size = n = 0
    line = 1
    with path.open("w", encoding="utf-8") as f:
        while size < target:
            i = n // 2
            doc = CATALOG.format(i=i, price=100 + i % 50) if n % 2 == 0 else CLIENT.format(i=i, j=i)
            f.write(doc + "---\n")
            size += len(doc) + 4
            line += doc.count("\n") + 1
            n += 1
        bad = CATALOG.format(i=n, price=1).replace("expiration: 3", "expiration: -3")
        f.write(bad)
    at = line + bad.splitlines().index("  expiration: -3")
    return f"{at}:15: CatalogPackage/pkg-{n}: spec.expiration: must be >= 1 (got -3)", n + 1


def run_once(path: Path, expected: str) -> dict[str, float]:
    """One ``reconciler validate`` in a fresh process: wall, CPU and peak RSS of that process."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "reconciler", "validate", path.name], cwd=path.parent,
                                stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (peak RSS, CPU)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        err = errors.read()
    lines = err.splitlines()
    if proc.returncode != 1 or lines[:1] != [f"{path.name}:{expected}"] or len(lines) != 2:
        raise RuntimeError(f"unexpected result (exit {proc.returncode}):\n{err[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak": usage.ru_maxrss * 1024}


def measure(mb: float = 50, runs: int = 3) -> dict[str, Any]:
    """The benchmark as a dict (for bench/run.py): medians, worst peak, targets, and whether met."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one-error-at-the-end.yaml"
        expected, docs = write_file(path, mb)
        size = path.stat().st_size
        results = [run_once(path, expected) for _ in range(runs)]
    wall = statistics.median(r["wall"] for r in results)
    peak = max(r["peak"] for r in results)
    return {"mb": size / 1e6, "docs": docs, "runs": runs, "walls": [r["wall"] for r in results],
            "wall": wall, "cpu": statistics.median(r["cpu"] for r in results), "peak": peak,
            "ok": wall < WALL_TARGET_S and peak < PEAK_TARGET}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=50.0, help="size of the manifest in MB (default 50)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    r = measure(args.mb, args.runs)
    print(f"one error at the end of a {r['mb']:.1f} MB manifest ({r['docs']:,} documents), "
          f"reconciler validate in a fresh process, {r['runs']} run(s)")
    print(f"{'median_s':>9} {'min_s':>7} {'max_s':>7} {'cpu_s':>7} {'peak_MiB':>9} {'targets':>18} result")
    print(f"{r['wall']:>9.2f} {min(r['walls']):>7.2f} {max(r['walls']):>7.2f} {r['cpu']:>7.2f} "
          f"{r['peak'] / 2**20:>9.0f} {'< 60 s, < 2 GiB':>18} {'OK' if r['ok'] else 'MISSED'}")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
