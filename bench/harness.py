"""Shared by the benchmark, soak and crash scripts: a served sandbox in its own process, its
operator API, a business made for the run, and manifest trees of any size.

Nothing here imports reconciler's internals (only the sandbox's URL layout) except where a
script needs the library itself; the sandbox runs as ``python -m reconciler.sandbox serve`` (so
server and client do not share one interpreter lock) and is driven over HTTP only.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # measure the checkout, not whatever copy was last pip-installed
    sys.path.insert(0, str(ROOT))

from reconciler.sandbox.server import SandboxURLs  # noqa: E402 - after the checkout is on sys.path

API_DOORS = ("gateway", "fallback")


class ServedSandbox(SandboxURLs):
    """``python -m reconciler.sandbox serve --port 0 --db FILE --operator`` in a child process."""

    def __init__(self, db: Path, *, log: Path | None = None) -> None:
        self.db = Path(db)
        self.log_path = log or self.db.with_suffix(".log")
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self._op: httpx.Client | None = None

    def start(self) -> ServedSandbox:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w")
        cmd = [sys.executable, "-m", "reconciler.sandbox", "serve", "--port", "0", "--db", str(self.db),
               "--operator"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("fallback:"):
                self.base_url = line.split()[1].removesuffix("/api2")
                break
            if not line and self.proc.poll() is not None:
                break
        if not self.base_url:
            self.stop()
            raise RuntimeError(f"the sandbox did not start; see {self.log_path}")
        self._op = httpx.Client(base_url=self.operator_url, timeout=300)
        return self

    def stop(self) -> None:
        if self._op is not None:
            self._op.close()
            self._op = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ServedSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- operator API -------------------------------------------------------------------------

    def op(self, method: str, path: str, body: Any = None) -> Any:
        assert self._op is not None, "start the sandbox first"
        r = self._op.request(method, path, json=body)
        if r.status_code >= 400:
            raise RuntimeError(f"operator {method} {path} -> {r.status_code}: {r.text[:300]}")
        return r.json()

    def new_business(self, name: str, *, clients: int = 20, services: int = 3, products: int = 2,
                     business_id: str | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"name": name, "clients": clients, "services": services, "products": products}
        if business_id:
            spec["id"] = business_id
        return self.op("POST", "/businesses", spec)  # type: ignore[no-any-return]

    def client_packages(self, business_id: str) -> list[dict[str, Any]]:
        return list(self.op("GET", f"/client_packages?business_id={business_id}")["client_packages"])

    def clear_faults(self) -> None:
        self.op("DELETE", "/faults")

    def add_fault(self, **spec: Any) -> None:
        self.op("POST", "/faults", spec)

    def set_latency(self, latency_ms: float) -> None:
        """Every API request (both doors, every route) waits ``latency_ms`` first."""
        self.clear_faults()
        if latency_ms:
            self.add_fault(method="*", path="*", door="*", latency_ms=latency_ms)

    def reset_stats(self) -> None:
        self.op("DELETE", "/stats")

    def stats(self) -> dict[str, Any]:
        return self.op("GET", "/stats")  # type: ignore[no-any-return]

    def injected_latency(self, latency_ms: float, samples: int = 40) -> float:
        """The latency the sandbox really adds to a request set to ``latency_ms`` (ms): the median
        round trip of one small GET, one at a time, with and without it.  The bounds assume the
        setting; the event loop's millisecond timers make the real figure a little longer."""
        business = self.new_business("latency probe", clients=1, services=1, products=0)
        url = f"{self.fallback_url}/platform/v1/services?business_id={business['business_id']}"
        trips: dict[float, list[float]] = {0.0: [], latency_ms: []}
        with httpx.Client(headers={"Authorization": f"Bearer {business['staff_token']}"}, timeout=30) as client:
            for _ in range(samples):
                for setting, found in trips.items():
                    self.set_latency(setting)
                    t0 = time.perf_counter()
                    client.get(url).raise_for_status()
                    found.append(time.perf_counter() - t0)
        self.clear_faults()
        return (statistics.median(trips[latency_ms]) - statistics.median(trips[0.0])) * 1000

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system, every thread) the served sandbox's process has used so far;
        None where ``/proc`` does not tell (not Linux)."""
        try:
            assert self.proc is not None
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, AssertionError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def env(self, business: dict[str, Any]) -> dict[str, str]:
        """The environment that points the CLI at ``business`` in this sandbox."""
        return env_for(self.gateway_url, self.fallback_url, business["business_id"], business["staff_token"])


def env_for(gateway: str, fallback: str, business_id: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCITA_", "RECONCILER_"))}
    env.update(VCITA_GATEWAY_URL=gateway, VCITA_FALLBACK_URL=fallback, VCITA_BUSINESS_ID=business_id,
               VCITA_STAFF_TOKEN=token, PYTHONUNBUFFERED="1")
    return env


def count_requests(stats: dict[str, Any], *, method: str | None = None, route: str | None = None,
                   door: str | None = None) -> int:
    """Requests of the sandbox's stats matching the filters (route: a substring of the template)."""
    return sum(r["count"] for r in stats["requests"]
               if (method is None or r["method"] == method) and (door is None or r["door"] == door)
               and (route is None or route in r["route"]))


