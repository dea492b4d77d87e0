"""Terminal output for the CLI: plain lines when piped, colour on a terminal (rich).

Everything printed passes two guards (``reconciler.core.safetext``): each line's control characters
are escaped before styling (a server's ESC, BEL or line break cannot rewrite the screen or forge
a line), and the process's stdout and stderr are wrapped while the CLI runs
(:class:`RedactingStream`) so that no registered secret (a token, a proxy password) is written,
whichever code printed it; :class:`RedactingFilter` does both for log records.

Colour is decided once per stream, highest first: ``--color`` / ``--no-color`` (or
``RECONCILER_COLOR``), then ``NO_COLOR`` (any non-empty value: no colour, https://no-color.org),
then ``FORCE_COLOR`` (any non-empty value but ``0``: colour even when piped), else colour only
when the stream is a terminal.  ``-q`` hides informational lines; results, warnings and errors
are always printed.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback as tb
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.core.safetext import clean, printable, printable_json, redact

if TYPE_CHECKING:
    from rich.console import Console as Rich

    from reconciler.plan.document import Plan


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


def color_wanted(flag: bool | None, stream: object, env: Mapping[str, str] | None = None) -> bool:
    """Whether to colour ``stream`` (see the module docstring for the order of precedence)."""
    if flag is not None:
        return flag
    env = os.environ if env is None else env
    if env.get("NO_COLOR", ""):
        return False
    if env.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    return _isatty(stream)


def _isatty(stream: object) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class Console:
    """stdout for results, stderr for diagnostics and errors."""

    def __init__(self, color: bool | None = None, *, quiet: bool = False) -> None:
        self.color = color  # --color / --no-color; None: decide per stream
        self.quiet = quiet

    def _use_color(self, stream: object) -> bool:
        return color_wanted(self.color, stream)

    def _rich(self, stream: Any) -> Rich:
        from rich.console import Console as Rich

        on = self._use_color(stream)
        # force_terminal: --color and FORCE_COLOR colour a pipe too (rich alone would strip it).
        return Rich(file=stream, highlight=False, soft_wrap=True, force_terminal=on, no_color=not on,
                    color_system="standard" if on and not _isatty(stream) else "auto")

    def out(self, text: str = "", *, style: str | None = None) -> None:
        """Print a result line to stdout."""
        if style and self._use_color(sys.stdout):
            self._rich(sys.stdout).print(clean(text, keep="\n\t"), style=style, markup=False)
        else:
            sys.stdout.write(clean(text, keep="\n\t") + "\n")

    def markup(self, text: str) -> None:
        """Print rich markup to stdout (styles stripped when not colouring)."""
        self._rich(sys.stdout).print(clean(text, keep="\n\t"))

    def diagnostic(self, line: str) -> None:
        self._err(line, "red")

    def error(self, message: str, *, hint: str | None = None) -> None:
        self._err(f"Error: {message}", "bold red")
        if hint:
            self._err(f"  {hint}", "yellow")

    def warn(self, message: str) -> None:
        self._err(f"Warning: {message}", "yellow")

    def info(self, message: str) -> None:
        """An informational line on stderr; ``-q`` hides it."""
        if not self.quiet:
            self._err(message, None)

    def traceback(self) -> None:
        sys.stderr.write(clean(tb.format_exc(), keep="\n"))

    def _err(self, text: str, style: str | None) -> None:
        text = clean(text, keep="\n")
        if style and self._use_color(sys.stderr):
            self._rich(sys.stderr).print(text, style=style, markup=False)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


_LINE_STYLES = (
    ("-/+", "bold red"), ("+", "green"), ("~", "yellow"), ("<=", "cyan"), ("?", "magenta"), ("-", "red"),
    ("!", "yellow"), ("BLOCKED", "bold red"), ("Error:", "bold red"), ("Warning:", "yellow"),
    ("Plan:", "bold"), ("No changes.", "bold green"),
)


def print_plan(console: Console, plan: Plan, fmt: str) -> None:
    """Print a plan in ``fmt``; the text format is coloured line by line when colouring."""
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
