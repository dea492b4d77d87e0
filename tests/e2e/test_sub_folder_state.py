"""A plan over a sub-folder of the manifests uses the state of the folder that holds it.

The state is looked for next to the *first* manifest path.  With the client packages in
``manifests/clients/`` and the state in ``manifests/.reconciler/``, ``apply manifests/clients``
(a partial plan, as the README offers) used to start from an empty
``manifests/clients/.reconciler/state.json``: every client package was a create, and on a target
whose payment requests cannot be listed (the second memory unavailable, which the README allows
for) each was sold a second time.  It is now refused, naming the state above and ``--state``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]


def _split_clients_into_a_sub_folder(workdir: Path) -> Path:
    """client-packages.yaml moved to manifests/clients/, naming its catalog packages by id."""
    state = json.loads((workdir / "manifests/.reconciler/state.json").read_text())
    ids = {a.split(".", 1)[1]: r["id"] for a, r in state["resources"].items() if a.startswith("catalog_package.")}
    source = workdir / "manifests" / "client-packages.yaml"
    text = source.read_text()
    for name, remote_id in ids.items():
        text = re.sub(rf"package: {name}\b", f"package: {{id: {remote_id}}}", text)
    (workdir / "manifests" / "clients").mkdir()
    (workdir / "manifests" / "clients" / "client-packages.yaml").write_text(text)
    source.unlink()
    return workdir / "manifests" / "clients"


def test_a_plan_over_a_sub_folder_never_starts_from_an_empty_state(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    assert cli("apply", "--auto-approve")[0] == 0
    sub = _split_clients_into_a_sub_folder(workdir)
    assert cli("plan", "--detailed-exitcode")[0] == 0  # the same objects, still tracked
    # a target whose payment request list is not served: the state is all reconciler knows
    operator("POST", "/faults", json={"method": "GET", "path": "/business/payments/v1/payment_requests*",
                                      "status": 404})
    for args in (("apply", "--auto-approve", "manifests/clients"),
                 ("apply", "--auto-approve", "manifests/clients", "manifests/catalog-packages.yaml"),
                 ("plan", "manifests/clients/client-packages.yaml"),
                 ("drift", "manifests/clients")):
        code, out, err = cli(*args)
        assert code == 1, (args, out + err)
        assert ("no state at manifests/clients/.reconciler/state.json, but manifests/.reconciler/state.json "
                "holds one") in err, (args, err)
        assert "--state manifests/.reconciler/state.json" in err
    assert not (sub / ".reconciler").exists()
    pairs = Counter((cp["client_id"], cp["package_id"]) for cp in client_packages(operator, demo))
    assert sum(pairs.values()) == 8 and max(pairs.values()) == 1, pairs
    # with the state it names, the plan over the sub-folder is a partial plan: it knows every
    # client package, and leaves the catalog packages declared outside the sub-folder alone
    # (a folder inside the state's used to count as all the manifests: they were archived)
    code, out, err = cli("apply", "--auto-approve", "manifests/clients", "--state", "manifests/.reconciler/state.json")
    assert code == 0, out + err
    assert "3 tracked object(s) are outside the paths of this plan: left alone" in out, out
    assert "to archive" not in out, out
    state = json.loads((workdir / "manifests/.reconciler/state.json").read_text())
    assert len(state["resources"]) == 11 and not state["archived"], state["archived"]
    # the file given first decides no more than before: the folder holding the state, first, works
    code, out, err = cli("plan", "--detailed-exitcode", "manifests/catalog-packages.yaml", "manifests/clients")
    assert code == 0, out + err
