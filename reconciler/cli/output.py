"""Terminal output for the CLI: plain lines when piped, colour on a terminal (rich)."""

from __future__ import annotations

import sys
import traceback as tb


class Console:
    """stdout for results, stderr for diagnostics and errors."""

    def __init__(self, color: bool | None = None) -> None:
        self._color = color

    def _use_color(self, stream: object) -> bool:
        if self._color is not None:
            return self._color
        return bool(getattr(stream, "isatty", lambda: False)())

    def out(self, text: str = "", *, style: str | None = None) -> None:
        """Print a result line to stdout."""
        if style and self._use_color(sys.stdout):
            from rich.console import Console as Rich

            Rich(file=sys.stdout, highlight=False, soft_wrap=True).print(text, style=style, markup=False)
        else:
            sys.stdout.write(text + "\n")

    def markup(self, text: str) -> None:
        """Print rich markup to stdout (styles stripped when not a terminal)."""
        from rich.console import Console as Rich

        Rich(
            file=sys.stdout, highlight=False, soft_wrap=True,
            force_terminal=self._use_color(sys.stdout), no_color=not self._use_color(sys.stdout),
        ).print(text)

    def diagnostic(self, line: str) -> None:
        self._err(line, "red")

    def error(self, message: str, *, hint: str | None = None) -> None:
        self._err(f"Error: {message}", "bold red")
        if hint:
            self._err(f"  {hint}", "yellow")

    def warn(self, message: str) -> None:
        self._err(f"Warning: {message}", "yellow")

    def info(self, message: str) -> None:
        self._err(message, None)

    def traceback(self) -> None:
        sys.stderr.write(tb.format_exc())

    def _err(self, text: str, style: str | None) -> None:
        if style and self._use_color(sys.stderr):
            from rich.console import Console as Rich

            Rich(file=sys.stderr, highlight=False, soft_wrap=True).print(text, style=style, markup=False)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


_LINE_STYLES = (
    ("-/+", "bold red"), ("+", "green"), ("~", "yellow"), ("<=", "cyan"), ("?", "magenta"), ("-", "red"),
    ("!", "yellow"), ("BLOCKED", "bold red"), ("Error:", "bold red"), ("Warning:", "yellow"),
    ("Plan:", "bold"), ("No changes.", "bold green"),
)


def print_plan(console: Console, plan: object, fmt: str) -> None:
    """Print a plan in ``fmt``; the text format is coloured line by line on a terminal."""
    from reconciler.render import render

    text = render(plan, fmt)
    if fmt != "text" or not console._use_color(sys.stdout):
        sys.stdout.write(text)
        return
    for line in text.splitlines():
        stripped = line.lstrip()
        style = next((s for prefix, s in _LINE_STYLES if stripped.startswith(prefix)), None)
        console.out(line, style=style)
