"""Renderers: pure ``Plan -> str``, one small module per format (text, markdown, json); the block of
each operation, by its type, in ``blocks.py``."""

from reconciler.plan.document import Plan
from reconciler.render.common import summary_line
from reconciler.render.markdown import SUMMARY_LIMIT, render_markdown
from reconciler.render.text import render_text

FORMATS = ("text", "markdown", "github-summary", "json")


def render(plan: Plan, fmt: str) -> str:
    """Render ``plan`` in ``fmt`` (text | markdown | github-summary | json)."""
    if fmt == "text":
        return render_text(plan)
    if fmt == "markdown":
        return render_markdown(plan)
    if fmt == "github-summary":  # for $GITHUB_STEP_SUMMARY: no comment marker, 1 MiB of room
        return render_markdown(plan, SUMMARY_LIMIT, marker=False, in_bytes=True)
    if fmt == "json":
        return plan.to_json()
    raise ValueError(f"unknown format {fmt!r}")


__all__ = ["FORMATS", "render", "render_markdown", "render_text", "summary_line"]
