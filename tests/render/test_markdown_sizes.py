"""The pull-request comment at 1, 300 and 3,000 changes (golden files), and what must hold at any
size and any limit: under the limit, no row or code block cut, the money first, trivial creates
folded before anything a reviewer must see, and every change accounted for.

Regenerate the golden files after an intended change with
``RECONCILER_UPDATE_GOLDEN=1 python -m pytest tests/render`` and review their diff by eye.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from plancases import run_case
from sized_plans import sized_case

from reconciler.plan.document import Plan
from reconciler.render import render
from reconciler.render.markdown import LIMIT, SUMMARY_LIMIT, render_markdown

GOLDEN = Path(__file__).parent / "golden"
_plans: dict[int, Plan] = {}


def sized_plan(n: int, tmp_path: Path) -> Plan:
    if n not in _plans:
        _plans[n] = run_case(sized_case(n), tmp_path)
    return _plans[n]


def check_well_formed(doc: str, plan: Plan, limit: int) -> dict[str, set[str]]:
    """The invariants of any rendering; returns which addresses have details, a row, a name."""
    assert len(doc) <= limit
    lines = doc.splitlines()
    fence = False
    depth = 0
    for n, line in enumerate(lines):
        if line.startswith("```"):
            fence = not fence
            continue
        if fence:
            continue
        depth += line.count("<details>") - line.count("</details>")
        assert depth in (0, 1), (n, line)  # never nested, never closed twice
        if line.startswith("|"):
            assert line.endswith("|") and not line.endswith("\\|"), (n, line)  # a whole row
            assert lines[n - 1].startswith("|") or lines[n + 1].startswith("|---"), (n, line)  # rows together
    assert not fence and depth == 0  # every code block and every collapsed block closed
    top = next(n for n, line in enumerate(lines) if line.startswith("**Plan:"))
    assert top <= 3 and lines[top + 2].startswith("**Payment requests:")  # the money at the top
    shown = {
        "details": set(re.findall(r"^<details><summary><code>\S+ ([^\s<]+)", doc, re.M)),
        "row": set(re.findall(r"^\| `[^`]+` \| `([^`]+)` \|", doc, re.M)),
        "name": set(re.findall(r"^- `\S+ (\S+)` ", doc, re.M)),
    }
    counted = sum(int(n) for n in re.findall(r"(\d+) (?:create|update|replace|import|archive|move|re-?adopt|"
                                              r"readopt|resolve|set credits)\b(?=[,;])", _unlisted(doc)))
    assert shown["details"] <= shown["row"]
    assert not shown["row"] & shown["name"]
    assert len(shown["row"]) + len(shown["name"]) + counted == len(plan.operations)  # each change accounted for
    important = {op.address for op in plan.operations if op.action in ("update", "replace")}
    trivial = {op.address for op in plan.operations if op.action == "create"}
    if shown["details"] & trivial:
        assert important <= shown["details"]  # a trivial create never keeps details an update lost
    if shown["row"] & trivial:
        assert important <= shown["row"]
    if (shown["name"] | shown["row"]) & trivial:
        assert important <= shown["name"] | shown["row"]
    return shown


def _unlisted(doc: str) -> str:
    # "- ... and 2620 create, 10 import: ..." or "Not listed here: 2620 create, 10 import; ..."
    found = re.findall(r"^(?:- \.\.\. and|Not listed here:) ((?:\d+ [a-z -]+, )*\d+ [a-z -]+)[:;]", doc, re.M)
    return "".join(f"{x};" for x in found)


@pytest.mark.parametrize("n", [1, 300, 3000])
def test_pull_request_comment_matches_golden(n: int, tmp_path: Path) -> None:
    plan = sized_plan(n, tmp_path)
    assert len(plan.operations) == n
    doc = render(plan, "markdown")
    path = GOLDEN / f"plan-{n}.md"
    if os.environ.get("RECONCILER_UPDATE_GOLDEN"):
        path.write_text(doc)
    assert doc == path.read_text()
    shown = check_well_formed(doc, plan, LIMIT)
    updates = {op.address for op in plan.operations if op.action in ("update", "replace")}
    if n == 1:
        assert shown["details"] == updates and "To keep this comment" not in doc
    if n == 300:  # the creates are folded into one list of names; every update keeps its diff
        assert shown["details"] >= updates
        creates = {op.address for op in plan.operations if op.action == "create"}
        assert shown["name"] == creates | {"catalog_package.found-0"}  # an import without changes too
        assert "263 change(s) are listed by name only" in doc
    if n == 3000:  # every update and replace keeps its table row; the creates are counted
        assert shown["row"] >= updates
        assert "Not listed here: 2620 create, 10 import;" in doc


def test_updates_are_highlighted_as_changes_and_imports_not_as_deletions(tmp_path: Path) -> None:
    doc = render(sized_plan(300, tmp_path), "markdown")
    blocks = re.findall(r"```diff\n(.*?)```", doc, re.S)
    lines = [line for b in blocks for line in b.splitlines()]
    assert "! price = 250 -> 300" in lines  # '~' becomes '!': orange in GitHub's diff colouring
    assert not [line for line in lines if line.startswith("~")]
    assert not [line for line in lines if line.startswith("<")]  # '<' would be coloured as removed
    assert not [line for line in lines if line.startswith("! ") and "->" not in line and "{" not in line]


@pytest.mark.parametrize("limit", [700, 1_500, 4_000, 9_999, 20_000, 47_187, 47_188, 65_000])
def test_any_limit_is_kept_without_cutting_anything(limit: int, tmp_path: Path) -> None:
    plan = sized_plan(300, tmp_path)
    doc = render_markdown(plan, limit=limit)
    if limit >= 1_500:
        check_well_formed(doc, plan, limit)
    assert len(doc) <= limit and doc.startswith("<!-- reconciler-plan -->\n## reconciler plan\n\n**Plan: 262 to create")


def test_step_summary_is_the_same_rendering_without_the_marker_and_with_room(tmp_path: Path) -> None:
    plan = sized_plan(3000, tmp_path)
    summary = render(plan, "github-summary")
    assert not summary.startswith("<!--") and summary.startswith("## reconciler plan")
    shown = check_well_formed(summary, plan, SUMMARY_LIMIT)
    assert len(shown["details"]) + len(shown["name"]) == 3000  # 1 MiB holds every change here
    assert len(summary) > LIMIT


def test_a_summary_is_measured_in_bytes(tmp_path: Path) -> None:
    docs = [f"apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {{name: wide-{i}}}\n"
            f"spec: {{name: Wide {i}, price: 10, currency: EUR, expiration: 6, expiration_unit: M, "
            f"description: '{'é' * 300}', items: [{{total_bookings: 1, services: [svc1]}}]}}\n" for i in range(150)]
    plan = run_case({"manifests": "---\n".join(docs), "remote": {"service_ids": ["svc1"]}}, tmp_path)
    full = render_markdown(plan, 10**9)
    assert len(full) < 130_000 < len(full.encode())  # fits in characters, not in bytes
    assert render_markdown(plan, 130_000) == full
    doc = render_markdown(plan, 130_000, in_bytes=True)
    assert len(doc.encode()) <= 130_000  # folded to fit the bytes (the creates, as one kind, by name)
    assert "150 change(s) are listed by name only" in doc


def test_a_huge_value_in_one_object_folds_that_object_only(tmp_path: Path) -> None:
    case = sized_case(1)
    case["manifests"] = case["manifests"].replace("spec: {name: Piano 0,", "spec: {description: '" + "x" * 70_000
                                                  + "', name: Piano 0,")
    plan = run_case(case, tmp_path)
    doc = render_markdown(plan)
    shown = check_well_formed(doc, plan, LIMIT)
    assert shown["row"] == {"catalog_package.piano-0"} and not shown["details"]
    assert "the details of 1 change(s) are folded (the table keeps their row)" in doc


def test_server_text_cannot_break_the_comment(tmp_path: Path) -> None:
    case = sized_case(300)
    hostile = "x</details>\n\n```\n| <script>alert(1)</script> |\n# Approved"
    case["remote"]["catalog_packages"].append(
        {"id": "evil</code>|id", "name": hostile, "price": "1.0", "currency": "USD", "expiration": 1,
         "expiration_unit": "m", "items": [], "products": []})
    plan = run_case(case, tmp_path)
    assert plan.unmanaged
    for limit in (LIMIT, 10**9):
        doc = render_markdown(plan, limit)
        check_well_formed(doc, plan, limit)
        assert "<script>" not in doc and "\n# Approved" not in doc  # no HTML, no line of its own
        assert "x&lt;/details&gt; ``` \\| &lt;script&gt;" in doc  # shown, as text, on its list line
