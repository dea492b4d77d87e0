"""Fault soak and crash test: apply under random faults and SIGKILLs, round after round.

    python bench/soak.py --rounds 200            # faults on every route + random kills
    python bench/soak.py --kill-only --rounds 50  # issue 6's crash test: SIGKILL only
    python bench/soak.py --state-backend postgres --rounds 100   # the state in PostgreSQL
    python bench/soak.py --second-memory --rounds 100   # issue 18: no person looks in vcita
    python bench/soak.py --list-lag 3 --rounds 100   # the package list lags creation by 3 s

With ``--list-lag SECONDS`` the sandbox's package list shows a new catalog package only that long
after its creation (API-NOTES §8: vcita's lags up to 20 s; reading by id works at once), and
every command runs with that bound (``RECONCILER_LIST_LAG_SECONDS``; send window 5 s, clock skew
0.5 s): a killed apply's catalog create must be adopted after the next plan waited for the list,
never created twice (with it, a third of the fault sets also lose the answer of most catalog
creates).  Without it the list does not lag and the bound is 0 (send window 5 s).

With ``--state-backend postgres`` a throwaway PostgreSQL server is started for the soak
(``tests/support/pg_cluster.py``) and every command keeps the state there (``state =
"postgres"`` in the soak's ``reconciler.toml``): a killed apply's pending creates must be in the
database, and its lock must end with its session (``stale locks broken`` must stay 0).

The sandbox runs in its own process (``python -m reconciler.sandbox serve``) with a business made
for the soak.  Each round changes the manifests (new client packages, sometimes a new catalog
package with client packages of it, edits of validity, booking credits, prices and
descriptions; in some rounds a new price for a client package or two, never one it had before:
a replacement, applied with ``--allow-replace``), then runs ``reconciler apply --auto-approve``
in a fresh process until it succeeds:

* **faults** (not with ``--kill-only``): before each of a round's first attempts, a random set
  of faults on every route through ``/_sandbox/faults``: 5xx answers, 429 with ``Retry-After``,
  latency spikes, and answers lost after the request was committed (``drop_after_commit``);
* **kills**: the apply process is killed with SIGKILL at a random point of its run: a random
  moment, or a random delay after it showed the plan, or after one of its operations ended
  (with ``--kill-only``, every round's first apply, and 5-40 ms of latency on every request so
  that kills land inside requests too);
* **the person**: what a user does with what apply says.  A run refused because the state is
  locked is answered with ``reconciler state unlock ID`` (and counted: the lock is a flock that
  ends with its process, so a killed run never leaves one, and both counts must stay 0).  A
  client package whose create has an unknown
  outcome is looked up in the sandbox (the operator's listing of client packages: a client
  package of that client and that catalog package that state does not track); if it exists,
  ``reconciler import ADDRESS UID``, else ``reconciler state forget-intent ADDRESS``;
* **a second runner** (not with ``--kill-only``, local state; in some rounds): before the round's
  applies, another runner copies the folder with its state and saves a plan for review; once the
  round converged it applies that plan (``second_runners``), which must be refused where vcita got
  what it would create (``second_runner_refused``); any sale it made twice shows as a duplicate.

With ``--second-memory`` (issue 18) the person never looks in vcita: a create of unknown outcome is
left to the next plan, which finds it through vcita's payment requests and adopts it (counted as
``resolved_by_discovery``: pending creates closed by an apply without anyone's command); only when
a plan says it searched and did not find it does the person run ``state forget-intent`` (counted as
``forgotten``).  And every ``--rebuild-every`` rounds (default 4) the state is deleted before the
round's applies and rebuilt with ``reconciler import --discover`` (counted as ``rebuilds``, with the
client packages adopted so, ``rebuilt_adopted``).  The local state backend only.

At the end, with the faults cleared, it counts and prints one line::

    rounds=N duplicates=D lost=L final_changes=C stale_locks=S

* duplicates: remote objects beyond those the manifests declare (client packages counted per
  client + catalog package pairing, plus one per replacement asked for; catalog packages per name);
* lost: remote objects that match a declaration but that state does not track (and, failing the
  soak too, ``forgotten_replaced``: client packages a replacement left in vcita that the state
  neither tracks nor archived; a state rebuilt by ``--second-memory`` cannot know them);
* final_changes: the changes a final ``reconciler plan`` shows;
* stale_locks: locks ``state unlock`` had to break (runs refused by a lock are counted too, as
  ``locked_refusals``).

All four must be 0, and no run refused by a lock (exit status 0; 1 otherwise).  ``--json`` adds a JSON line of every count.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ServedSandbox, catalog_doc, client_doc, write_docs

LOCK_ID = re.compile(r"\(lock id ([\w-]+)\)")
UNKNOWN = re.compile(r"^(client_package\.[a-z0-9-]+):.*unknown outcome", re.M)
OP_LINE = re.compile(r"^(catalog|client)_package\.[a-z0-9-]+: ")
API_FLAGS = ["--concurrency", "8", "--rate", "1000"]


# --- the desired state ------------------------------------------------------------------------


@dataclass
class Catalog:
    name: str
    title: str
    services: list[str]
    price: int
    description: str


@dataclass
class ClientPkg:
    name: str
    client: str
    package: str  # a Catalog name
    valid_until: str | None = None
    credits: int | None = None
    price: int | None = None  # declared once repriced (a replacement)
    prices: set[int] = field(default_factory=set)  # every price it was declared at (never one again)


@dataclass
class Desired:
    """The manifests of the soak, rewritten as a whole each round."""

    services: list[str]
    clients: list[str]
    catalog: dict[str, Catalog] = field(default_factory=dict)
    cps: dict[str, ClientPkg] = field(default_factory=dict)
    used: set[tuple[str, str]] = field(default_factory=set)  # (client id, catalog name) pairings
    #: replacements asked for per (client id, catalog name): each leaves one more package in vcita
    replaced: Counter[tuple[str, str]] = field(default_factory=Counter)

    def write(self, folder: Path) -> None:
        for f in folder.glob("*.yaml"):
            f.unlink()
        write_docs(folder / "catalog.yaml", [
            catalog_doc(c.name, c.title, c.services, price=c.price, description=c.description)
            for c in self.catalog.values()])
        docs = []
        for cp in self.cps.values():
            credits = (self.catalog[cp.package].services, cp.credits) if cp.credits is not None else None
            docs.append(client_doc(cp.name, cp.client, cp.package, valid_until=cp.valid_until, credits=credits,
                                   price=cp.price))
        for n in range(0, len(docs), 50):
            write_docs(folder / f"clients-{n // 50:03d}.yaml", docs[n:n + 50])

    def new_catalog(self, rng: random.Random) -> Catalog:
        n = len(self.catalog) + 1
        services = sorted(rng.sample(self.services, rng.choice([1, 1, 2])))
        c = Catalog(name=f"pkg-{n}", title=f"Soak Package {n}", services=services, price=rng.randint(50, 500),
                    description=f"soak package {n}")
        self.catalog[c.name] = c
        return c

    def new_client_package(self, rng: random.Random, package: str | None = None) -> ClientPkg | None:
        for _ in range(50):
            pkg = package or rng.choice(list(self.catalog))
            client = rng.choice(self.clients)
            if (client, pkg) in self.used:
                continue
            self.used.add((client, pkg))
            cp = ClientPkg(name=f"cp-{len(self.cps) + 1}", client=client, package=pkg)
            if rng.random() < 0.3:
                cp.valid_until = _day(rng)
            if rng.random() < 0.3:
                cp.credits = rng.randint(1, 30)
            self.cps[cp.name] = cp
            return cp
        return None

    def mutate(self, rng: random.Random, *, grow: tuple[int, int], new_catalog: float = 0.15) -> list[str]:
        """One round's edits (a new catalog package with probability ``new_catalog``); returns what
        was done, for the log."""
        done = []
        if not self.catalog or rng.random() < new_catalog:
            c = self.new_catalog(rng)
            done.append(f"+{c.name}")
            for _ in range(rng.randint(1, 3)):
                cp = self.new_client_package(rng, package=c.name)
                if cp:
                    done.append(f"+{cp.name}")
        for _ in range(rng.randint(*grow)):
            cp = self.new_client_package(rng)
            if cp:
                done.append(f"+{cp.name}")
        for cp in rng.sample(list(self.cps.values()), min(len(self.cps), rng.randint(0, 3))):
            if rng.random() < 0.5:
                cp.valid_until = _day(rng)
                done.append(f"~{cp.name}.valid_until")
            else:
                cp.credits = rng.randint(1, 30)
                done.append(f"~{cp.name}.credits")
        if self.catalog and rng.random() < 0.3:
            c = rng.choice(list(self.catalog.values()))
            if rng.random() < 0.5:
                c.price = rng.randint(50, 500)
                done.append(f"~{c.name}.price")
            else:
                c.description = f"soak package, edited {rng.randint(1, 10**6)}"
                done.append(f"~{c.name}.description")
        return done


    def reprice(self, rng: random.Random) -> list[str]:
        """Give one or two client packages a price they never had (a replacement: a new client
        package and payment request, the old one archived); never back to an earlier price, which
        plan refuses (the old package exists)."""
        done = []
        for cp in rng.sample(list(self.cps.values()), min(len(self.cps), rng.randint(1, 2))):
            price = rng.choice([p for p in range(10, 1000, 7) if p not in cp.prices])
            cp.price = price
            cp.prices.add(price)
            self.replaced[(cp.client, cp.package)] += 1
            done.append(f"~{cp.name}.price={price}")
        return done

    def rename(self, rng: random.Random) -> list[str]:
        """Rename a few client packages (metadata.name only: the same client and catalog package),
        and now and then a catalog package (its client packages follow the new name)."""
        done = []
        for cp in rng.sample(list(self.cps.values()), min(len(self.cps), rng.randint(1, 6))):
            old = cp.name
            cp.name = f"{old.split('-r')[0]}-r{rng.randint(1, 10**6)}"
            self.cps = {(cp.name if k == old else k): v for k, v in self.cps.items()}
            done.append(f"{old}->{cp.name}")
        if self.catalog and rng.random() < 0.25:
            c = rng.choice(list(self.catalog.values()))
            old = c.name
            c.name = f"{old.split('-r')[0]}-r{rng.randint(1, 10**6)}"
            self.catalog = {(c.name if k == old else k): v for k, v in self.catalog.items()}
            for cp in self.cps.values():
                if cp.package == old:
                    cp.package = c.name
            self.used = {(cl, c.name if p == old else p) for cl, p in self.used}
            self.replaced = Counter({(cl, c.name if p == old else p): n for (cl, p), n in self.replaced.items()})
            done.append(f"{old}->{c.name}")
        return done


def _day(rng: random.Random) -> str:
    return f"{rng.randint(2028, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


# --- faults -----------------------------------------------------------------------------------


def random_faults(rng: random.Random) -> list[dict[str, Any]]:
    """A few faults on every route (both doors): some of 5xx, 429, latency, lost answers."""
    faults: list[dict[str, Any]] = []
    if rng.random() < 0.6:
        faults.append({"path": "*", "status": rng.choice([500, 502, 503, 504]), "rate": rng.uniform(0.02, 0.12)})
    if rng.random() < 0.4:
        faults.append({"path": "*", "status": 429, "retry_after": rng.choice([0, 0.1, 0.3, 1]),
                       "rate": rng.uniform(0.02, 0.08)})
    if rng.random() < 0.5:
        faults.append({"path": "*", "latency_ms": rng.choice([150, 400, 1200]), "rate": rng.uniform(0.02, 0.08)})
    if rng.random() < 0.6:
        faults.append({"path": "*", "drop_after_commit": True, "rate": rng.uniform(0.03, 0.15)})
    if rng.random() < 0.3:  # the fault that matters most, aimed
        faults.append({"method": "POST", "path": "/platform/v1/payment/client_packages", "drop_after_commit": True,
                       "rate": rng.uniform(0.1, 0.4)})
    if rng.random() < 0.2:  # a create executed, answered 2xx with a body of unexpected shape
        faults.append({"method": "POST", "path": "/platform/v1/payment/client_packages",
                       "strip_fields": [rng.choice(["client_id", "package_id", "amount"])],
                       "rate": rng.uniform(0.1, 0.4)})
    for f in faults:
        f.setdefault("door", "*")
        f.setdefault("method", "*")
    return faults


# --- the soak ---------------------------------------------------------------------------------


@dataclass
class Tally:
    rounds: int = 0
    applies: int = 0
    kills: int = 0
    kills_with_open_intents: int = 0
    unlocks: int = 0  # locks `state unlock` broke
    locked: int = 0  # applies refused because the state was locked
    imported: int = 0
    forgotten: int = 0
    fault_sets: int = 0
    interrupts: int = 0  # applies stopped by SIGINT/SIGTERM (exit 130/143)
    renames: int = 0
    replacements: int = 0  # client packages repriced (each a replacement: a new package, the old archived)
    partial_applies: int = 0
    fresh_runners: int = 0
    second_runners: int = 0  # saved plans another runner applied after a round's applies
    second_runner_refused: int = 0  # ... refused, vcita having got what they would create
    rebuilds: int = 0  # states deleted and rebuilt with import --discover (--second-memory)
    rebuilt_adopted: int = 0  # client packages those rebuilds adopted
    resolved_by_discovery: int = 0  # pending client-package creates an apply closed without a person
    list_waits: int = 0  # commands that waited for the lagging list (an interrupted catalog create)
    not_converged: list[int] = field(default_factory=list)
    exit_codes: Counter[int] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)


def _sigkill(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


class Soak:
    def __init__(self, root: Path, sandbox: ServedSandbox, rng: random.Random, *, kill_only: bool,
                 kills: bool, faults: bool, grow: tuple[int, int], verbose: bool, state_dsn: str | None = None,
                 second_memory: bool = False, rebuild_every: int = 4, list_lag: float = 0.0) -> None:
        self.second_memory = second_memory
        self.rebuild_every = rebuild_every
        self.root = root
        self.sandbox = sandbox
        self.rng = rng
        self.kill_only = kill_only
        self.kills = kills
        self.faults = faults
        self.grow = grow
        self.verbose = verbose
        self.signals = not kill_only  # the crash test stays SIGKILL only
        self.allow_replace = False  # this round reprices client packages: its applies may replace
        self.flows = not kill_only  # renames, partial applies, fresh runners
        self.tally = Tally()
        self.business = sandbox.new_business("soak", clients=80, services=4, products=2)
        self.env = sandbox.env(self.business)
        self.list_lag = list_lag
        sandbox.op("PUT", "/settings", {"list_lag_seconds": list_lag})
        self.env.update(RECONCILER_LIST_LAG_SECONDS=str(list_lag), RECONCILER_CREATE_SEND_WINDOW_SECONDS="5",
                        RECONCILER_CLOCK_SKEW_SECONDS="0.5" if list_lag else "0")
        self.folder = root / "manifests"
        self.folder.mkdir(parents=True)
        self.state_path = self.folder / ".reconciler" / "state.json"
        self.state_dsn = state_dsn
        if state_dsn is not None:  # every command (apply, import, forget-intent, plan) uses the database
            self.env["RECONCILER_STATE_DSN"] = state_dsn
            (self.root / "reconciler.toml").write_text('state = "postgres"\n')
        self.desired = Desired(services=[s["id"] for s in self.business["services"]],
                               clients=[c["id"] for c in self.business["clients"]])

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=sys.stderr, flush=True)

    # --- running the CLI --------------------------------------------------------------------

    def cli(self, *args: str) -> tuple[int, str]:
        """A person's command, run in this process (the error boundary ``reconciler.cli.run``)."""
        from reconciler.cli import run

        out, err = io.StringIO(), io.StringIO()
        old_env = dict(os.environ)
        old_cwd = Path.cwd()
        os.environ.clear()
        os.environ.update(self.env)
        os.chdir(self.root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run(list(args))
        finally:
            os.chdir(old_cwd)
            os.environ.clear()
            os.environ.update(old_env)
        self.tally.list_waits += "for vcita's package list" in err.getvalue()
        return code, out.getvalue() + err.getvalue()

    def apply(self, kill: tuple[str, float, int] | None) -> tuple[int | None, str, float]:
        """``reconciler apply --auto-approve`` in a fresh process, maybe SIGKILLed.

        ``kill`` is ``("time", seconds, 0)``: at a moment of the run; ``("plan", delay, 0)``: that
        long after the plan's summary line (the changes are about to start); ``("op", delay, n)``:
        that long after the n-th operation's line.  Returns (exit code, or None when killed;
        output; seconds)."""
        cmd = [sys.executable, "-m", "reconciler", "apply", "--auto-approve", *API_FLAGS,
               *(["--allow-replace"] if self.allow_replace else [])]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        timers: list[threading.Timer] = []

        # Most kills are SIGKILL; some are the polite signals a person (Ctrl-C) or a scheduler sends.
        sig = self.rng.choices([signal.SIGKILL, signal.SIGINT, signal.SIGTERM], weights=[6, 2, 2])[0] \
            if self.signals else signal.SIGKILL

        def arm(delay: float) -> None:
            if not timers:
                timers.append(threading.Timer(delay, _sigkill, (proc, sig)))
                timers[0].start()

        if kill is not None and kill[0] == "time":
            arm(kill[1])
        lines, ops = [], 0
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if kill is None:
                continue
            if kill[0] == "plan" and (line.startswith(("Plan:", "No changes"))):
                arm(kill[1])
            elif kill[0] == "op" and OP_LINE.match(line):
                ops += 1
                if ops >= kill[2]:
                    arm(kill[1])
        proc.wait(timeout=600)
        for t in timers:
            t.cancel()
        took = time.perf_counter() - t0
        self.tally.applies += 1
        out = "".join(lines)
        self.tally.list_waits += "for vcita's package list" in out
        if proc.returncode == -signal.SIGKILL:
            self.tally.kills += 1
            return None, out, took
        if proc.returncode in (130, 143):  # stopped politely: nothing more sent, in-flight recorded
            self.tally.interrupts += 1
            return None, out, took
        self.tally.exit_codes[proc.returncode] += 1
        return proc.returncode, out, took

    # --- the person ---------------------------------------------------------------------------

    def load_state(self) -> Any:
        """The state as the soak's commands keep it (the file, or the database's row)."""
        from reconciler.state.store import StateStore

        if self.state_dsn is None:
            return StateStore(self.state_path).load()
        from reconciler.remote.target import Secret
        from reconciler.state.backends.postgres import PostgresStateStore
        from reconciler.state.store import TargetRef

        key = TargetRef(gateway_url=self.env["VCITA_GATEWAY_URL"], business_id=self.env["VCITA_BUSINESS_ID"])
        return PostgresStateStore(Secret(self.state_dsn), key).load()

    def tracked_ids(self) -> set[str]:
        return {r.id for r in self.load_state().resources.values()}

    def open_intents(self) -> list[Any]:
        return list(self.load_state().pending.values())

    def resolve(self, output: str) -> None:
        """React to what apply said, as a person would."""
        m = LOCK_ID.search(output)
        if m and "locked" in output:
            self.tally.locked += 1
            code, out = self.cli("state", "unlock", m.group(1))
            if code == 0 and "Broke lock" in out:
                self.tally.unlocks += 1
            self.log(f"    unlock {m.group(1)} -> {code}: {out.strip()[:200]}")
        unknown = set(UNKNOWN.findall(output))
        if not unknown:
            return
        intents = {it.address: it for it in self.open_intents() if it.kind == "ClientPackage"}
        if self.second_memory:
            # Only what reconciler says: "searched and not found" -> forget the intent (the create
            # was never executed); anything else is left to the next plan's discovery.
            for address in sorted(unknown):
                said = [line for line in output.splitlines() if address in line
                        and "not found in vcita's payment requests" in line]
                if address in intents and said:
                    # refused while the list may still be hiding the package (the record is too
                    # recent): left for a later round, whose plan looks again
                    code, out = self.cli("state", "forget-intent", address)
                    self.tally.forgotten += code == 0
                    self.log(f"    forget-intent {address} (not found by discovery) -> {code}")
            return
        remote = self.sandbox.client_packages(self.business["business_id"])
        state = self.load_state()
        known = {r.id for r in state.resources.values()} | set(state.archived)  # archived: replaced earlier
        for address in sorted(unknown):
            it = intents.get(address)
            if it is None:
                continue  # already resolved (the output repeats it)
            client, package = it.details.get("client_id"), it.details.get("package_id")
            price = it.details.get("price")  # declared: a repriced package (a replacement)
            found = [cp for cp in remote if cp["client_id"] == client and cp["package_id"] == package
                     and cp["id"] not in known
                     and (price is None or float(cp.get("amount", cp.get("price")) or 0) == float(price))]
            if found:
                code, out = self.cli("import", address, found[0]["id"])
                self.tally.imported += 1
                known.add(found[0]["id"])
                self.log(f"    import {address} {found[0]['id']} -> {code}")
            else:  # the sandbox's own list, as a person checking vcita sees it: --force
                code, out = self.cli("state", "forget-intent", "--force", address)
                self.tally.forgotten += 1
                self.log(f"    forget-intent {address} -> {code}")
            if code != 0:
                self.log(f"      {out.strip()}")

    # --- rounds -------------------------------------------------------------------------------

    def kill_point(self) -> tuple[str, float, int]:
        """A random point to kill an apply at: anywhere in a typical run, or just after the plan
        was shown (creates about to be sent), or just after one of the operations finished."""
        typical = statistics.median(self.tally.durations[-20:]) if self.tally.durations else 1.5
        how = self.rng.choices(["time", "plan", "op"], weights=[3, 4, 3])[0]
        if how == "time":
            return ("time", self.rng.uniform(0.3, 0.95 if self.kill_only else 1.1) * typical, 0)
        return (how, self.rng.uniform(0.0, 0.08), self.rng.randint(1, 4))

    def round(self, r: int) -> None:
        grow = self.grow
        # replacements first, of client packages applied in earlier rounds (not those of this one)
        # (not in a round whose state is deleted and rebuilt: discovery matches the declared price, so a
        # package repriced meanwhile is found by no one but a person, 'reconciler import ADDRESS ID')
        rebuild = self.second_memory and r % self.rebuild_every == 0
        done = self.desired.reprice(self.rng) if (self.flows and self.desired.cps and not rebuild
                                                  and self.rng.random() < 0.2) else []
        self.allow_replace = bool(done)
        self.tally.replacements += len(done)
        # with a lagging list, more catalog creates (whose recovery is what the lag endangers)
        done += self.desired.mutate(self.rng, grow=grow, new_catalog=0.4 if self.list_lag else 0.15)
        if self.flows and not self.allow_replace and self.rng.random() < 0.2:  # a rename with a new price is refused
            done += self.desired.rename(self.rng)
            self.tally.renames += 1
        self.desired.write(self.folder)
        self.log(f"round {r}: {' '.join(done)}")
        if self.flows and self.rng.random() < 0.15:
            # an apply over one file: the client packages in the others must be left alone
            code, out = self.cli("apply", "--auto-approve", str(self.folder / "catalog.yaml"), *API_FLAGS)
            self.tally.partial_applies += 1
            self.log(f"  partial apply (catalog.yaml) -> {code}")
            self.resolve(out)
        if self.flows and self.rng.random() < 0.15 and self.state_path.exists():
            # a fresh CI runner: the repository's state.json and nothing else of .reconciler/
            for p in self.state_path.parent.iterdir():
                if p.name != self.state_path.name and p.is_file():
                    p.unlink()
            self.tally.fresh_runners += 1
            self.log("  fresh runner: only state.json kept")
        second = None
        if self.flows and self.state_dsn is None and self.rng.random() < 0.15 and self.state_path.exists():
            # another runner with its own checkout of the folder and its state saves a plan for
            # review now; it applies that plan once this round converged (see _second_runner)
            second = self.root / f"runner-b-{r}"
            shutil.copytree(self.folder, second / "manifests")
            code, out = self.cli("plan", "--out", str(second / "plan.json"), str(second / "manifests"), *API_FLAGS[:2],
                                 *(["--allow-replace"] if self.allow_replace else []))
            self.log(f"  second runner: plan saved -> {code}")
            if code != 0:
                shutil.rmtree(second)
                second = None
        if self.second_memory and r % self.rebuild_every == 0 and self.state_path.exists():
            # the state is lost altogether; vcita's payment requests rebuild it
            for p in self.state_path.parent.iterdir():
                if p.is_file():
                    p.unlink()
            code, out = self.cli("import", "--discover", *API_FLAGS)
            self.tally.rebuilds += 1
            m = re.search(r"^(\d+) client package\(s\) adopted", out, re.M)
            self.tally.rebuilt_adopted += int(m.group(1)) if m else 0
            self.log(f"  state deleted; import --discover -> {code}: {out.strip().splitlines()[-1] if out.strip() else ''}")
        for attempt in range(1, 13):
            faulty = self.faults and attempt <= 3 and self.rng.random() < 0.8
            if faulty:
                faults = random_faults(self.rng)
                if self.list_lag and self.rng.random() < 0.35:
                    # a catalog create executed whose answer is lost: recovered under the list's lag
                    faults.append({"method": "POST", "path": "/platform/v1/payment/packages", "door": "*",
                                   "drop_after_commit": True, "rate": 0.6})
                self.sandbox.clear_faults()
                for f in faults:
                    self.sandbox.add_fault(**f)
                self.tally.fault_sets += 1
            else:
                self.sandbox.clear_faults()
            if self.kill_only:  # a realistic network delay, so that kills land inside requests too
                self.sandbox.add_fault(method="*", path="*", door="*", latency_ms=self.rng.choice([5, 20, 40]))
                kill = attempt == 1
            else:
                kill = self.kills and attempt <= 3 and self.rng.random() < 0.35
            point = self.kill_point() if kill else None
            before = {it.id for it in self.open_intents() if it.kind == "ClientPackage"} \
                if self.second_memory and self.state_path.exists() else set()
            code, out, took = self.apply(point)
            if before and self.state_path.exists():
                self.tally.resolved_by_discovery += len(before - {it.id for it in self.open_intents()})
            if code is None:
                pending = [it.address for it in self.open_intents()]
                if pending:
                    self.tally.kills_with_open_intents += 1
                self.log(f"  attempt {attempt}: killed after {took:.2f} s at {point} ({len(pending)} creates pending)")
            else:
                self.log(f"  attempt {attempt}: exit {code} in {took:.2f} s" + (" (faults)" if faulty else ""))
                if code == 0:
                    self.tally.durations.append(took)
            self.sandbox.clear_faults()
            if code == 0:  # apply says complete, and its verification plan showed no changes
                if second is not None:
                    self._second_runner(second)
                return
            self.resolve(out)
            if code not in (None, 0, 1):
                self.log(out[-2000:])
            elif code == 1:  # why (with -v): its errors
                for line in [ln for ln in out.splitlines() if ln.startswith(("Error", "  ")) and "rror" in ln][:3]:
                    self.log(f"    {line[:400]}")
        self.tally.not_converged.append(r)
        self.log(f"round {r} did not converge")

    def _second_runner(self, second: Path) -> None:
        """The other runner applies the plan it saved before this round's applies: whatever they
        created since must be refused (the final counts show any client billed twice)."""
        code, out = self.cli("apply", str(second / "plan.json"), str(second / "manifests"), *API_FLAGS)
        self.tally.second_runners += 1
        self.tally.second_runner_refused += code == 1 and "since this plan was made, vcita got" in out
        self.log(f"  second runner: its saved plan -> {code}")
        shutil.rmtree(second)

    # --- the counts ---------------------------------------------------------------------------

    def final_counts(self) -> dict[str, Any]:
        self.sandbox.clear_faults()
        code, out = self.cli("plan", "--format", "json", "--detailed-exitcode", *API_FLAGS)
        try:
            plan = json.loads(out[out.index("{"):out.rindex("}") + 1])
            errors = [p for p in plan.get("problems", []) if p.get("severity") == "error"]
            final_changes = len(plan["operations"]) + len(errors)
        except (ValueError, KeyError):
            final_changes = -1  # the plan itself failed: not a count, but never 0
            print(f"final plan failed (exit {code}): {out[-1500:]}", file=sys.stderr)
        state = self.load_state()
        resources = {a: {"id": r.id} for a, r in state.resources.items()}
        tracked_ids = {r["id"] for r in resources.values()}
        catalog_ids = {a.split(".", 1)[1]: r["id"] for a, r in resources.items() if a.startswith("catalog_package.")}

        # client packages, per (client, catalog package id) pairing
        remote = self.sandbox.client_packages(self.business["business_id"])
        remote_by: Counter[tuple[str, str]] = Counter((cp["client_id"], cp["package_id"]) for cp in remote)
        remote_ids = {cp["id"] for cp in remote}
        declared: Counter[tuple[str, str]] = Counter()
        replaced: Counter[tuple[str, str]] = Counter()  # a replacement leaves the old package in vcita
        for (client, name), n in self.desired.replaced.items():
            if name in catalog_ids:
                replaced[(client, catalog_ids[name])] += n
        tracked_by: Counter[tuple[str, str]] = Counter()
        unresolved = 0
        for cp in self.desired.cps.values():
            pkg_id = catalog_ids.get(cp.package)
            if pkg_id is None:
                unresolved += 1
                continue
            pair = (cp.client, pkg_id)
            declared[pair] += 1
            rs = resources.get(f"client_package.{cp.name}")
            if rs is not None and rs["id"] in remote_ids:
                tracked_by[pair] += 1
        duplicates = sum(max(0, n - declared[p] - replaced[p]) for p, n in remote_by.items())
        lost = sum(max(0, min(remote_by[p], d) - tracked_by[p]) for p, d in declared.items())
        untracked_remote = sum(1 for cp in remote if cp["id"] not in tracked_ids)
        # replaced packages the state no longer remembers (archived); a rebuilt state (--second-memory) cannot
        forgotten_replaced = sum(1 for cp in remote if cp["id"] not in tracked_ids and cp["id"] not in state.archived)

        # catalog packages, per name
        self.sandbox.op("PUT", "/settings", {"list_lag_seconds": 0})  # every package listed, however new
        names = self._remote_catalog_names()
        for c in self.desired.catalog.values():
            n = names.get(c.title, 0)
            duplicates += max(0, n - 1)
            if n and c.name not in catalog_ids:
                lost += 1
        return {"rounds": self.tally.rounds, "duplicates": duplicates, "lost": lost, "final_changes": final_changes,
                "client_packages": len(self.desired.cps), "catalog_packages": len(self.desired.catalog),
                "remote_client_packages": len(remote), "untracked_remote": untracked_remote,
                "forgotten_replaced": forgotten_replaced,
                "unresolved_catalog": unresolved}

    def _remote_catalog_names(self) -> Counter[str]:
        import asyncio

        from reconciler.remote import VcitaClient
        from reconciler.remote.target import resolve_target

        target = resolve_target(flags={}, env=self.env, cwd=self.root)

        async def names() -> Counter[str]:
            async with VcitaClient(target) as api:
                return Counter(p.name for p in await api.list_catalog_packages())

        return asyncio.run(names())


def soak(rounds: int, *, seed: int | None = None, kill_only: bool = False, kills: bool = True, faults: bool = True,
         grow: tuple[int, int] = (1, 4), verbose: bool = False, workdir: Path | None = None,
         state_backend: str = "local", second_memory: bool = False, rebuild_every: int = 4,
         list_lag: float = 0.0) -> dict[str, Any]:
    """Run the soak; returns the counts (see the module's docstring)."""
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=workdir, prefix="soak-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        dsn = None
        if state_backend == "postgres":
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
            from pg_cluster import PgCluster

            dsn = stack.enter_context(PgCluster(fsync=True)).new_database("soak")
        with ServedSandbox(root / "sandbox" / "sandbox.db") as sandbox:
            s = Soak(root / "work", sandbox, rng, kill_only=kill_only, kills=kills or kill_only,
                     faults=faults and not kill_only, grow=grow, verbose=verbose, state_dsn=dsn,
                     second_memory=second_memory, rebuild_every=rebuild_every, list_lag=list_lag)
            for r in range(1, rounds + 1):
                s.round(r)
                s.tally.rounds = r
                if not verbose and r % 10 == 0:
                    print(f"  ... {r} rounds, {s.tally.applies} applies, {s.tally.kills} kills, "
                          f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            counts = s.final_counts()
    t = s.tally
    counts.update(seed=seed, applies=t.applies, kills=t.kills, kills_with_open_intents=t.kills_with_open_intents,
                  unlocks=t.unlocks, locked_refusals=t.locked, state_backend=state_backend, imported=t.imported, forgotten=t.forgotten,
                  fault_sets=t.fault_sets, interrupts=t.interrupts, renames=t.renames, replacements=t.replacements,
                  partial_applies=t.partial_applies, fresh_runners=t.fresh_runners,
                  second_runners=t.second_runners, second_runner_refused=t.second_runner_refused,
                  list_lag=list_lag, list_waits=t.list_waits,
                  not_converged=t.not_converged, exit_codes=dict(t.exit_codes), rebuilds=t.rebuilds,
                  rebuilt_adopted=t.rebuilt_adopted, resolved_by_discovery=t.resolved_by_discovery,
                  second_memory=second_memory,
                  elapsed_s=round(time.perf_counter() - started, 1), mode="kill-only" if kill_only else "faults+kills")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--kill-only", action="store_true", help="the crash test: SIGKILL at random points, no faults")
    parser.add_argument("--no-kill", action="store_true", help="faults only")
    parser.add_argument("--grow", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="new client packages per round (default 1 4; 4 12 with --kill-only)")
    parser.add_argument("--state-backend", choices=["local", "postgres"], default="local",
                        help="where the state is kept (postgres: a throwaway server started for the soak)")
    parser.add_argument("--second-memory", action="store_true",
                        help="no person looks in vcita: lost answers are resolved by discovery, and the state is "
                             "deleted and rebuilt with 'import --discover' every --rebuild-every rounds")
    parser.add_argument("--rebuild-every", type=int, default=4, metavar="N")
    parser.add_argument("--list-lag", type=float, default=0.0, metavar="SECONDS",
                        help="the sandbox's package list lags creation by SECONDS (and the commands' bound is that)")
    parser.add_argument("--json", action="store_true", help="also print every count as one JSON line")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.second_memory and args.state_backend != "local":
        parser.error("--second-memory deletes the state file: it needs --state-backend local")
    grow = tuple(args.grow) if args.grow else ((4, 12) if args.kill_only else (1, 4))
    c = soak(args.rounds, seed=args.seed, kill_only=args.kill_only, kills=not args.no_kill, grow=grow,  # type: ignore[arg-type]
             verbose=args.verbose, state_backend=args.state_backend, second_memory=args.second_memory,
             rebuild_every=args.rebuild_every, list_lag=args.list_lag)
    print(f"rounds={c['rounds']} duplicates={c['duplicates']} lost={c['lost']} final_changes={c['final_changes']} "
          f"stale_locks={c['unlocks']}" + (
              f" rebuilds={c['rebuilds']} rebuilt_adopted={c['rebuilt_adopted']} "
              f"resolved_by_discovery={c['resolved_by_discovery']} forgotten={c['forgotten']} "
              f"imported={c['imported']}" if args.second_memory else ""))
    print(f"  ({c['mode']}, seed {c['seed']}: {c['applies']} applies, {c['kills']} killed "
          f"({c['kills_with_open_intents']} leaving creates pending), {c['fault_sets']} fault sets, "
          f"{c['interrupts']} stopped by SIGINT/SIGTERM, {c['renames']} rounds with renames, "
          f"{c['replacements']} client packages repriced ({c['forgotten_replaced']} untracked and not archived "
          f"at the end), "
          f"{c['partial_applies']} partial applies, {c['fresh_runners']} fresh runners, "
          f"{c['second_runners']} saved plans of a second runner applied after a round "
          f"({c['second_runner_refused']} refused as vcita got their creates), "
          f"list lag {c['list_lag']:g} s ({c['list_waits']} commands waited for the list), "
          f"state backend {c['state_backend']}, {c['unlocks']} stale locks broken, {c['locked_refusals']} runs refused by a lock, "
          f"unknown outcomes resolved: {c['imported']} imported, "
          f"{c['forgotten']} forgotten; {c['client_packages']} client packages and {c['catalog_packages']} "
          f"catalog packages declared, {c['remote_client_packages']} client packages in the sandbox; "
          f"{c['elapsed_s']} s)", file=sys.stderr)
    if c["not_converged"]:
        print(f"  rounds that did not converge: {c['not_converged']}", file=sys.stderr)
    if args.json:
        print(json.dumps(c))
    ok = (c["duplicates"] == 0 and c["lost"] == 0 and c["final_changes"] == 0 and not c["not_converged"]
          and (c["second_memory"] or c["forgotten_replaced"] == 0)
          and c["unlocks"] == 0 and c["locked_refusals"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
