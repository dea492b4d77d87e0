"""Benchmark: `reconciler validate` on a 5,000-document manifest tree (target: under 2 s).

Writes a tree of 50 folders x 10 files (a realistic layout: one file per few objects), half
catalog packages and half client packages that reference them, then times the real command in a
fresh process (startup and imports included) several times and reports the median.

    python bench/bench_validate.py [--docs 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 2.0

CATALOG = """apiVersion: reconciler/v1
kind: CatalogPackage
metadata:
  name: pkg-{i}
spec:
  name: "Package {i}"
  description: Ten lessons, any level.
  price: {price}
  currency: USD
  expiration: 3
  expiration_unit: M
  items:
    - total_bookings: 10
      services: [bop374z43h5xezh3, vtgltmqazx4tub48]
    - total_bookings: 2
      services: [{{id: qbcpk3h45ttdq5ec}}]
  products: []
  discount_amount: 5
  discount_unit: F
"""

CLIENT = """apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: client-{i}
spec:
  client: {{email: client{i}@example.com}}
  package: pkg-{j}
  valid_from: 2026-09-01
  valid_until: 2027-09-01
  price: 99.5
"""


def write_tree(root: Path, docs: int, files: int = 500) -> None:
    per_file = max(1, docs // files)
    n = 0
    f = 0
    while n < docs:
        folder = root / f"group-{f // 10:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        parts = []
        for _ in range(per_file):
            if n >= docs:
                break
            i = n // 2
            parts.append(CATALOG.format(i=i, price=100 + i % 50) if n % 2 == 0 else CLIENT.format(i=i, j=i))
            n += 1
        (folder / f"objects-{f:04d}.yaml").write_text("---\n".join(parts))
        f += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "manifests"
        write_tree(root, args.docs)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "reconciler", "validate", str(root)],
                                  capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr)
                return 1
        med = statistics.median(times)
        print(f"validate {args.docs} documents: {proc.stdout.strip()}")
        print(f"{'runs':>6} {'median_s':>9} {'min_s':>7} {'max_s':>7} {'target_s':>9} {'ratio':>6}")
        print(f"{args.runs:>6} {med:>9.3f} {min(times):>7.3f} {max(times):>7.3f} {TARGET_S:>9.1f} {med / TARGET_S:>6.2f}")
        return 0 if med < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