# --- manifests ------------------------------------------------------------------------------------

HEADER = "apiVersion: reconciler/v1\n"


def catalog_doc(name: str, title: str, services: Sequence[str], *, price: float = 100, total: int = 10,
                description: str | None = None) -> str:
    lines = [HEADER + "kind: CatalogPackage", "metadata:", f"  name: {name}", "spec:",
             f"  name: {json.dumps(title)}", f"  price: {price:g}", "  currency: USD", "  expiration: 6",
             "  expiration_unit: M", "  items:", f"    - total_bookings: {total}",
             f"      services: [{', '.join(services)}]", "  products: []"]
    if description is not None:
        lines.append(f"  description: {json.dumps(description)}")
    return "\n".join(lines) + "\n"


def client_doc(name: str, client: str, package: str, *, valid_until: str | None = None,
               credits: tuple[Sequence[str], int] | None = None, price: int | None = None) -> str:
    lines = [HEADER + "kind: ClientPackage", "metadata:", f"  name: {name}", "spec:",
             f"  client: {client}", f"  package: {package}"]
    if price is not None:
        lines.append(f"  price: {price}")
    if valid_until is not None:
        lines.append(f"  valid_until: {valid_until}")
    if credits is not None:
        services, total = credits
        lines += ["  booking_credits:", f"    - services: [{', '.join(services)}]",
                  f"      total_bookings: {total}"]
    return "\n".join(lines) + "\n"


def write_docs(path: Path, docs: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n".join(docs))


def write_client_packages(folder: Path, business: dict[str, Any], count: int, *, package: str = "bench-pkg",
                          per_file: int = 100) -> None:
    """``count`` client packages of one catalog package (also written), clients in rotation: from
    the second round on, each is a further sale of the package to its client, declared as one
    (``repeat_purchase: true``, which the plan needs and the create request does not carry)."""
    services = [s["id"] for s in business["services"]][:1]
    clients = [c["id"] for c in business["clients"]]
    write_docs(folder / "catalog.yaml", [catalog_doc(package, "Bench Package", services)])
    docs = [client_doc(f"cp-{i:05d}", clients[i % len(clients)], package)
            + ("  repeat_purchase: true\n" if i >= len(clients) else "") for i in range(count)]
    for n in range(0, max(count, 1), per_file):
        chunk = docs[n:n + per_file]
        if chunk:
            write_docs(folder / f"clients-{n // per_file:04d}.yaml", chunk)


# --- processes and numbers ------------------------------------------------------------------------

def reconciler(args: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float = 600,
               check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the ``reconciler`` CLI in a fresh process (``python -m reconciler``)."""
    proc = subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"reconciler {' '.join(args)} -> {proc.returncode}\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-2000:]}")
    return proc


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def python_speed(repeats: int = 5) -> float:
    """Milliseconds of CPU a fixed pure-Python workload takes on this machine now (median of
    ``repeats``): the machines here differ in speed, and one machine from one minute to the next,
    so a figure bound by CPU is reported beside it (higher: a slower minute)."""
    import json as _json

    doc = {"id": "b44n4w8crdwi0a5h", "amount": "540.0", "credits": [{"total": str(i), "used": "0"} for i in range(8)]}
    samples = []
    for _ in range(repeats):
        t0 = time.process_time()
        for i in range(2000):
            text = _json.dumps({**doc, "n": i})
            back = _json.loads(text)
            sorted(back.items(), key=lambda kv: kv[0])
            "".join(f"{k}={v}" for k, v in back.items())
        samples.append((time.process_time() - t0) * 1000)
    return median(samples)
