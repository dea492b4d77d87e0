"""Run a command in a fresh process and measure its peak resident memory.

The kernel's ``ru_maxrss`` of a child counts the memory it had *before* ``exec`` too, and a child
forked from a large process (a test runner that has grown) starts as large as its parent.  So
the command is started by a small intermediate Python process, whose own child's peak is then
that of the command alone (plus the few MiB of the intermediate process, an overestimate).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_LAUNCHER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))\n"
    "sys.exit(code)\n"
)


@dataclass
class Measured:
    code: int
    out: str
    err: str
    peak: int  # bytes


def run_measured(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120) -> Measured:
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = os.path.join(tmp, "peak")
        proc = subprocess.run([sys.executable, "-c", _LAUNCHER, peak_file, *args], cwd=cwd, env=env, text=True,
                              capture_output=True, timeout=timeout, check=False)
        peak = int(Path(peak_file).read_text()) if os.path.exists(peak_file) else 0
    return Measured(proc.returncode, proc.stdout, proc.stderr, peak)
