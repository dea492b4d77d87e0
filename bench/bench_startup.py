"""Benchmark: start-up of the CLI (target: `reconciler --help` and one Tab of completion < 0.25 s).

Times fresh processes of the installed `reconciler` console script (the one next to this
Python), medians of several runs: `reconciler --help`, `reconciler plan --help`, a bash
completion request for `reconciler plan --` (what one Tab costs), and `python -c pass` (the
interpreter's own start-up, the floor). With --importtime it also prints the ten slowest
cumulative imports of `import reconciler.cli` (python -X importtime).

    python bench/bench_startup.py [--runs 15] [--importtime]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 0.25


def _script() -> str:
    here = Path(sys.executable).parent / "reconciler"
    return str(here) if here.exists() else (shutil.which("reconciler") or "reconciler")


def cases() -> dict[str, tuple[list[str], dict[str, str]]]:
    exe = _script()
    complete = {"_RECONCILER_COMPLETE": "bash_complete", "COMP_WORDS": "reconciler plan --", "COMP_CWORD": "2"}
    return {
        "python -c pass (floor)": ([sys.executable, "-c", "pass"], {}),
        "reconciler --help": ([exe, "--help"], {}),
        "reconciler plan --help": ([exe, "plan", "--help"], {}),
        "completion: reconciler plan --<Tab>": ([exe], complete),
    }


def measure(runs: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, (argv, extra) in cases().items():
        env = {**os.environ, **extra}
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - t0)
        out[name] = {"median_s": statistics.median(times), "min_s": min(times), "runs": runs}
    return out


def importtime() -> list[str]:
    # cwd elsewhere: 'python -c' puts the current folder first on sys.path, and from a checkout
    # that would time the checkout's sources instead of the installed package.
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", "import reconciler.cli"],
                       capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    rows = []
    for line in p.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    return [f"{us / 1000:8.1f} ms  {name}" for us, name in rows[:10]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--importtime", action="store_true")
    args = ap.parse_args(argv)
    res = measure(args.runs)
    ok = True
    for name, r in res.items():
        bounded = name.startswith(("reconciler --help", "completion"))
        verdict = ("OK" if r["median_s"] < TARGET_S else "SLOW") if bounded else "-"
        ok &= verdict != "SLOW"
        bound = f"< {TARGET_S:.2f} s: {verdict}" if bounded else ""
        print(f"{name:<40} median {r['median_s']:.3f} s  min {r['min_s']:.3f} s  ({r['runs']} runs)  {bound}")
    if args.importtime:
        print("\nslowest cumulative imports of 'import reconciler.cli':")
        print("\n".join(importtime()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
