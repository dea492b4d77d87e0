"""Every benchmark script imports against the package as it is laid out now: the scripts are run
by hand and by bench/run.py, never by the suite, so a module moved in the package once broke
bench_drift.py unseen (``from reconciler.adopt import fleet``) until a full benchmark run.
Imported in a child process (the scripts put their folder and the checkout first on sys.path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"

CHILD = """
import importlib, sys, traceback
sys.path.insert(0, sys.argv[1])
failed = []
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_benchmark_script_imports() -> None:
    scripts = sorted(p.stem for p in BENCH.glob("*.py"))
    assert "bench_drift" in scripts and "run" in scripts
    run = subprocess.run([sys.executable, "-c", CHILD, str(BENCH), *scripts], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
