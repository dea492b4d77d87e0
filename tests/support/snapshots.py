"""Proof that a refused command damaged nothing: a snapshot of every file under a folder.

A module of its own (``tests/support`` is on pytest's path): test modules importing from a
``conftest`` clash when several test folders are collected together."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

#: the ``cli`` fixture's type: run the CLI with arguments -> (exit code, stdout, stderr)
CLI = Callable[..., tuple[int, str, str]]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> sha256 of its bytes).  Folders are not listed:
    a refused command may leave an empty ``.reconciler/`` behind, which damages nothing."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
