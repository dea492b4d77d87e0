"""Manifest paths an adversary would hand over: FIFOs, devices, links that loop or lead nowhere, files
that never end, documents too long to parse.  Each must be one located error, at once, and never
an internal error, a hang or unbounded memory.

The real command runs in a subprocess with a timeout (a FIFO that is opened blocks forever) and an
address-space limit (a read of /dev/zero that is not bounded dies of MemoryError under it).
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.core.errors import ManifestError
from reconciler.manifest.files import FileTooLarge, read_bounded
from reconciler.manifest.load import MAX_DOCUMENT_CHARS, load_manifests

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "manifests" / "catalog-packages.yaml").read_text()
LIMIT_AS = 1536 * 2**20  # 1.5 GiB of address space: ample for the CLI, far from "until memory ran out"


def _validate(cwd: Path, *paths: str) -> tuple[int, str]:
    """``reconciler validate PATHS`` in a child bounded in time and memory: (exit code, stderr)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))

    proc = subprocess.run([sys.executable, "-m", "reconciler", "validate", *paths], cwd=cwd, capture_output=True,
                          text=True, timeout=60, preexec_fn=limit)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


def _errors(paths: list[Path]) -> list[str]:
    with pytest.raises(ManifestError) as exc:
        load_manifests(paths)
    return [d.render() for d in exc.value.diagnostics]


