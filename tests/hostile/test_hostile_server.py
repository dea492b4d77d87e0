"""The CLI against a server that attacks it: one clear error, exit 1, no secret shown, nothing
created twice, memory bounded.

A misbehaving server (``tests/support/hostile.py``) stands on loopback in front of the served
sandbox and answers as the sandbox does, except the requests its mode attacks.  ``reconciler``
runs in its own process, pointed at it, so its peak memory (``ru_maxrss`` of that process alone, ``peakrun.py``) is
measured and its output is exactly what a person would see.

(An answer that arrives on an idle kept-alive connection is tested at the transport, where the
idle moment can be made certain: ``tests/remote/test_http.py``.)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile import HostileProxy
from peakrun import run_measured

REPO = Path(__file__).resolve().parents[2]
MEMORY_BOUND = 300 << 20


class Run:
    def __init__(self, code: int, out: str, err: str, peak: int, seconds: float) -> None:
        self.code, self.out, self.err, self.peak, self.seconds = code, out, err, peak, seconds

    @property
    def shown(self) -> str:
        return self.out + self.err


def reconciler(args: list[str], *, cwd: Path, base_url: str, token: str, business: str,
               timeout: float = 120) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCITA_", "RECONCILER_"))
           and k.lower() not in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")}
    env.update(VCITA_GATEWAY_URL=base_url + "/apigw", VCITA_FALLBACK_URL=base_url + "/api2",
               VCITA_BUSINESS_ID=business, VCITA_STAFF_TOKEN=token, PYTHONUNBUFFERED="1")
    started = time.monotonic()
    run = run_measured([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=env, timeout=timeout)
    return Run(run.code, run.out, run.err, run.peak, time.monotonic() - started)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    return tmp_path


@pytest.fixture
def call(work: Path, sandbox: Any, demo: dict[str, Any]) -> Any:
    def run(args: list[str], base_url: str | None = None) -> Run:
        return reconciler(args, cwd=work, base_url=base_url or sandbox.base_url, token=demo["tokens"]["staff"],
                          business=demo["business"]["id"])
    return run


def client_packages(sandbox: Any, demo: dict[str, Any]) -> list[dict[str, Any]]:
    r = httpx.get(f"{sandbox.operator_url}/client_packages?business_id={demo['business']['id']}", timeout=30)
    r.raise_for_status()
    return list(r.json()["client_packages"])


def assert_one_clear_error(run: Run, token: str) -> None:
    assert run.code == 1, (run.code, run.out[-2000:], run.err[-2000:])
    assert "Traceback" not in run.shown and token not in run.shown
    assert "\x1b" not in run.shown and "\x07" not in run.shown and "\r" not in run.shown
    assert sum(line.startswith("Error:") for line in run.err.splitlines()) == 1, run.err
    assert not any(line.lstrip().startswith("Apply complete") for line in run.shown.splitlines())
    assert run.peak < MEMORY_BOUND, f"peak memory {run.peak >> 20} MiB"


@pytest.mark.parametrize("mode, expected", [
    ("gzip-bomb", "larger than 16 MiB (counted after decoding)"),
    ("endless-headers", "malformed HTTP answer"),
    ("endless-value", "malformed HTTP answer"),
    ("escape-codes", "Apply complete! Resources: 9 added"),
    ("echo-auth", "Authorization: Bearer ***"),
])
def test_plan_against_a_hostile_answer_fails_once_clearly_in_bounded_memory(
        mode: str, expected: str, call: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    with HostileProxy(sandbox.base_url, mode) as hostile:
        run = call(["-v", "plan", "manifests"], base_url=hostile.url)
    assert_one_clear_error(run, demo["tokens"]["staff"])
    assert expected in run.err, run.err[-3000:]
    if mode == "escape-codes":  # shown, escaped, on the error's own line
        assert "\\x1b[2J\\x1b[H\\x07\\r\\nApply complete!" in run.err
    assert client_packages(sandbox, demo) == []


def test_a_list_that_never_ends_is_refused_after_a_bounded_walk(call: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    with HostileProxy(sandbox.base_url, "endless-list") as hostile:
        hostile.armed = False
        made = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)  # a catalog to list
        assert made.code == 0, made.err[-2000:]
        hostile.armed, hostile.requests = True, []
        run = call(["plan", "manifests"], base_url=hostile.url)
        pages = sum(1 for method, target, _ in hostile.requests if "/payment/packages?" in target)
    assert_one_clear_error(run, demo["tokens"]["staff"])
    assert "did not end after 1100 pages" in run.err and pages == 1100


def test_a_create_answered_twice_in_one_segment_is_never_repeated_nor_taken_as_the_429(
        call: Any, sandbox: Any, demo: dict[str, Any], work: Path) -> None:
    with HostileProxy(sandbox.base_url, "two-answers") as hostile:
        run = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
        creates = [body for method, target, body in hostile.requests
                   if method == "POST" and "/client_packages" in target]
        made = client_packages(sandbox, demo)
        hostile.armed = False  # a later apply, through an honest server, makes none of them twice
        again = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
    assert run.code == 1 and demo["tokens"]["staff"] not in run.shown and "Traceback" not in run.shown, run.shown
    assert "may or may not have been executed" in run.shown, run.shown
    assert creates and len(made) == len(creates)  # each create sent once, each made once
    assert max(Counter(creates).values()) == 1
    assert "Traceback" not in again.shown
    identities = Counter((cp["client_id"], cp["package_id"], cp.get("valid_from")) for cp in client_packages(sandbox, demo))
    assert max(identities.values()) == 1, identities


def test_a_late_429_after_a_create_answer_is_never_taken_for_another_create(
        call: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    with HostileProxy(sandbox.base_url, "late-429") as hostile:
        run = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
        creates = [body for method, target, body in hostile.requests
                   if method == "POST" and "/client_packages" in target]
    assert run.code == 0, run.shown[-3000:]  # each create had its own connection: its own answer
    made = client_packages(sandbox, demo)
    assert creates and len(made) == len(creates) and max(Counter(creates).values()) == 1


def test_a_408_on_an_idle_connection_after_each_create_is_never_taken_for_the_next_one(
        call: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    with HostileProxy(sandbox.base_url, "stray-408") as hostile:
        run = call(["apply", "--auto-approve", "--concurrency", "1", "manifests"], base_url=hostile.url)
        creates = [body for method, target, body in hostile.requests
                   if method == "POST" and "/client_packages" in target]
    assert run.code == 0, run.shown[-3000:]  # no create took the 408 for its answer
    made = client_packages(sandbox, demo)
    assert len(creates) == 8 and len(made) == len(creates) and max(Counter(creates).values()) == 1


def test_a_create_on_a_reused_connection_that_the_server_closes_is_an_unknown_outcome_never_resent(
        call: Any, sandbox: Any, demo: dict[str, Any]) -> None:
    # One create at a time, each answered after 120 ms: a connection is quiet by the create after
    # next, which reuses it; the server executes that create and closes the connection unanswered.
    with HostileProxy(sandbox.base_url, "close-reused") as hostile:
        run = call(["apply", "--auto-approve", "--concurrency", "1", "manifests"], base_url=hostile.url)
        creates = [body for method, target, body in hostile.requests
                   if method == "POST" and "/client_packages" in target]
        reused = list(hostile.reused)
        made = client_packages(sandbox, demo)
        hostile.armed = False  # a later apply, through an honest server, makes none of them twice
        again = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
    assert reused, "no create went out on a reused connection: the attack never happened"
    assert run.code == 1 and "Traceback" not in run.shown and demo["tokens"]["staff"] not in run.shown, run.shown
    assert "may or may not have been executed" in run.shown, run.shown
    assert len(made) == len(creates) and max(Counter(creates).values()) == 1  # each sent once, made once
    assert "Traceback" not in again.shown
    identities = Counter((cp["client_id"], cp["package_id"], cp.get("valid_from"))
                         for cp in client_packages(sandbox, demo))
    assert max(identities.values()) == 1, identities


def test_a_create_answered_with_another_clients_package_is_never_recorded_as_its_own(
        call: Any, sandbox: Any, demo: dict[str, Any], work: Path) -> None:
    # Each client-package create is executed, but answered with the create before it: another
    # client's package.  Recorded as its own, the create's package (billed) would be forgotten and
    # the other tracked twice; a later replace would bill the client again.
    with HostileProxy(sandbox.base_url, "replayed-answer") as hostile:
        run = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
        creates = [body for method, target, body in hostile.requests
                   if method == "POST" and "/client_packages" in target]
        state = json.loads((work / "manifests" / ".reconciler" / "state.json").read_text())
        hostile.armed = False
        again = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
    assert run.code == 1 and "Traceback" not in run.shown, run.shown[-3000:]
    assert run.shown.count("the one it was asked to create; the answer cannot be trusted") == len(creates) - 1
    assert f"Apply incomplete: 4 done, 0 failed, {len(creates) - 1} unknown." in run.shown, run.shown[-3000:]
    ids = [rs["id"] for rs in state["resources"].values()]
    assert len(ids) == len(set(ids)), "one package tracked under two addresses"
    assert len(state["pending"]) == len(creates) - 1  # each misanswered create stays of unknown outcome
    made = client_packages(sandbox, demo)
    assert len(creates) == 8 and len(made) == 8 and max(Counter(creates).values()) == 1
    # through an honest server, the second memory finds each one (opened since its intent): all
    # adopted, none created again, each tracked under its own address
    assert again.code == 0, again.shown[-3000:]
    assert len(client_packages(sandbox, demo)) == 8
    state = json.loads((work / "manifests" / ".reconciler" / "state.json").read_text())
    owners = {rs["id"]: rs["applied"]["client_id"] for a, rs in state["resources"].items()
              if a.startswith("client_package.")}
    assert {cp["id"]: cp["client_id"] for cp in client_packages(sandbox, demo)} == owners
    assert state["pending"] == {}


def test_a_catalog_create_answered_with_another_package_is_never_tracked_as_its_own(
        call: Any, sandbox: Any, demo: dict[str, Any], work: Path) -> None:
    # Each catalog-package create is executed, but answered with the create before it: another
    # name's package.  Tracked as its own, "5 Guitar Lessons" would be the piano package's id, and
    # every client package of it would sell the client the wrong package (at the wrong price).
    with HostileProxy(sandbox.base_url, "replayed-catalog-answer") as hostile:
        run = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
        creates = [body for method, target, body in hostile.requests
                   if method == "POST" and target.split("?", 1)[0].endswith("/platform/v1/payment/packages")]
        hostile.armed = False
        again = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
    assert run.code == 1 and "Traceback" not in run.shown, run.shown[-3000:]
    assert len(creates) == 3
    assert run.shown.count("not '") >= 2 and "the one it was asked to create; the answer cannot be trusted" in run.shown
    assert again.code == 0, again.shown[-3000:]  # adopted by name through an honest server
    state = json.loads((work / "manifests" / ".reconciler" / "state.json").read_text())
    names = {a: rs["applied"]["name"] for a, rs in state["resources"].items() if a.startswith("catalog_package.")}
    assert names == {"catalog_package.piano-10": "10 Piano Lessons", "catalog_package.guitar-5": "5 Guitar Lessons",
                     "catalog_package.complete-musician": "Complete Musician (1 year)"}
    ids = {a: rs["id"] for a, rs in state["resources"].items()}
    made = client_packages(sandbox, demo)
    assert len(made) == 8 and state["pending"] == {}
    by_id = {cp["id"]: cp for cp in made}
    for address, rs in state["resources"].items():
        if address.startswith("client_package."):
            assert by_id[rs["id"]]["package_id"] in ids.values()
    # each client package is of the catalog package its manifest names
    assert Counter(by_id[ids[a]]["package_id"] for a in ids if a.startswith("client_package.")) == Counter(
        {ids["catalog_package.piano-10"]: 3, ids["catalog_package.guitar-5"]: 3,
         ids["catalog_package.complete-musician"]: 2})


def test_a_catalog_list_with_infinity_in_it_is_a_protocol_error_and_nothing_is_planned(
        call: Any, sandbox: Any, demo: dict[str, Any], work: Path) -> None:
    # ``Infinity`` is not JSON (RFC 8259); Python's json module reads it as a float anyway.
    with HostileProxy(sandbox.base_url, "nan-list") as hostile:
        hostile.armed = False
        assert call(["apply", "--auto-approve", "manifests/catalog-packages.yaml"], base_url=hostile.url).code == 0
        state = (work / "manifests" / ".reconciler" / "state.json").read_bytes()
        hostile.armed = True
        run = call(["plan", "manifests"], base_url=hostile.url)
        applied = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
    assert_one_clear_error(run, demo["tokens"]["staff"])
    assert "expected a finite number, got inf" in run.err, run.err[-3000:]
    assert_one_clear_error(applied, demo["tokens"]["staff"])
    assert (work / "manifests" / ".reconciler" / "state.json").read_bytes() == state  # nothing recorded
    assert client_packages(sandbox, demo) == []


def test_a_create_answered_with_nan_is_never_recorded_and_never_repeated(
        call: Any, sandbox: Any, demo: dict[str, Any], work: Path) -> None:
    # Each client-package create is executed, but its answer holds ``NaN``: not JSON, so not an
    # answer to trust.  Nothing of it is recorded as tracked; each create stays of unknown outcome
    # (never sent again), and through an honest server the second memory adopts each one.
    with HostileProxy(sandbox.base_url, "nan-answer") as hostile:
        run = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
        creates = [body for method, target, body in hostile.requests
                   if method == "POST" and "/client_packages" in target]
        state = json.loads((work / "manifests" / ".reconciler" / "state.json").read_text())
        hostile.armed = False
        again = call(["apply", "--auto-approve", "manifests"], base_url=hostile.url)
    assert run.code == 1 and "Traceback" not in run.shown, run.shown[-3000:]
    assert run.shown.count("the answer cannot be read (data.client_package cannot be read: amount: expected a "
                           "finite number, got nan)") == 8, run.shown[-3000:]
    assert "Apply incomplete: 3 done, 0 failed, 8 unknown." in run.shown
    assert "NaN" not in json.dumps(state) and "nan" not in json.dumps(state).lower().replace("nanc", "")
    assert not any(a.startswith("client_package.") for a in state["resources"]), state["resources"].keys()
    assert len(state["pending"]) == len(creates) == 8
    assert again.code == 0, again.shown[-3000:]
    made = client_packages(sandbox, demo)
    assert len(made) == 8 and max(Counter((cp["client_id"], cp["package_id"]) for cp in made).values()) == 1
