"""Progress of library work that can take more than a second (a refresh, the verification after
an apply, a run over many businesses), as events a caller may show.

Library code never prints: it calls the sink it was given (none: nothing happens) with a
:class:`Progress`, and the CLI draws it (``reconciler.cli.progress``: a spinner on a terminal,
nothing otherwise).  Events come from the event loop's thread, one per unit of work finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units of ``phase`` finished (``total`` None: not known yet);
    ``last``: what finished last (a kind of read, an address, a business)."""

    phase: str
    done: int
    total: int | None
    last: str = ""


ProgressSink = Callable[[Progress], None]


class Tally:
    """Counts the finished units of one phase and reports each to ``sink``."""

    def __init__(self, sink: ProgressSink | None, phase: str, total: int | None = None) -> None:
        self.sink = sink
        self.phase = phase
        self.total = total
        self.done = 0

    def add(self, n: int) -> None:
        """``n`` more units to do (a list that turned out longer, reads by id after a list)."""
        self.total = (self.total or 0) + n
        self._report("")

    def step(self, last: str = "") -> None:
        """One unit finished."""
        self.done += 1
        self._report(last)

    def _report(self, last: str) -> None:
        if self.sink is not None:
            self.sink(Progress(self.phase, self.done, self.total, last))
