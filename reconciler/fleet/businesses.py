"""Many businesses: one folder of manifests per business, each with its own state and target.

Layout (``ROOT`` is ``manifests`` by default)::

    ROOT/<business>/*.yaml                      the business's manifests (any depth)
    ROOT/<business>/.reconciler/state.json      its state (as for a single business)
    ROOT/<business>/target.toml                 its target, unless reconciler.toml names it

A folder's target is ``[targets.<folder>]`` of the project's ``reconciler.toml`` when there is
one, else the folder's own ``target.toml`` with the same keys at top level (``gateway_url``,
``fallback_url``, ``business_id``, and the token by reference: ``token_env`` / ``token_file``,
``directory_token_env`` / ``directory_token_file``; a literal token is refused; a ``[routes]``
table of route pins as in ``reconciler.toml``).  The global
``VCITA_*`` variables are ignored in this mode: one business id or token cannot fit every folder.

``--shard I/N`` keeps the folders whose stable hash (SHA-256 of the folder name) is I modulo N,
so N machines (a Kubernetes indexed Job, a CI matrix) split any number of businesses without
coordination, and a business always lands on the same shard.  Businesses are worked on
concurrently (``jobs`` at a time), each with its own client and limits; a failure in one is
reported in its row and never stops the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.core.errors import ConfigError, ReconcilerError
from reconciler.core.progress import ProgressSink, Tally
from reconciler.remote.target import (
    ROUTES_KEY,
    Secret,
    Target,
    load_project_targets,
    parse_route_pins,
    read_token_file,
    resolve_target,
)

if TYPE_CHECKING:
    from reconciler.business.open import OpenBusiness
    from reconciler.remote.client import EmbeddedTransport

TARGET_FILE = "target.toml"
TARGET_KEYS = frozenset({"gateway_url", "fallback_url", "business_id", "token_env", "token_file",
                         "directory_token_env", "directory_token_file", "state", "state_dsn_env"})
GLOBAL_VARS = ("VCITA_GATEWAY_URL", "VCITA_FALLBACK_URL", "VCITA_BUSINESS_ID", "VCITA_STAFF_TOKEN",
               "VCITA_DIRECTORY_TOKEN")


@dataclass(frozen=True)
class Business:
    """One business folder."""

    name: str
    path: Path


@dataclass
class Outcome:
    """How one business went: its status, counts for the summary table, and its report.

    ``status`` is one of: drift: "in sync", "drift", "pending"; plan: "no changes", "changes",
    "errors"; either: "error" (the business could not be worked on; ``error`` says why)."""

    business: str
    path: str
    status: str
    business_id: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    report: Any = None  # DriftReport | Plan


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N; ConfigError otherwise."""
    head, sep, tail = text.partition("/")
    try:
        i, n = int(head), int(tail)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text!r} is not I/N with 0 <= I < N (e.g. 0/4 ... 3/4)")
    return i, n


def shard_of(name: str, n: int) -> int:
    """The shard (0..n-1) of a business folder name: stable across runs, machines and Pythons."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") % n


def discover(root: Path) -> list[Business]:
    """The business folders under ``root``: non-hidden subfolders with manifests or a target.toml."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder of business folders",
                          hint="With --all, PATH holds one folder per business, e.g. manifests/acme/.")
    found = []
    for sub in sorted(root.iterdir()):
        if not sub.is_dir() or sub.name.startswith("."):
            continue
        if (sub / TARGET_FILE).is_file() or any(_manifests(sub)):
            found.append(Business(sub.name, sub))
    if not found:
        raise ConfigError(f"no business folders under {root} (folders holding *.yaml manifests or a {TARGET_FILE})")
    return found


def _manifests(folder: Path) -> Any:
    for pattern in ("*.yaml", "*.yml"):
        for p in folder.rglob(pattern):
            if not any(part.startswith(".") for part in p.relative_to(folder).parts):
                yield p


def select(businesses: Sequence[Business], shard: tuple[int, int] | None) -> list[Business]:
    """The businesses of ``shard`` (all of them without one)."""
    if shard is None:
        return list(businesses)
    i, n = shard
    return [b for b in businesses if shard_of(b.name, n) == i]


