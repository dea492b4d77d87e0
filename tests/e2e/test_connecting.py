"""Connecting to vcita, end to end on the served sandbox: one door or two, the token that works,
a list that lags, empty variables and reconciler.toml found from a subfolder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CLI = Callable[..., tuple[int, str, str]]
LIST = "/platform/v1/payment/packages"


def _stats(operator: Any, **match: str) -> int:
    rows = operator("GET", "/stats")["requests"]
    return sum(r["count"] for r in rows if all(r[k] == v for k, v in match.items()))


# --- one door or two ---------------------------------------------------------------------------


def test_a_gateway_only_target_names_the_fallback_setting_and_changes_nothing(
        workdir: Path, cli: CLI, operator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VCITA_FALLBACK_URL")
    before = operator("GET", "/stats")["total"]
    code, out, err = cli("plan")
    assert code == 1 and not out
    assert "no fallback URL" in err and "VCITA_FALLBACK_URL" in err and "fallback_url" in err
    assert "Check the staff token" not in err
    assert "reconciler doctor" in err
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "VCITA_FALLBACK_URL" in err
    rows = operator("GET", "/stats")["requests"]
    assert all(r["method"] == "GET" and r["door"] == "gateway" for r in rows), rows  # no write, no fallback
    assert operator("GET", "/stats")["total"] > before
    assert not (workdir / "manifests" / ".reconciler" / "state.json").exists()


def test_a_gateway_only_target_works_when_the_gateway_serves_everything(
        workdir: Path, cli: CLI, operator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VCITA_FALLBACK_URL")
    operator("PUT", "/gateway", json={"routes": []})
    code, out, _ = cli("plan", "--format", "json", "--detailed-exitcode")
    assert code == 2
    plan = json.loads(out)
    doors = {r["door"] for op in plan["operations"] for r in op["requests"]}
    assert doors == {"gateway"}  # the per-request door label is true for a one-door target
    assert plan["target"]["fallback_url"] == ""
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "Verified: a fresh plan shows no changes." in err
    assert _stats(operator, door="fallback") == 0


# --- the token that works ------------------------------------------------------------------------


def test_a_list_refusing_staff_tokens_is_read_with_the_directory_token(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    operator("PUT", "/settings", json={"list_refuses_staff": ["fallback"]})
    code, out, err = cli("plan")
    assert code == 1
    assert "VCITA_DIRECTORY_TOKEN" in err and "X-On-Behalf-Of" in err  # what would make it work

    monkeypatch.setenv("VCITA_DIRECTORY_TOKEN", demo["tokens"]["directory"])
    operator("DELETE", "/stats")
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2, out + err
    assert "Plan: 11 to create" in out
    # one refused staff request, then the directory token for every page of the list
    assert _stats(operator, door="fallback", method="GET", route=LIST) == 2
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "Verified: a fresh plan shows no changes." in err
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0 and "No changes." in out


def test_a_wrong_directory_token_is_an_error_not_apply_complete(
        workdir: Path, cli: CLI, operator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    operator("PUT", "/settings", json={"list_refuses_staff": ["fallback"]})
    monkeypatch.setenv("VCITA_DIRECTORY_TOKEN", "sbx_directory_not_this_one")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "Apply complete" not in out
    assert "directory token was sent" in err and "Check the directory token" in err
    assert "sbx_directory_not_this_one" not in out + err


def test_a_directory_only_target_runs_what_its_token_can_and_says_what_it_cannot(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VCITA_STAFF_TOKEN")
    monkeypatch.setenv("VCITA_DIRECTORY_TOKEN", demo["tokens"]["directory"])
    catalog_only = workdir / "catalog"
    catalog_only.mkdir()
    (catalog_only / "c.yaml").write_text((workdir / "manifests" / "catalog-packages.yaml").read_text())
    code, out, err = cli("apply", "--auto-approve", str(catalog_only))
    assert code == 0, out + err  # catalog packages: list, create (directory + X-On-Behalf-Of)
    assert "services were not checked" in out
    code, out, err = cli("plan", "manifests")  # client packages need a staff token
    assert code == 1
    assert "cannot create this" in out and "POST /platform/v1/payment/client_packages" in out
    assert "Add a staff token" in out
    assert _stats(operator, method="POST", route="/platform/v1/payment/client_packages") == 0


# --- a list that lags ----------------------------------------------------------------------------


def test_a_lagging_list_gives_no_false_vanished_or_change_after_apply(
        workdir: Path, cli: CLI, operator: Any) -> None:
    operator("PUT", "/settings", json={"list_lag_seconds": 20})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "Apply complete: 11 done, 0 failed" in out
    assert "Verified: a fresh plan shows no changes." in err  # the new packages, read by id
    by_id = "/platform/v1/payment/packages/{package_id}"
    assert _stats(operator, method="GET", route=by_id) == 3  # the 3 new catalog packages, once each
    assert operator("GET", "/settings")["list_lag_seconds"] == 20.0
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 0 and "No changes." in out, out + err
    assert "vanished" not in out + err and "no longer exists" not in out + err
    code, out, err = cli("drift")
    assert code == 0, out + err


# --- no silent sandbox ---------------------------------------------------------------------------

REQUIRED = ("VCITA_GATEWAY_URL", "VCITA_BUSINESS_ID", "VCITA_STAFF_TOKEN")


@pytest.mark.parametrize("var", REQUIRED)
def test_an_empty_required_variable_is_an_error_naming_it(
        workdir: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "")
    for args in (("plan",), ("apply", "--auto-approve"), ("drift",), ("doctor",)):
        code, out, err = cli(*args)
        assert code == 1, (args, out, err)
        assert f"{var} is set but empty" in err, (args, err)
    assert not (workdir / ".reconciler").exists() and not (workdir / "manifests" / ".reconciler").exists()


def test_every_variable_empty_never_means_the_sandbox(
        workdir: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*REQUIRED, "VCITA_FALLBACK_URL", "VCITA_DIRECTORY_TOKEN"):
        monkeypatch.setenv(var, "")
    monkeypatch.setenv("CI", "true")
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and not out
    assert "VCITA_GATEWAY_URL, VCITA_BUSINESS_ID and VCITA_STAFF_TOKEN are set but empty" in err
    assert not (workdir / ".reconciler").exists()
    for var in ("VCITA_FALLBACK_URL", "VCITA_DIRECTORY_TOKEN"):  # optional ones: unset when empty
        monkeypatch.delenv(var)
    for var in REQUIRED:
        monkeypatch.delenv(var)
    monkeypatch.setenv("VCITA_FALLBACK_URL", "")
    monkeypatch.setenv("VCITA_DIRECTORY_TOKEN", "")
    code, out, err = cli("plan", "--detailed-exitcode")
    assert code == 2 and "embedded" in out, out + err  # nothing present: the embedded sandbox


TOML = """
default_target = "served"

