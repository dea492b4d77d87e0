"""Fuzzing: valid and near-valid manifests through ``validate`` and ``plan``.

Every outcome must be either a plan (exit 0, or 2 with ``--detailed-exitcode``; exit 1 when the
plan lists problems found against the remote, e.g. a reference to a client that does not exist)
or located errors: every diagnostic a ``FILE:LINE:COL: ...`` line, and the JSON form of validate
with a line and column for each.  Never a traceback, an internal error, or another exit code.

``plan`` runs against the embedded sandbox (in process), whose demo business the generated
manifests reference.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz_strategies import manifest_text, mutated_docs, to_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import run

LOCATED = re.compile(r"^(?P<file>[^\n:]+):(?P<line>\d+):(?P<col>\d+): ")
#: Problems of a whole file, which have no line to point at.
FILE_LEVEL = re.compile(r"^(?P<file>[^\n:]+): (file is empty|file holds no manifest documents|file is larger than|"
                        r"cannot read file)")
SUMMARY = re.compile(r"^Error: \d+ errors? in manifests \(\d+ files?\)$")
FUZZ = settings(max_examples=int(os.environ.get("RECONCILER_FUZZ_EXAMPLES", "120")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_counter = itertools.count()


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working folder for the module: no vcita target in the environment (so plan uses the
    embedded sandbox, kept in this folder's .reconciler/sandbox.db across examples)."""
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as mp:
        for var in list(os.environ):
            if var.startswith(("VCITA_", "RECONCILER_")):
                mp.delenv(var)
        mp.chdir(root)
        yield root


def invoke(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return code, out.getvalue(), err.getvalue()


def write(root: Path, text: str) -> Path:
    folder = root / f"case-{next(_counter)}"
    folder.mkdir()
    path = folder / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def never_crashes(code: int, out: str, err: str, allowed: tuple[int, ...]) -> None:
    both = out + err
    assert "Traceback" not in both, both
    assert "internal error" not in both, both
    assert code in allowed, (code, both)


def located_errors(err: str, path: Path) -> list[str]:
    """The diagnostics of a refused manifest: all located in ``path``, then the summary line."""
    # split on newlines only: a value may hold a carriage return, which diagnostics print raw
    lines = [line for line in err.split("\n") if line.strip()]
    assert lines and SUMMARY.match(lines[-1]), err
    diagnostics = lines[:-1]
    assert diagnostics, err
    for line in diagnostics:
        m = LOCATED.match(line) or FILE_LEVEL.match(line)
        assert m, f"not a located error: {line!r}\n{err}"
        assert Path(m["file"]).name == path.name, line
        if m.re is LOCATED:
            assert int(m["line"]) >= 1 and int(m["col"]) >= 1, line
    return diagnostics


@FUZZ
@given(text=manifest_text())
def test_validate_gives_a_verdict_or_located_errors(fuzz_dir: Path, text: str) -> None:
    path = write(fuzz_dir, text)
    code, out, err = invoke("validate", str(path))
    never_crashes(code, out, err, (0, 1))
    if code == 0:
        assert out.strip().endswith(": valid"), out
        assert not err.strip(), err
    else:
        located_errors(err, path)
        assert not out.strip(), out

    code, out, err = invoke("validate", "--format", "json", str(path))
    never_crashes(code, out, err, (0, 1))
    report = json.loads(out)
    assert report["valid"] is (code == 0)
    for e in report.get("errors", []):
        flat = f"{e['file']}: {e['message']}"
        assert (e["line"] >= 1 and e["column"] >= 1) or FILE_LEVEL.match(flat), e
        assert Path(e["file"]).name == path.name and e["message"], e


@settings(FUZZ, max_examples=max(10, FUZZ.max_examples // 2))
@given(docs=mutated_docs(), fmt=st.sampled_from(["text", "json", "markdown"]))
def test_plan_gives_a_plan_or_located_errors(fuzz_dir: Path, docs: list[object], fmt: str) -> None:
    path = write(fuzz_dir, to_yaml(docs))
    vcode, _, verr = invoke("validate", str(path))
    code, out, err = invoke("plan", "--detailed-exitcode", "--format", fmt, str(path))
    never_crashes(code, out, err, (0, 1, 2))
    if vcode == 1:  # invalid: plan refuses with the very same located errors, and no plan
        assert code == 1
        assert located_errors(err, path) == located_errors(verr, path)
        assert not out.strip(), out
        return
    # valid: a plan, in the asked format (with problems listed when exit 1)
    assert out.strip(), err
    if fmt == "json":
        plan = json.loads(out)
        errors = [p for p in plan["problems"] if p["severity"] == "error"]
        actionable = plan["operations"]
        assert code == (1 if errors else 2 if actionable else 0), (code, errors, actionable)
    elif code == 1:  # the plan, with the problems found against the remote
        assert "error(s)" in out, out
    elif code == 2:
        assert "Plan: " in out, out
    else:
        assert "No changes" in out, out
    assert not (path.parent / ".reconciler" / "state.json").exists()  # plan writes no state


@pytest.mark.parametrize("text", ["false\n", "apiVersion: reconciler/v1\nkind: CatalogPackage\n---\n12\n", "just text\n"])
def test_scalar_document_is_located(fuzz_dir: Path, text: str) -> None:
    path = write(fuzz_dir, text)
    code, out, err = invoke("validate", str(path))
    never_crashes(code, out, err, (1,))
    assert all(LOCATED.match(line) for line in located_errors(err, path)), err


@pytest.mark.parametrize("value", ['"\\ud800\\udc00"', '"x\\udfff"'])
def test_surrogate_escape_is_a_located_error(fuzz_dir: Path, value: str) -> None:
    path = write(fuzz_dir, "apiVersion: reconciler/v1\nkind: ClientPackage\nmetadata:\n  name: a\nspec:\n"
                           f"  client: ktsrl7f6h94run82\n  package: {{id: \"0000000000000000\"}}\n  valid_until: {value}\n")
    code, out, err = invoke("validate", str(path))
    never_crashes(code, out, err, (1,))
    located_errors(err, path)