def folder_target(b: Business, *, cwd: Path, env: Mapping[str, str]) -> Target:
    """The target of a business folder (see the module docstring); ConfigError when it has none."""
    clean = {k: v for k, v in env.items() if k not in GLOBAL_VARS}
    targets, _, toml_path = load_project_targets(cwd)
    if b.name in targets:
        return resolve_target(flags={}, env=clean, cwd=cwd, target_name=b.name)
    path = b.path / TARGET_FILE
    if not path.is_file():
        raise ConfigError(f"no target for business folder {b.path}",
                          hint=f"Add [targets.{b.name}] to {toml_path.name}, or write {path} "
                               "(gateway_url, fallback_url, business_id, token_env).")
    table = _read_table(path)
    if "gateway_url" not in table or "business_id" not in table:
        raise ConfigError(f"{path}: gateway_url and business_id are required")
    directory = _token(table, "directory_token", path, clean, required=False)
    return Target(
        name=b.name, gateway_url=table["gateway_url"], fallback_url=table.get("fallback_url"),
        business_id=table["business_id"].strip(),
        staff_token=_token(table, "token", path, clean, required=directory is None),
        directory_token=directory,
        route_pins=parse_route_pins(table[ROUTES_KEY], where=str(path)) if ROUTES_KEY in table else (),
    )


def _read_table(path: Path) -> dict[str, Any]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as TOML: {e}") from None
    for key, value in doc.items():
        if key == ROUTES_KEY:
            continue  # a table of route pins, checked by parse_route_pins
        if key not in TARGET_KEYS:
            if any(w in key.lower() for w in ("token", "secret", "password")):
                raise ConfigError(f"{path}: {key} looks like a literal credential; {TARGET_FILE} is committed "
                                  "and must never hold one",
                                  hint="Name a variable with token_env, or a file with token_file.")
            raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(TARGET_KEYS))})")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: {key} must be a non-empty string")
    return doc


def _token(table: Mapping[str, str], kind: str, path: Path, env: Mapping[str, str], *,
           required: bool) -> Secret | None:
    if f"{kind}_file" in table:
        return read_token_file(table[f"{kind}_file"], cwd=path.parent, what=f"{kind.replace('_', ' ')} file")
    var = table.get(f"{kind}_env")
    if var:
        value = env.get(var, "").strip()
        if not value:
            raise ConfigError(f"{path}: the environment variable {var} ({kind}_env) is not set")
        return Secret(value)
    if required:
        raise ConfigError(f"{path}: no staff token: add token_env = \"VARIABLE\" or token_file = \"FILE\"")
    return None


async def run_all(businesses: Sequence[Business], work: Callable[[Business], Awaitable[Outcome]],
                  jobs: int = 8, progress: ProgressSink | None = None, phase: str = "businesses") -> list[Outcome]:
    """``work`` for every business, ``jobs`` at a time; an error becomes that business's outcome.
    ``progress`` gets one event per business finished (``last``: its name and status)."""
    gate = asyncio.Semaphore(jobs)
    tally = Tally(progress, phase, len(businesses))
    tally.add(0)

    async def one(b: Business) -> Outcome:
        async with gate:
            t0 = time.perf_counter()
            try:
                out = await work(b)
            except ReconcilerError as e:
                out = Outcome(b.name, str(b.path), status="error", error=e.message)
            except Exception as e:  # noqa: BLE001 - one business must not stop the fleet
                out = Outcome(b.name, str(b.path), status="error",
                              error=f"internal error: {type(e).__name__}: {e}")
            out.seconds = round(time.perf_counter() - t0, 3)
            tally.step(f"{b.name}: {out.status}")
            return out

    return list(await asyncio.gather(*(one(b) for b in businesses)))


