"""Terminal output for the CLI: plain lines when piped, colour on a terminal (rich).

Everything printed passes two guards (``reconciler.safetext``): each line's control characters
are escaped before styling (a server's ESC, BEL or line break cannot rewrite the screen or forge
a line), and the process's stdout and stderr are wrapped while the CLI runs
(:class:`RedactingStream`) so that no registered secret (a token, a proxy password) is written,
whichever code printed it; :class:`RedactingFilter` does both for log records.
"""

from __future__ import annotations

import logging
import sys
import traceback as tb
from typing import Any, TextIO

from reconciler.safetext import clean, printable, printable_json, redact


class RedactingStream:
    """A text stream that masks every registered secret in what is written through it."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(redact(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # isatty, flush, encoding, fileno, reconfigure ...
        return getattr(self.inner, name)


class RedactingFilter(logging.Filter):
    """Log records rendered on one line, control characters escaped, secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = clean(record.getMessage(), keep="")
        record.args = None
        return True


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

            Rich(file=sys.stdout, highlight=False, soft_wrap=True).print(clean(text, keep="\n\t"), style=style,
                                                                          markup=False)
        else:
            sys.stdout.write(clean(text, keep="\n\t") + "\n")

    def markup(self, text: str) -> None:
        """Print rich markup to stdout (styles stripped when not a terminal)."""
        from rich.console import Console as Rich

        Rich(
            file=sys.stdout, highlight=False, soft_wrap=True,
            force_terminal=self._use_color(sys.stdout), no_color=not self._use_color(sys.stdout),
        ).print(clean(text, keep="\n\t"))

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
        sys.stderr.write(clean(tb.format_exc(), keep="\n"))

    def _err(self, text: str, style: str | None) -> None:
        text = clean(text, keep="\n")
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
    text = printable_json(text) if fmt == "json" else printable(text, keep="\n\t")
    if fmt != "text" or not console._use_color(sys.stdout):
        sys.stdout.write(text)
        return
    for line in text.splitlines():
        stripped = line.lstrip()
        style = next((s for prefix, s in _LINE_STYLES if stripped.startswith(prefix)), None)
        console.out(line, style=style)
