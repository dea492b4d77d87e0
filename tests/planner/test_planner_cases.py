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
        {"address": op.address, "action": op.action, "fields": [fc.path for fc in getattr(op, "field_changes", ())],
         **({"blocked": True} if getattr(op, "blocked", None) else {})}
        for op in p.operations
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
        # the requests of every operation of the address, in order
        reqs = [r for op in p.operations if op.address == check["address"] for r in op.requests]
        req = reqs[check.get("index", 0)]
        assert (req.method, req.path) == (check["method"], check["path"])
        if "body" in check:
            assert req.body == check["body"]
    resolutions = {op.address: op.resolution for op in p.operations if op.action == "resolve"}
    assert resolutions == expect.get("resolutions", {})
    assert type(p).from_json(p.to_json()) == p  # every plan round-trips through its JSON form


# --- the direct field comparison agrees with deepdiff ------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reconciler.planner.diff import deep_changes, field_changes  # noqa: E402

_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["540", "M", "", "x"]))
_value = st.one_of(_leaf, st.dictionaries(st.sampled_from(["a", "a,b", "c"]), _leaf, max_size=3))
_keys = st.sets(st.sampled_from(["name", "price", "items", "products", "valid_until", "booking_credits"]),
                min_size=1)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), keys=_keys)
def test_direct_field_changes_match_deepdiff(data: st.DataObject, keys: set[str]) -> None:
    """Before and after have the same fields (the planner compares the managed ones only)."""
    before = {k: data.draw(_value) for k in sorted(keys)}
    after = {k: data.draw(_value) for k in sorted(keys)}
    fast = {(c.path, repr(c.before), repr(c.after)) for c in field_changes(before, after)}
    deep = {(c.path, repr(c.before), repr(c.after)) for c in deep_changes(before, after)}
    assert fast == deep


def test_nested_types_are_part_of_the_value() -> None:
    """Found by the property test above: a mapping equal by Python's == (False == 0) but not by
    type was reported unchanged by the direct comparison, changed by deepdiff."""
    before = {"items": {"a,b": False}, "price": "540"}
    after = {"items": {"a,b": 0}, "price": "541"}
    paths = {c.path for c in field_changes(before, after)}
    assert paths == {c.path for c in deep_changes(before, after)} == {"items[a,b]", "price"}
    assert {c.path for c in field_changes({"items": {"a,b": False}}, {"items": {"a,b": 0}})} == {"items[a,b]"}