def shared_targets(businesses: Sequence[Business], *, cwd: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The folders whose target names the same business (gateway URL and business id) as another
    folder's: folder name -> why it is refused.  Two folders of one business are two states, each
    blind to what the other sold: ``apply --all`` ran them side by side and both sold every client
    package of a copied folder (a folder copied to rename it, a target.toml pasted).  Folders whose
    target cannot be read are left to report that in their own row."""
    from reconciler.state.store import TargetRef

    by_business: dict[TargetRef, list[str]] = {}
    for b in businesses:
        try:
            ref = TargetRef.of(folder_target(b, cwd=cwd, env=env))
        except ReconcilerError:
            continue
        by_business.setdefault(ref, []).append(b.name)
    refused = {}
    for ref, names in by_business.items():
        if len(names) > 1:
            for name in names:
                others = ", ".join(n for n in names if n != name)
                refused[name] = (f"folder {name} targets {ref.describe()}, as folder(s) {others} do: two states for "
                                 "one business, each blind to what the other sells (applied together, both would "
                                 "bill the same clients); nothing was done for it. Keep one folder per business: "
                                 "remove the copy, or give it its own business's target")
    return refused


def refusing(work: Callable[[Business], Awaitable[Outcome]],
             refused: Mapping[str, str]) -> Callable[[Business], Awaitable[Outcome]]:
    """``work``, except for the ``refused`` folders, whose row is an error saying why."""

    async def guarded(b: Business) -> Outcome:
        if b.name in refused:
            raise ConfigError(refused[b.name])
        return await work(b)

    return guarded


# --- the per-business work ----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkOptions:
    """What every business of a fleet run shares: where the project is, the environment, limits."""

    cwd: Path
    env: Mapping[str, str]
    concurrency: int | None = None
    rate: float | None = None
    state_backend: str | None = None  # --state-backend (else each folder's configuration)
    state_dsn_env: str | None = None  # --state-dsn-env
    #: the transport factory of embedded targets (the CLI's: reconciler.cli.embedded)
    embedded: EmbeddedTransport | None = None


async def drift_business(b: Business, opts: WorkOptions) -> Outcome:
    """Drift of one business folder (read-only)."""
    from reconciler.drift import detect

    # Reading manifests and state is CPU work: in a thread, so other businesses' requests keep flowing.
    desired, biz, state = await asyncio.to_thread(_open, b, opts)
    target = biz.target
    async with biz.client() as api:
        report, _ = await detect(api, desired, state, target=target)
    s = report.summary
    status = report.verdict.replace("_", " ")
    return Outcome(b.name, str(b.path), status, business_id=target.business_id,
                   counts={"drift": s.remote_drift, "pending": s.pending, "in_sync": s.in_sync}, report=report)


async def plan_business(b: Business, opts: WorkOptions) -> Outcome:
    """The plan of one business folder (nothing is written)."""
    from reconciler.refresh.full import make_plan

    # Reading manifests and state is CPU work: in a thread, so other businesses' requests keep flowing.
    desired, biz, state = await asyncio.to_thread(_open, b, opts)
    target = biz.target
    async with biz.client() as api:
        plan = await make_plan(api, desired, state, target=target)
    counts = {a: plan.count(a) for a in ("create", "update", "replace", "import", "archive")}
    counts["errors"] = len(plan.errors)
    status = "errors" if plan.errors else ("changes" if plan.has_changes else "no changes")
    return Outcome(b.name, str(b.path), status, business_id=target.business_id, counts=counts, report=plan)


def _open(b: Business, opts: WorkOptions) -> tuple[Any, OpenBusiness, Any]:
    from reconciler.state.store import TargetRef

    desired, biz = open_business(b, opts)
    state = biz.store.load()
    biz.store.check_target(state, TargetRef.of(biz.target))
    return desired, biz, state


def open_business(b: Business, opts: WorkOptions, *, writes: bool = False) -> tuple[Any, OpenBusiness]:
    """A business folder's manifests, and the business opened with its own target
    (:func:`folder_target`) as every command opens one (:mod:`reconciler.business.open`)."""
    from reconciler.business.open import open_business as opened
    from reconciler.manifest.load import load_manifests

    target = folder_target(b, cwd=opts.cwd, env=opts.env)
    desired = load_manifests([b.path])
    return desired, opened(target, [b.path], state_backend=opts.state_backend, state_dsn_env=opts.state_dsn_env,
                           cwd=opts.cwd, env=opts.env, concurrency=opts.concurrency, rate=opts.rate,
                           embedded=opts.embedded, writes=writes)
