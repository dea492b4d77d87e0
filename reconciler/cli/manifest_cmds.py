"""``reconciler validate`` and ``reconciler schema``: the manifest language, no remote needed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reconciler.cli.options import manifest_paths
from reconciler.core.errors import ManifestError


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json prints every diagnostic as an object (for editors and CI annotations).")
@click.pass_obj
def validate(obj: object, paths: tuple[str, ...], fmt: str) -> int:
    """Check manifests without contacting vcita.

    PATHS are files or directories (walked for *.yaml and *.yml); the default is manifests/.
    Every problem is reported as FILE:LINE:COL: Kind/name: field: message. Exit code 0 when
    valid, 1 otherwise.
    """
    from reconciler.manifest.load import load_manifests

    console = obj.console  # type: ignore[attr-defined]
    try:
        ms = load_manifests(manifest_paths(paths))
    except ManifestError as e:
        if fmt != "json":
            raise
        click.echo(json.dumps({
            "valid": False,
            "errors": [
                {"file": d.file, "line": d.line, "column": d.col, "address": d.address,
                 "field": d.field, "message": d.message}
                for d in e.diagnostics
            ],
        }, indent=2))
        return 1
    summary = (
        f"{_plural(len(ms.catalog_packages), 'catalog package')}, "
        f"{_plural(len(ms.client_packages), 'client package')} in {_plural(len(ms.files), 'file')}: valid"
    )
    if fmt == "json":
        click.echo(json.dumps({
            "valid": True,
            "catalog_packages": len(ms.catalog_packages),
            "client_packages": len(ms.client_packages),
            "files": ms.files,
            "digest": ms.digest(),
        }, indent=2))
    else:
        console.out(summary, style="green")
    return 0


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout.")
def schema(out: str | None) -> None:
    """Print the JSON Schema of a manifest document.

    Editors use it through a first line such as
    '# yaml-language-server: $schema=../schema/reconciler-v1.schema.json'.
    """
    from reconciler.model.manifest import document_json_schema

    text = json.dumps(document_json_schema(), indent=2, sort_keys=True) + "\n"
    if out:
        from reconciler.core.fsutil import atomic_write_text

        atomic_write_text(Path(out), text, mode=0o644)
    else:
        click.echo(text, nl=False)