[targets.served]
gateway_url = "{gateway}"
fallback_url = "{fallback}"
business_id = "{business}"
token_env = "SERVED_TOKEN"
"""


def _project(workdir: Path, sandbox: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
             text: str = TOML) -> None:
    for var in (*REQUIRED, "VCITA_FALLBACK_URL"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("SERVED_TOKEN", demo["tokens"]["staff"])
    (workdir / "reconciler.toml").write_text(text.format(
        gateway=sandbox.gateway_url, fallback=sandbox.fallback_url, business=demo["business"]["id"]))


def test_reconciler_toml_is_found_from_a_subfolder(
        workdir: Path, cli: CLI, sandbox: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        operator: Any) -> None:
    _project(workdir, sandbox, demo, monkeypatch)
    monkeypatch.chdir(workdir / "manifests")
    operator("DELETE", "/stats")
    code, out, err = cli("plan", ".", "--detailed-exitcode")
    assert code == 2, out + err
    assert "embedded" not in out and operator("GET", "/stats")["total"] > 0  # the served target
    assert not (workdir / "manifests" / ".reconciler" / "sandbox.db").exists()


def test_a_toml_selecting_no_target_is_an_error_from_a_subfolder(
        workdir: Path, cli: CLI, sandbox: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _project(workdir, sandbox, demo, monkeypatch, TOML.replace('default_target = "served"', ""))
    monkeypatch.chdir(workdir / "manifests")
    code, out, err = cli("plan", ".")
    assert code == 1 and "selects no target" in err and str(workdir / "reconciler.toml") in err
    assert not (workdir / "manifests" / ".reconciler").exists()
    code, out, err = cli("plan", ".", "--target", "served", "--detailed-exitcode")
    assert code == 2, out + err


def test_chdir_runs_as_if_started_in_that_folder(
        workdir: Path, cli: CLI, sandbox: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    _project(workdir, sandbox, demo, monkeypatch)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    code, out, err = cli("--chdir", str(workdir), "plan", "--detailed-exitcode")
    assert code == 2, out + err
    assert "Plan: 11 to create" in out
    code, out, err = cli("-C", str(workdir / "nowhere"), "plan")
    assert code == 1 and "nowhere" in err
