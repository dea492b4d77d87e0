"""The apply report for the pull request (``apply --format markdown``): the outcome and the money
first, failures kept longest under the comment limit, server text unable to break the table."""

from __future__ import annotations

import re
from pathlib import Path

from plancases import run_case
from sized_plans import sized_case

from reconciler.applier.run import Event
from reconciler.render.apply_md import LIMIT, MARKER, render_apply_markdown


def _outcomes(plan, failing_every: int):  # type: ignore[no-untyped-def]
    out = {}
    for n, address in enumerate(plan.addresses):
        if n % failing_every == 7:
            out[address] = Event(kind="end", address=address, action="create", status="failed",
                                 message="vcita said | <img src=x onerror=alert(1)>\nsecond line")
        else:
            out[address] = Event(kind="end", address=address, action="create", status="done",
                                 remote_id=f"id{n}", message=f"created id{n}")
    return out


def test_report_of_3000_keeps_every_failure_and_counts_the_rest(tmp_path: Path) -> None:
    plan = run_case(sized_case(3000), tmp_path)
    outcomes = _outcomes(plan, 100)
    failed = {a for a, e in outcomes.items() if e.status == "failed"}
    doc = render_apply_markdown(plan, outcomes, summary="Apply incomplete: 2970 done, 30 failed.",
                                notes=["Verified: nothing."])
    assert len(doc) <= LIMIT and doc.startswith(MARKER + "\n## reconciler apply\n\n**Apply incomplete")
    opened = sum(1 for i in plan.payment_requests.items if outcomes[i.address].status == "done")
    assert f"**Payment requests opened: {opened}**" in doc.splitlines()[5]
    rows = re.findall(r"^\| `.` \| `([^`]+)` \|", doc, re.M)
    assert failed <= set(rows)  # every failure keeps its row
    for line in doc.splitlines():
        if line.startswith("|"):
            assert line.endswith("|") and "<img" not in line  # one row per line, no HTML from the server
    named = re.findall(r"^- `([^`]+)` create: done$", doc, re.M)
    counted = sum(int(n) for n in re.findall(r"(\d+) done", doc.split("</details>")[0].split("| |")[-1]))
    assert len(rows) + len(named) + counted == 3000


def test_small_report_lists_every_object(tmp_path: Path) -> None:
    plan = run_case(sized_case(300), tmp_path)
    doc = render_apply_markdown(plan, _outcomes(plan, 1000), summary="Apply incomplete: 299 done, 1 failed.")
    rows = re.findall(r"^\| `.` \| `([^`]+)` \|", doc, re.M)
    assert rows == list(plan.addresses)  # in the plan's order
    assert "vcita said \\| &lt;img src=x onerror=alert(1)&gt; second line |" in doc


def test_apply_markdown_from_the_cli_reports_and_keeps_stdout_for_the_report(workdir: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("plan", "--out", "plan.json")[0] == 0
    code, out, err = cli("apply", "plan.json", "--format", "markdown")
    assert code == 0, err
    assert out.startswith(MARKER) and "**Apply complete: 11 done, 0 failed.**" in out
    assert "client_package.alice-piano: created" in err and "client_package.alice-piano: created" not in out
    assert cli("plan", "--out", "again.json")[0] == 0
    code, out, err = cli("apply", "again.json", "--format", "markdown")
    assert code == 0 and out.startswith(MARKER) and "**No changes applied.**" in out, err
