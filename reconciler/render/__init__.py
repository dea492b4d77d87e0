"""Renderers: pure ``Plan -> str``, one small module per format (text, markdown, json); the block of
each operation, by its type, in ``blocks.py``."""

from reconciler.render.common import summary_line
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text

FORMATS = ("text", "markdown", "json")


def render(plan, fmt: str) -> str:  # type: ignore[no-untyped-def]
    """Render ``plan`` in ``fmt`` (text | markdown | json)."""
    if fmt == "text":
        return render_text(plan)
    if fmt == "markdown":
        return render_markdown(plan)
    if fmt == "json":
        return plan.to_json()
    raise ValueError(f"unknown format {fmt!r}")


__all__ = ["FORMATS", "render", "render_markdown", "render_text", "summary_line"]
