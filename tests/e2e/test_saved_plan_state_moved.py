"""A saved plan applied after another run wrote the same state: refused, nothing sent.

The per-address checks of a saved plan (the address it creates is still untracked) cannot see
what another write did under another name: a teammate applied the same new client package under
another ``metadata.name`` (or renamed it and applied) after the plan was saved; the state tracks
that sale at the other address, owns it (so the second memory's recheck does not count it as
another run's), and the saved plan's create of the first address would sell it again.  The
plan records the state serial it was made from; apply refuses any other.  Served sandbox, CLI.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

EXTRA = """---
apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: {name}
spec:
  client: ktsrl7f6h94run82
  package: guitar-5
"""


def test_a_saved_plan_is_refused_once_the_state_moved_on(workdir: Path, cli: Any, operator: Any,
                                                          demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    manifest = workdir / "manifests" / "client-packages.yaml"
    base = manifest.read_text()
    manifest.write_text(base + EXTRA.format(name="alice-guitar"))
    code, out, err = cli("plan", "--out", "plan.json")  # reviewed in a pull request
    assert code == 0 and "1 to create" in out, out + err
    serial = json.loads((workdir / "manifests" / ".reconciler" / "state.json").read_text())["serial"]

    manifest.write_text(base + EXTRA.format(name="alice-guitar-lessons"))  # the same sale, named otherwise
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    sold = Counter((cp["client_id"], cp["package_id"]) for cp in client_packages(operator, demo))
    assert max(sold.values()) == 1

    manifest.write_text(base + EXTRA.format(name="alice-guitar"))  # the reviewed manifests, as the plan's job has them
    operator("DELETE", "/stats")
    code, out, err = cli("apply", "plan.json")
    said = out + err
    assert code == 1, said
    assert f"the state changed since this plan was made (serial {serial} then, " in said, said
    assert "Traceback" not in said
    assert not [r for r in operator("GET", "/stats")["requests"] if r["method"] != "GET"]
    assert Counter((cp["client_id"], cp["package_id"]) for cp in client_packages(operator, demo)) == sold

    code, out, err = cli("plan")  # the way out: a new plan moves the record, sells nothing
    assert code == 0 and "0 to create" in out, out + err
