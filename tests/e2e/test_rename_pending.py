"""A renamed object whose create's answer was lost is never created again under its new name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
CREATE = "/platform/v1/payment/client_packages"


def test_renaming_an_object_whose_create_is_pending_creates_nothing(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    operator("POST", "/faults", json={"method": "POST", "path": CREATE, "drop_after_commit": True})
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1 and "8 unknown" in out, out + err
    operator("DELETE", "/faults")
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text().replace("name: alice-piano", "name: alice-piano-renamed"))
    code, out, err = cli("plan")
    assert code == 1, out + err
    assert "client_package.alice-piano-renamed" in out + err and "pending create of client_package.alice-piano" in out + err
    code, out, err = cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert len(client_packages(operator, demo)) == 8  # nothing created a second time
