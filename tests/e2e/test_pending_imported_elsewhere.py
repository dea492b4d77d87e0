"""A create whose answer was lost, its package then imported by hand at another address: the
plan's "not found" names that address and the way to close the pending record.

The search through the payment requests does not read tracked packages again, so the package the
create made is never found for its own address once another address tracks it: the record stayed
"unknown" for ever, with a message that said "not found".  Nothing was sold twice; the message now
says where the package went.  Served sandbox, through the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
CREATE = "/platform/v1/payment/client_packages"


def _state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())


def test_a_lost_creates_package_imported_elsewhere_is_named(workdir: Path, cli: CLI, operator: Any,
                                                          demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "drop_after_commit": True, "times": 1})
    code, out, err = cli("apply", "--auto-approve", "--concurrency", "1")
    operator("DELETE", "/faults")
    assert code == 1 and "1 unknown" in out, out + err
    [intent] = _state(workdir)["pending"].values()
    address = intent["address"]
    name = address.split(".", 1)[1]
    clients = workdir / "manifests" / "client-packages.yaml"
    doc = next(d for d in clients.read_text().split("\n---\n") if f"name: {name}\n" in d)
    doc = doc[doc.index("apiVersion"):].replace(f"name: {name}\n", f"name: {name}-b\n").rstrip("\n")
    clients.write_text(clients.read_text().rstrip("\n") + "\n---\n" + doc + "\n  repeat_purchase: true\n")
    tracked = {r["id"] for r in _state(workdir)["resources"].values()}
    [made] = [cp["id"] for cp in client_packages(operator, demo) if cp["id"] not in tracked]
    assert cli("import", f"client_package.{name}-b", made)[0] == 0

    code, out, err = cli("plan")
    assert code == 4, out + err  # a pending create of unknown outcome
    said = " ".join((out + err).split())
    assert (f"client_package.{name}-b tracks {made}, which matches what this create sent and was recorded after "
            "it") in said, said
    assert f"'reconciler state forget-intent {address}' closes this record" in said
    assert len(client_packages(operator, demo)) == 8  # nothing sent
