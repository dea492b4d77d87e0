"""Golden-file tests pinning the three renderings of one plan that has every kind of change.

Regenerate after an intended change with ``RECONCILER_UPDATE_GOLDEN=1 python -m pytest tests/render``
and review the diff of tests/render/golden/.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from plancases import run_case
from ruamel.yaml import YAML

from reconciler.plan.document import Plan
from reconciler.render import render
from reconciler.render.markdown import render_markdown

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    case = YAML(typ="safe", pure=True).load((HERE / "plan_case.yaml").read_text())
    return run_case(case, tmp_path)


@pytest.mark.parametrize("fmt,ext", [("text", "txt"), ("markdown", "md"), ("json", "json")])
def test_rendering_matches_golden(plan: Plan, fmt: str, ext: str) -> None:
    got = render(plan, fmt)
    path = GOLDEN / f"plan.{ext}"
    if os.environ.get("RECONCILER_UPDATE_GOLDEN"):
        path.write_text(got)
    assert got == path.read_text()


def test_plan_covers_every_action(plan: Plan) -> None:
    assert {op.action for op in plan.operations} == {"create", "update", "replace", "import", "archive"}
    assert plan.blocked and plan.errors and plan.unmanaged


def test_json_rendering_round_trips(plan: Plan) -> None:
    assert Plan.from_json(render(plan, "json")) == plan
    assert json.loads(render(plan, "json"))["format_version"] == 2


def test_markdown_stays_under_the_comment_limit_by_folding(plan: Plan) -> None:
    big = plan.model_copy(update={"operations": plan.operations * 400})
    full = render_markdown(big, limit=10**9)
    assert len(full) > 65_000
    folded = render_markdown(big)
    assert len(folded) <= 65_000
    assert "To keep this comment under 65,000 characters" in folded
    assert folded.startswith("<!-- reconciler-plan -->\n## reconciler plan\n\n**Plan:")


def test_legend_lists_exactly_the_symbols_used(plan: Plan) -> None:
    """Terraform's symbols only where the meaning is Terraform's; archive deletes nothing, so it is
    Terraform's forget ('.'), never a red '-'; a plan of creates only explains only '+'."""
    from reconciler.render.common import SYMBOL, legend

    assert SYMBOL["archive"] == "." and "-" not in SYMBOL.values()
    assert [s for s, _ in legend(plan)] == ["+", "~", "-/+", "<=", "."]
    creates = plan.model_copy(update={"operations": [op for op in plan.operations if op.action == "create"]})
    assert [s for s, _ in legend(creates)] == ["+"]
    text = render(creates, "text")
    assert "    + create" in text and "update in place" not in text and "archive" not in text.split("reconciler will")[0]
