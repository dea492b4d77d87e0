"""A create answered 2xx whose body cannot be read was executed: never recorded as failed.

Issue 12 (item 2): the applier closed the intent of such a create as *failed*, and the next
apply created the client package again (a second payment request).  The sandbox executes each
create and then strips a field from its answer; apply must report an unknown outcome with the id
the answer showed, keep the intent open, create nothing on the next run, and converge once the
ids are imported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
CREATE = "/platform/v1/payment/client_packages"


def test_a_create_answered_with_an_unreadable_body_is_never_sent_again(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "strip_fields": ["client_id"]})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    made = {cp["id"] for cp in client_packages(operator, demo)}
    assert len(made) == 8  # vcita executed every create
    assert "Apply incomplete: 3 done, 0 failed, 8 unknown." in out
    imports = dict(re.findall(r"'reconciler import (client_package\.[a-z0-9-]+) ([a-z0-9]{16})'", out))
    assert len(imports) == 8 and set(imports.values()) == made  # each message names the id to import

    operator("DELETE", "/faults")
    # The state-only path (a target whose payment requests are no second memory, issue 18).
    operator("POST", "/faults", json={"path": "/business/payments/v1/payment_requests", "status": 404})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err  # blocked until a person resolves them: never created again
    assert "unknown outcome of an earlier create" in out + err
    assert len(client_packages(operator, demo)) == 8

    for address, uid in imports.items():
        code, out, err = cli("import", address, uid)
        assert code == 0, out + err
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    code, out, _ = cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert {cp["id"] for cp in client_packages(operator, demo)} == made  # exactly one each, none lost
