"""What the CLI shows while long work runs, drawn from the library's progress events
(``reconciler.core.progress``) and the applier's events.

* :class:`Spinner`: one line on stderr with counts, during a refresh (plan, drift, the plan of
  apply), the verification after apply, and runs over many businesses (``--all``).  Only when
  stderr is a terminal and ``-q`` is not given; nothing otherwise (logs stay clean), and never
  on stdout, which may be the plan, a report or JSON.  It disappears when the phase ends.
* :class:`ApplyBar`: the apply's bar on a terminal: done of total, how many are in flight, and
  the last object finished (finished lines print above it); plain lines otherwise.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from reconciler.cli.output import Console, color_wanted
from reconciler.core.progress import Progress
from reconciler.core.safetext import clean


def _isatty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def spinner_text(p: Progress) -> str:
    """``refreshing: 12/300 read (last: client_package.alice-piano)``; a phase of unknown
    length with nothing counted yet is only named (``checking payment requests...``)."""
    if p.total is None and not p.done:
        return f"{p.phase}..."
    total = f"/{p.total}" if p.total is not None else ""
    unit = "businesses" if p.phase.endswith("--all") else "read"
    last = f" (last: {clean(p.last, keep='')})" if p.last else ""
    return f"{p.phase}: {p.done}{total} {unit}{last}"


class Spinner:
    """A transient status line on stderr fed by progress events; a no-op unless enabled."""

    def __init__(self, console: Console, *, stream: Any = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = (not console.quiet and _isatty(self.stream)) if enabled is None else enabled
        self.color = color_wanted(console.color, self.stream)
        self.last: Progress | None = None
        self._status: Any = None

    def __call__(self, p: Progress) -> None:
        self.last = p
        if self._status is not None:
            from rich.text import Text

            self._status.update(Text(spinner_text(p)))  # Text: a name is never read as markup

    @contextlib.contextmanager
    def showing(self, phase: str) -> Iterator[Spinner]:
        """Show the spinner while the block runs (when enabled)."""
        if not self.enabled:
            yield self
            return
        from rich.console import Console as Rich
        from rich.status import Status
        from rich.text import Text

        rich = Rich(file=self.stream, force_terminal=True, no_color=not self.color, highlight=False)
        self._status = Status(Text(f"{phase}..."), console=rich)
        self._status.start()
        try:
            yield self
        finally:
            self._status.stop()
            self._status = None


class ApplyBar:
    """A rich progress bar on a terminal: done/total, in flight, elapsed, the last object finished."""

    def __init__(self, enabled: bool, *, console: Any = None) -> None:
        self.enabled = enabled
        self.in_flight = 0
        self.last = ""
        self._rich_console = console
        self._progress: Any = None
        self._task: Any = None
        self._started: set[str] = set()

    def running(self, total: int) -> contextlib.AbstractContextManager[Any]:
        if not self.enabled:
            return contextlib.nullcontext()
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = bar = Progress(TextColumn("applying"), BarColumn(), MofNCompleteColumn(),
                                        TextColumn("{task.fields[in_flight]} in flight"), TimeElapsedColumn(),
                                        TextColumn("{task.fields[last]}", markup=False),
                                        transient=True, console=self._rich_console)
        self._task = self._progress.add_task("", total=total, in_flight=0, last="")
        return bar

    def started(self, address: str) -> None:
        self._started.add(address)
        self.in_flight += 1
        self._show()

    def finished(self, address: str, status: str, line: str, style: str | None, plain: Callable[[], None]) -> None:
        """An object ended: its line printed (above the bar, or plain), the counts updated."""
        if address in self._started:  # skipped and refused objects end without having started
            self._started.discard(address)
            self.in_flight -= 1
        self.last = f"last: {address} {status}"
        if self._progress is None:
            plain()
            return
        self._progress.console.print(line, style=style, markup=False, highlight=False)
        self._progress.advance(self._task)
        self._show()

    def _show(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, in_flight=self.in_flight, last=clean(self.last, keep=""))
