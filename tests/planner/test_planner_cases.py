"""Table-driven planner tests: each file in cases/ holds desired + state + remote in, changes out.

Remote objects are written as the API returns them (strings for numbers, lower-case enums,
``amount`` for price) and pass through the remote layer's normaliser, so the normalisation quirks
are covered end to end.  See cases/README.md for the format.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from plancases import run_case
from ruamel.yaml import YAML

CASES = sorted((Path(__file__).parent / "cases").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_planner_case(path: Path, tmp_path: Path) -> None:
    case = YAML(typ="safe", pure=True).load(path.read_text())
    p = run_case(case, tmp_path)
    expect = case["expect"]
    got = [
        {"address": c.address, "action": c.action, "fields": [fc.path for fc in c.field_changes],
         **({"blocked": True} if c.blocked else {})}
        for c in p.changes if c.action != "noop"
    ]
    want = [{"fields": [], **w} for w in expect.get("changes", [])]
    assert got == want
    assert p.noop_count == expect.get("noops", 0)
    problems = [(pr.address, pr.severity, pr.message) for pr in p.problems]
    assert len(problems) == len(expect.get("problems", [])), problems
    for exp in expect.get("problems", []):
        assert any(a == exp["address"] and s == exp["severity"] and exp["contains"] in m
                   for a, s, m in problems), (exp, problems)
    assert [u.id for u in p.unmanaged] == expect.get("unmanaged", [])
    for check in expect.get("requests", []):
        change = next(c for c in p.changes if c.address == check["address"])
        req = change.requests[check.get("index", 0)]
        assert (req.method, req.path) == (check["method"], check["path"])
        if "body" in check:
            assert req.body == check["body"]
    assert type(p).from_json(p.to_json()) == p  # every plan round-trips through its JSON form
