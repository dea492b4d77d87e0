"""``reconciler apply`` without a saved plan shows the plan and asks; the user may read it for
minutes.  Between the answer and the first request, apply looks in the second memory again for the
client packages it would create (as it does for a saved plan): one that vcita got in the meantime
(another runner, a sale in the vcita UI) refuses the apply, and nothing is sent.

The real CLI in a child process on a pseudo-terminal (the prompt needs one), against the served
sandbox, whose operator API stands in for the vcita UI while the prompt waits.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
ALICE = "ktsrl7f6h94run82"
BEN = "7omq1goalpsourny"
PROMPT = b"Apply these changes"


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())


def _apply_at_the_prompt(workdir: Path, meanwhile: Callable[[], None]) -> tuple[int, str]:
    """Run ``reconciler apply`` on a terminal; at its prompt call ``meanwhile``, then answer yes."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--no-color"], cwd=workdir, env=env,
                            stdin=follower, stdout=follower, stderr=follower, start_new_session=True)
    os.close(follower)
    seen, answered = b"", False
    deadline = time.monotonic() + 180  # the plan before the prompt: generous, the machine may be loaded
    try:
        while proc.poll() is None:  # keep reading: a full terminal buffer would block the child
            assert time.monotonic() < deadline, "timed out: " + seen.decode(errors="replace")[-600:]
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
            if not answered and PROMPT in seen:
                meanwhile()
                os.write(leader, b"y\n")
                answered = True
                deadline = time.monotonic() + 120
        code = proc.wait(timeout=30)
        while select.select([leader], [], [], 0.2)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        os.close(leader)
    assert answered, seen.decode(errors="replace")
    return code, seen.decode(errors="replace")


def test_a_package_sold_while_the_prompt_waits_is_not_sold_again(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    path = workdir / "manifests" / "client-packages.yaml"
    everything = path.read_text()
    docs = everything.split("\n---\n")
    path.write_text("\n---\n".join(d for d in docs if "name: ben-guitar\n" not in d))
    assert cli("apply", "--auto-approve")[0] == 0
    path.write_text(everything)  # ben's guitar package is the one create left
    guitar = _state(workdir)["resources"]["catalog_package.guitar-5"]["id"]
    business = demo["business"]["id"]
    sold: list[str] = []

    def sell_it_in_the_ui() -> None:
        # ben buys it in vcita while the plan is read, and the server files its payment request
        # under alice: only a walk of the whole business, matching on the package, finds it
        [cp] = operator("POST", "/bulk/client_packages", json={"business_id": business, "client_ids": [BEN],
                                                               "package_id": guitar, "count": 1})["ids"]
        request = operator("GET", f"/objects/client_packages/{cp}")["doc"]["payment_request_id"]
        operator("PATCH", f"/objects/payment_requests/{request}", json={"client_uid": ALICE})
        sold.append(cp)

    operator("DELETE", "/stats")
    code, out = _apply_at_the_prompt(workdir, sell_it_in_the_ui)
    assert code == 1, out
    assert "client_package.ben-guitar" in out.split("Apply these changes", 1)[0]  # the plan shown
    after = out.split("Apply these changes", 1)[1]
    assert "since this plan was made, vcita got 1 of the client packages it would create" in after, after
    assert f"client_package.ben-guitar ({sold[0]})" in after and "nothing was applied" in after
    assert "reconciler import --discover" in after and "Traceback" not in out
    creates = [r for r in operator("GET", "/stats")["requests"]
               if r["method"] == "POST" and r["route"] == "/platform/v1/payment/client_packages"]
    assert creates == []  # nothing sent
    pairs = Counter((cp["client_id"], cp["package_id"]) for cp in client_packages(operator, demo))
    assert pairs[(BEN, guitar)] == 1 and max(pairs.values()) == 1

    # the way out the message names: adopt it, and nothing is left to create
    code, out, err = cli("import", "--discover")
    assert code == 0 and "1 client package(s) adopted" in out, out + err
    assert cli("plan", "--detailed-exitcode")[0] == 0


def test_without_a_sale_meanwhile_the_answer_applies_the_plan(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    code, out = _apply_at_the_prompt(workdir, lambda: None)
    assert code == 0 and "Apply complete: 11 done, 0 failed" in out, out
    assert len(client_packages(operator, demo)) == 8
    assert cli("plan", "--detailed-exitcode")[0] == 0
