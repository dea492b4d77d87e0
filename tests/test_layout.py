"""The package's layout rules (docs/ARCHITECTURE.md, "Layers"): every layer is in the import
contract, and no module grows past 400 lines without saying why."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"
PYPROJECT = PACKAGE.parent / "pyproject.toml"
MAX_LINES = 400


def _layers() -> set[str]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    found: set[str] = set()
    for contract in config["contracts"]:
        if contract["type"] == "layers":
            for row in contract["layers"]:
                found |= {name.strip() for name in row.split("|")}
    return found


def test_every_package_is_a_layer_of_the_import_contract() -> None:
    # A new package outside the contract would be free to import anything: name it in a layer.
    packages = {f"reconciler.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    loose = {f"reconciler.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert not loose, f"modules outside any layer's package: {sorted(loose)}"
    assert packages - {"reconciler.sandbox"} == _layers()  # the sandbox has contracts of its own


def test_no_module_over_400_lines_without_a_reason_in_its_docstring() -> None:
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "Over 400 lines on purpose" not in doc:
            unexplained.append(f"{path.relative_to(PACKAGE.parent)} ({len(text.splitlines())} lines)")
    assert not unexplained, "split these, or say in the docstring why not: " + ", ".join(unexplained)