def test_fifo_named_as_a_file_or_met_in_a_folder_is_refused_without_opening_it(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    os.mkfifo(tmp_path / "p.yaml")
    code, err = _validate(tmp_path, "p.yaml")
    assert code == 1 and "p.yaml: is a FIFO (named pipe), not a regular file" in err
    code, err = _validate(tmp_path, ".")
    assert code == 1 and "p.yaml: is a FIFO (named pipe), not a regular file" in err
    assert "1 error in manifests" in err  # good.yaml was read, and is fine


def test_link_to_dev_zero_is_refused_before_any_read(tmp_path: Path) -> None:
    (tmp_path / "z.yaml").symlink_to("/dev/zero")
    code, err = _validate(tmp_path, "z.yaml")
    assert code == 1 and "z.yaml: is a character device, not a regular file" in err


def test_socket_is_refused(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s.yaml"))
        errs = _errors([tmp_path])
    finally:
        sock.close()
    assert errs == [f"{tmp_path / 's.yaml'}: is a socket, not a regular file; manifests must be regular files "
                    "(it was not opened)"]


def test_symlink_loops_are_located_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to("..")  # a folder loop: linked folders are not walked
    (tmp_path / "sub" / "good.yaml").write_text(GOOD)
    code, err = _validate(tmp_path, "a.yaml")
    assert code == 1 and "a.yaml: symbolic link loop" in err
    errs = _errors([tmp_path])
    assert sorted(errs) == [f"{tmp_path / 'a.yaml'}: symbolic link loop (the links lead back to themselves)",
                            f"{tmp_path / 'b.yaml'}: symbolic link loop (the links lead back to themselves)"]


def test_dangling_link_names_its_target(tmp_path: Path) -> None:
    (tmp_path / "gone.yaml").symlink_to("nowhere.yaml")
    assert _errors([tmp_path / "gone.yaml"]) == [
        f"{tmp_path / 'gone.yaml'}: symbolic link to 'nowhere.yaml', which does not exist"]


def test_a_file_reached_twice_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(GOOD)
    (tmp_path / "link.yaml").symlink_to("c.yaml")
    os.link(tmp_path / "c.yaml", tmp_path / "hard.yml")
    ms = load_manifests([tmp_path, tmp_path / "c.yaml"])
    assert len(ms.files) == 1 and len(ms.catalog_packages) == 3


def test_huge_file_is_refused_by_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(51 * 2**20)  # sparse: 51 MiB that cost nothing to write
    code, err = _validate(tmp_path, "big.yaml")
    assert code == 1 and "big.yaml: file is larger than 50 MiB" in err


def test_the_read_itself_is_bounded_whatever_stat_says(tmp_path: Path) -> None:
    # /proc files claim a size of 0; the bound must hold on the bytes actually read.
    assert os.stat("/proc/self/status").st_size == 0
    with pytest.raises(FileTooLarge):
        read_bounded(Path("/proc/self/status"), limit=16)
    assert read_bounded(Path("/proc/self/status")).startswith(b"Name:")


def test_a_document_too_long_to_parse_is_refused_before_parsing(tmp_path: Path) -> None:
    head = "apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {name: big}\nspec:\n  items:\n"
    item = "    - {total_bookings: 1, services: [abc]}\n"
    (tmp_path / "one.yaml").write_text(GOOD + "---\n" + head + item * (MAX_DOCUMENT_CHARS // len(item) + 1))
    errs = _errors([tmp_path / "one.yaml"])
    assert errs == [f"{tmp_path / 'one.yaml'}:{GOOD.count(chr(10)) + 1}:1: this document is longer than 2 MiB (with its comments); "
                    "refused: split it into several documents"]


def test_many_small_documents_past_the_document_bound_are_fine(tmp_path: Path) -> None:
    doc = GOOD.replace("piano-10", "p{i}").replace("guitar-5", "g{i}").replace("complete-musician", "c{i}")
    n = MAX_DOCUMENT_CHARS // len(doc) + 2
    (tmp_path / "many.yaml").write_text("---\n".join(doc.format(i=i) for i in range(n)))
    assert len(load_manifests([tmp_path / "many.yaml"]).catalog_packages) == 3 * n


def test_errors_at_the_end_of_a_long_file_are_located_exactly(tmp_path: Path) -> None:
    doc = GOOD.replace("piano-10", "p{i}").replace("guitar-5", "g{i}").replace("complete-musician", "c{i}")
    docs = [doc.format(i=i) for i in range(300)]
    docs[-1] = docs[-1].replace("expiration: 6", "expiration: -6").replace("name: g299", "name: p0")
    text = "---\n".join(docs)
    (tmp_path / "long.yaml").write_text(text)
    lines = text.splitlines()
    bad = next(i for i in range(len(lines) - 1, 0, -1) if "expiration: -6" in lines[i]) + 1
    dup = next(i for i in range(len(lines) - 1, 0, -1) if "name: p0" in lines[i]) + 1
    errs = _errors([tmp_path / "long.yaml"])
    assert errs == [
        f"{tmp_path / 'long.yaml'}:{bad}:15: CatalogPackage/p299: spec.expiration: must be >= 1 (got -6)",
        f"{tmp_path / 'long.yaml'}:{dup}:9: CatalogPackage/p0: metadata.name: duplicate name: CatalogPackage "
        f"'p0' is already defined in {tmp_path / 'long.yaml'}:5",
    ]


@pytest.mark.parametrize("text, expected", [
    ("a: &a\n  <<: *a\n", "1:4: a merge key (<<) refers to the mapping that holds it"),
    ("apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {name: x}\nspec: !!str {a: 1}\n",
     "4:7: CatalogPackage/x: YAML tag tag:yaml.org,2002:str does not fit this value"),
    ("apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {name: x}\nspec:\n  online_payment_enabled: "
     "!!bool maybe\n", "5:27: CatalogPackage/x: cannot read 'maybe' as bool"),
    ("x: " + "[" * 900 + "]" * 900 + "\n", "1:1: document nests too deeply"),
    ("a: 1\n---\nkey: \"\u00e9\u00e9\U0001f600\x01\"\n", "3:10: character U+0001 is not allowed in YAML"),
    ("# note\n--- [\u00e9\u00e9, {\n", "3:1: YAML syntax error"),
])
def test_odd_yaml_gives_one_located_error(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "odd.yaml").write_text(text)
    errs = _errors([tmp_path / "odd.yaml"])
    assert len(errs) == 1 and errs[0].startswith(f"{tmp_path / 'odd.yaml'}:{expected}"), errs


def test_a_29_digit_price_is_one_located_error_in_plan(tmp_path: Path) -> None:
    # It used to validate, then fail 'plan' with "internal error: InvalidOperation".
    (tmp_path / "manifests").mkdir()
    for f in (ROOT / "manifests").glob("*.yaml"):
        (tmp_path / "manifests" / f.name).write_text(f.read_text())
    cat = tmp_path / "manifests" / "catalog-packages.yaml"
    cat.write_text(cat.read_text().replace("price: 540", "price: 12345678901234567890123456789", 1))
    proc = subprocess.run([sys.executable, "-m", "reconciler", "plan"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and "internal error" not in proc.stderr
    # One error: the client packages naming piano-10 are not reported as naming an unknown package.
    assert proc.stderr.splitlines() == [
        "manifests/catalog-packages.yaml:12:10: CatalogPackage/piano-10: spec.price: 12345678901234567890... is too "
        "large (at most 9,999,999,999.9999)", "Error: 1 error in manifests (1 file)"]
    assert not (tmp_path / "manifests" / ".reconciler").exists()  # refused before anything was written
