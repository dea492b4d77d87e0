"""A client written by e-mail when several vcita clients have that e-mail (vcita refuses a new
client of an existing e-mail, but an e-mail edited later, or in another case, can collide):
which client the object is for cannot be told, and the API's first match may change from one plan
to the next, so a tracked object would be "replaced" onto the other client and a new one created
for the wrong client.  The plan refuses the object, naming both clients; nothing is sent, even
with --allow-replace.  ``import`` refuses it too, and ``import --discover`` leaves it out, saying
why, rather than adopt the API's first client's package."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import client_packages

CLI = Callable[..., tuple[int, str, str]]
ALICE, BEN = "ktsrl7f6h94run82", "7omq1goalpsourny"
BEN_COMPLETE = """
---
apiVersion: reconciler/v1
kind: ClientPackage
metadata:
  name: ben-complete
spec:
  client: {email: Ben.Cohen@example.com}
  package: complete-musician
"""


def test_an_email_two_clients_share_is_refused_not_resolved_to_either(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    sold = client_packages(operator, demo)
    operator("PATCH", f"/objects/clients/{ALICE}", json={"email": "BEN.COHEN@example.com"})  # Alice is older
    clients = workdir / "manifests" / "client-packages.yaml"
    clients.write_text(clients.read_text() + BEN_COMPLETE)
    for args in (("apply", "--auto-approve", "--allow-replace"), ("plan",)):
        code, out, err = cli(*args)
        assert client_packages(operator, demo) == sold, f"a client package was sold to a client by e-mail: {out}"
        assert code == 1, out + err
        for address in ("client_package.ben-guitar", "client_package.ben-complete"):
            assert (f"{address}: spec.client: 2 clients of this business have the e-mail") in out + err
        assert f"({ALICE}, {BEN})" in out + err


def test_import_and_discover_do_not_pick_one_of_the_clients_an_email_names(
        workdir: Path, cli: CLI, operator: Any, demo: dict[str, Any]) -> None:
    code, out, err = cli("apply", "--auto-approve")
    assert code == 0, out + err
    state = workdir / "manifests" / ".reconciler" / "state.json"
    ben_guitar = json.loads(state.read_text())["resources"]["client_package.ben-guitar"]["id"]
    operator("PATCH", f"/objects/clients/{ALICE}", json={"email": "BEN.COHEN@example.com"})
    assert cli("state", "rm", "--yes", "client_package.ben-guitar")[0] == 0
    assert cli("state", "rm", "--yes", "--archived", ben_guitar)[0] == 0
    code, out, err = cli("import", "client_package.ben-guitar", ben_guitar)
    assert code != 0, out + err
    assert f"2 clients have the e-mail ben.cohen@example.com ({ALICE}, {BEN})" in out + err
    code, out, err = cli("import", "--discover")
    assert "client_package.ben-guitar" not in json.loads(state.read_text())["resources"]
    assert "client_package.ben-guitar: not matched: several clients have its e-mail" in out + err


def _many_clients_business(operator: Any, monkeypatch: Any, sandbox: Any, tmp_path: Path,
                           clients: int) -> dict[str, Any]:
    made = operator("POST", "/businesses", json={"name": "Many Clients", "services": 1, "clients": clients})
    monkeypatch.setenv("VCITA_BUSINESS_ID", made["business_id"])
    monkeypatch.setenv("VCITA_STAFF_TOKEN", made["staff_token"])
    folder = tmp_path / "many"
    folder.mkdir()
    docs = [f"""apiVersion: reconciler/v1
kind: CatalogPackage
metadata: {{name: lessons}}
spec:
  name: Lessons
  price: 100
  currency: USD
  expiration: 6
  expiration_unit: M
  items: [{{total_bookings: 5, services: [{made['services'][0]['id']}]}}]
  products: []
"""]
    for n, client in enumerate(made["clients"][:12]):
        docs.append(f"""apiVersion: reconciler/v1
kind: ClientPackage
metadata: {{name: c{n}}}
spec:
  client: {{email: {client['email']}}}
  package: lessons
""")
    (folder / "all.yaml").write_text("---\n".join(docs))
    return made


def test_a_second_client_of_an_email_on_a_later_page_of_the_list_is_refused(
        workdir: Path, cli: CLI, operator: Any, sandbox: Any, monkeypatch: Any) -> None:
    # 12 e-mails (more than 10: found in the clients list, 100 a page), all of clients on its first
    # page; client 150, on the second page, gets the first one's e-mail.  The walk used to stop
    # after page 1 (each e-mail seen) and plan a client package for the API's first client.
    made = _many_clients_business(operator, monkeypatch, sandbox, workdir, 160)
    first, late = made["clients"][0], made["clients"][149]
    operator("PATCH", f"/objects/clients/{late['id']}", json={"email": first["email"].upper()})
    for args in (("plan", "many"), ("apply", "--auto-approve", "many")):
        code, out, err = cli(*args)
        assert code == 1, out + err
        assert (f"client_package.c0: spec.client: 2 clients of this business have the e-mail "
                f"{first['email']!r} ({first['id']}, {late['id']})") in out + err, out + err
    assert operator("GET", f"/client_packages?business_id={made['business_id']}")["client_packages"] == []
    operator("PATCH", f"/objects/clients/{late['id']}", json={"email": "someone.else@example.com"})
    code, out, err = cli("apply", "--auto-approve", "many")  # once the e-mail is its own again
    assert code == 0, out + err
    assert len(operator("GET", f"/client_packages?business_id={made['business_id']}")["client_packages"]) == 12
