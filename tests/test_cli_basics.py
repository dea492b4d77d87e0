"""The CLI as a user meets it: exit codes, messages, no tracebacks, `python -m`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import run

ROOT = Path(__file__).resolve().parents[1]


def test_validate_default_folder(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert run(["validate"]) == 0
    assert capsys.readouterr().out.strip() == "3 catalog packages, 8 client packages in 2 files: valid"


def test_validate_errors_exit_1_with_located_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {name: x}\nspec:\n  price: '1'\n")
    assert run(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:5:10: CatalogPackage/x: spec.price: must be a number" in err
    assert "Traceback" not in err
    assert err.rstrip().endswith("errors in manifests (1 file)")


def test_validate_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Nope\n")
    assert run(["validate", "--format", "json", str(bad)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False and out["errors"][0]["line"] == 1


def test_usage_error_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", "--bogus"]) == 1
    err = capsys.readouterr().err
    assert "No such option '--bogus'" in err and "reconciler validate --help" in err


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plna"]) == 1
    assert "No such command" in capsys.readouterr().err


def test_version_and_module_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "reconciler", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("reconciler, version ")


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["kind"]["enum"] == ["CatalogPackage", "ClientPackage", "ClientPackageSet", "CatalogOrder"]
    assert [branch["if"]["properties"]["kind"]["const"] for branch in schema["allOf"]] == schema["properties"]["kind"]["enum"]


def test_unreadable_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: permissions cannot make a directory unreadable")
    d = tmp_path / "locked"
    d.mkdir()
    (d / "x.yaml").write_text("a: 1\n")
    d.chmod(0)
    try:
        assert run(["validate", str(d)]) == 1
    finally:
        d.chmod(0o755)
