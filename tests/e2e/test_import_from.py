"""Onboarding an existing business (issue 14, flow 6): import many objects in one state write,
each checked against vcita and its manifest; a mismatch refuses the whole import."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]


def _existing_business(workdir: Path, cli: CLI) -> dict[str, str]:
    """A business whose packages were made by someone else: apply, then lose the state."""
    assert cli("apply", "--auto-approve")[0] == 0
    state_file = workdir / "manifests/.reconciler/state.json"
    ids = {a: r["id"] for a, r in json.loads(state_file.read_text())["resources"].items()}
    for p in state_file.parent.iterdir():
        p.unlink()
    return ids


def test_import_from_a_csv_adopts_everything_in_one_write(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    ids = _existing_business(workdir, cli)
    listing = workdir / "onboarding.csv"
    listing.write_text("address,id\n" + "".join(f"{a},{i}\n" for a, i in sorted(ids.items())))
    code, out, err = cli("import", "--from", str(listing))
    assert code == 0, out + err
    assert out.count(": imported ") == 11
    state = json.loads((workdir / "manifests/.reconciler/state.json").read_text())
    assert {a: r["id"] for a, r in state["resources"].items()} == ids and state["serial"] == 1  # one write
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert len(client_packages(operator, demo)) == 8


def test_a_mismatch_anywhere_refuses_the_whole_import(workdir: Path, cli: CLI) -> None:
    ids = _existing_business(workdir, cli)
    pairs = dict(ids)
    # another package's id for piano-10 (accepted before: only existence was checked)
    pairs["catalog_package.piano-10"] = ids["catalog_package.guitar-5"]
    pairs.pop("catalog_package.guitar-5")
    # and a client package of another client
    pairs["client_package.alice-piano"], pairs["client_package.ben-guitar"] = (
        ids["client_package.ben-guitar"], ids["client_package.alice-piano"])
    listing = workdir / "onboarding.yaml"
    listing.write_text("".join(f"- {{address: {a}, id: {i}}}\n" for a, i in sorted(pairs.items())))
    code, out, err = cli("import", "--from", str(listing))
    assert code == 1, out + err
    assert "its name is '5 Guitar Lessons', the manifest's is '10 Piano Lessons'" in err
    assert "does not match client_package.alice-piano: its client is" in err
    assert "Nothing was imported" in err
    assert not (workdir / "manifests/.reconciler/state.json").exists()


def test_bad_import_files_are_located_errors(workdir: Path, cli: CLI) -> None:
    for name, text, says in [("a.csv", "client_package.x\n", "a.csv:1: expected 'address,id'"),
                             ("b.csv", "", "holds no address"),
                             ("c.yaml", "- [1, 2, 3]\n", "entry 1 is not an address and an id"),
                             ("d.csv", "catalog_package.piano-10,not an id!\n", "is not a vcita id")]:
        (workdir / name).write_text(text)
        code, _out, err = cli("import", "--from", str(workdir / name))
        assert code == 1 and says in err and "Traceback" not in err, (name, err)
    code, _out, err = cli("import", "client_package.x", "abc", "--from", "a.csv")
    assert code != 0 and "not both" in err
