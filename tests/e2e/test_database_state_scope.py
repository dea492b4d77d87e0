"""With a database state, which manifest folders are a part of the business's manifests
(``reconciler.cli.common._part_of_the_business``): a plan over a part leaves the tracked objects
declared elsewhere alone; a plan over the whole archives what left it.  Over real folders (the
end-to-end case, with a real PostgreSQL server, is in ``tests/backends/test_postgres_cli.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.common import _inside_the_state_folder
from reconciler.remote.target import Secret
from reconciler.state.backends.postgres import PostgresStateStore
from reconciler.state.store import TargetRef

MANIFEST = "apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {name: x}\n"


def database_store() -> PostgresStateStore:
    """A postgres backend's store (not connected: deciding the scope reads no state)."""
    return PostgresStateStore(Secret("host=127.0.0.1 dbname=none"), TargetRef(gateway_url="g", business_id="b"))


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.parametrize("files, paths, part", [
    ({"other/catalog.yaml": MANIFEST, "other/clients/c.yaml": MANIFEST}, ["other/clients"], True),
    ({"other/catalog/a.yaml": MANIFEST, "other/clients/c.yaml": MANIFEST}, ["other/clients"], True),
    ({"other/catalog/a.yaml": MANIFEST, "other/clients/c.yaml": MANIFEST}, ["other/clients", "other/catalog"], False),
    ({"other/catalog.yaml": MANIFEST}, ["other"], False),
    ({"other/catalog.yaml": MANIFEST, "docker-compose.yml": "services: {}\n", "examples/x.yaml": MANIFEST},
     ["other"], False),
    ({"other/catalog.yaml": MANIFEST, "extra.yaml": MANIFEST}, ["other"], True),  # manifests at the top too
    ({"other/a/b/c.yaml": MANIFEST, "other/a/d.yaml": MANIFEST}, ["other/a/b"], True),
    ({"other/clients/c.yaml": MANIFEST, "other/notes.yaml": "doc: |\n  apiVersion: reconciler/v1\n"},
     ["other/clients"], False),  # an example quoted in another YAML file is not a manifest
    ({"other/clients/c.yaml": MANIFEST, "other/.hidden/x.yaml": MANIFEST}, ["other/clients"], False),
    ({"biz/acme/target.toml": "", "biz/acme/c.yaml": MANIFEST, "biz/beta/c.yaml": MANIFEST}, ["biz/acme"], False),
    ({"biz/acme/target.toml": "", "biz/acme/c.yaml": MANIFEST, "biz/acme/clients/c.yaml": MANIFEST},
     ["biz/acme/clients"], True),
    ({"manifests/acme/target.toml": "", "manifests/acme/c.yaml": MANIFEST}, ["manifests/acme"], False),
    ({"manifests/clients/c.yaml": MANIFEST}, ["manifests/clients"], True),  # the default folder, as before
    ({"manifests/c.yaml": MANIFEST}, ["manifests"], False),
])
def test_which_folders_are_a_part_of_the_business(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  files: dict[str, str], paths: list[str], part: bool) -> None:
    _tree(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    assert _inside_the_state_folder(paths, database_store()) is part


def test_a_linked_folder_is_not_looked_into(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path, {"other/clients/c.yaml": MANIFEST, "elsewhere/x.yaml": MANIFEST})
    (tmp_path / "other" / "link").symlink_to(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    assert _inside_the_state_folder(["other/clients"], database_store()) is False


@pytest.mark.parametrize("files, path, part", [
    ({"repo/manifests/catalog/a.yaml": MANIFEST, "repo/manifests/c.yaml": MANIFEST}, "repo/manifests/catalog", True),
    ({"repo/other/clients/c.yaml": MANIFEST}, "repo/other/clients", True),  # nothing to tell: nothing archived
    ({"repo/biz/acme/target.toml": "", "repo/biz/acme/clients/c.yaml": MANIFEST}, "repo/biz/acme/clients", True),
    ({"repo/biz/acme/target.toml": "", "repo/biz/acme/c.yaml": MANIFEST}, "repo/biz/acme", False),
])
def test_a_folder_outside_the_working_folder_is_a_part_unless_it_is_a_business_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], path: str, part: bool) -> None:
    _tree(tmp_path, files)
    (tmp_path / "ci").mkdir()
    monkeypatch.chdir(tmp_path / "ci")
    assert _inside_the_state_folder([str(tmp_path / path)], database_store()) is part
