"""``reconciler show PLAN.json``: a saved plan rendered in any format without reading vcita, and
only a plan apply would accept (sealed, complete)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_show_renders_the_saved_plan_as_plan_did(workdir: Path, cli: Any) -> None:
    code, out, err = cli("plan", "--format", "markdown", "--out", "plan.json")
    assert code == 0, err
    code, shown, err = cli("show", "plan.json", "--format", "markdown")
    assert code == 0, err
    assert shown == out  # the same rendering, from the file
    code, summary, _ = cli("show", "plan.json", "--format", "github-summary")
    assert code == 0 and summary == out.split("\n", 1)[1]  # the same, without the comment marker
    code, text, _ = cli("show", "plan.json")
    assert code == 0 and "Plan: 11 to create" in text
    code, raw, _ = cli("show", "plan.json", "--format", "json")
    assert code == 0 and json.loads(raw)["format_version"] == 2


def test_show_refuses_an_edited_or_truncated_plan(workdir: Path, cli: Any) -> None:
    assert cli("plan", "--out", "plan.json")[0] == 0
    saved = Path("plan.json").read_text()
    Path("edited.json").write_text(saved.replace('"state_serial": 0', '"state_serial": 7'))
    code, out, err = cli("show", "edited.json")
    assert code == 1 and out == "" and "edited after it was made" in err
    Path("cut.json").write_text(saved[: len(saved) // 2])
    code, out, err = cli("show", "cut.json", "--format", "markdown")
    assert code == 1 and out == "" and "not a complete JSON plan" in err
    code, _, err = cli("show", "missing.json")
    assert code == 1 and "no plan file at missing.json" in err
