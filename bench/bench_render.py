"""Benchmark: the pull-request rendering of large plans stays linear (target: 30,000 changes in
at most 15 times the time of 3,000, i.e. within 1.5x of linear; the times are reported).

The plans are the golden tests' (``tests/render/sized_plans.py``: creates, updates, imports,
archives and a replace, scaled), planned in memory; only ``render_markdown`` is timed, median
of ``--runs`` runs.  The size policy (``reconciler/render/fold.py``) decides what fits by
arithmetic on the pieces' lengths, so the cost must not grow with the square of the changes.

    python bench/bench_render.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "tests" / "render")]

from plancases import run_case  # noqa: E402
from sized_plans import sized_case  # noqa: E402

from reconciler.render.markdown import LIMIT, render_markdown  # noqa: E402

SIZES = (3_000, 30_000)
RATIO_TARGET = 15.0


def measure(runs: int) -> dict[int, float]:
    out = {}
    for n in SIZES:
        plan = run_case(sized_case(n), Path(tempfile.mkdtemp()))
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            doc = render_markdown(plan)
            times.append(time.perf_counter() - t0)
        assert len(doc) <= LIMIT
        out[n] = statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    res = measure(args.runs)
    for n, t in res.items():
        print(f"render_markdown, {n:>6,} changes: median {t:.3f} s")
    ratio = res[SIZES[1]] / res[SIZES[0]]
    ok = ratio <= RATIO_TARGET
    print(f"ratio {ratio:.1f} for 10x the changes (target <= {RATIO_TARGET}); {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
