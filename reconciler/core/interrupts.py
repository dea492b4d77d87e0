"""SIGINT and SIGTERM as exceptions, and the writes they must not cut in two.

Python turns SIGINT into ``KeyboardInterrupt``; SIGTERM, by default, ends the process on the
spot: no message, no exit code of ours, a state lock's record left behind.  While the CLI runs
(:func:`handling_signals`, installed by ``reconciler.cli`` only), SIGTERM is delivered the way
Ctrl-C is, as :class:`Terminated` (a ``KeyboardInterrupt``, so everything that unwinds on Ctrl-C
unwinds on it too: locks released, temporary files removed), and the CLI reports either as one
line with its exit code (130, 143).

Two places must not be cut by such an exception:

- an event loop's run: an exception raised inside a task at an arbitrary point is not how asyncio
  stops; the signal cancels the run's main task instead (as ``asyncio.Runner`` does for Ctrl-C),
  and the exception is raised once the loop has unwound (:func:`run_interruptible`);
- a group of writes that belong together (an export's manifests and the state recording them):
  :func:`deferred` holds the signal until the group is written, then raises it, so a run stopped
  there leaves everything written or nothing (each file is written atomically anyway).

Library code may use :func:`deferred`; nothing here prints or exits.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as Ctrl-C is (the CLI reports it and exits 143)."""


def exception_for(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


class _Deferral:
    """How deep inside :func:`deferred` the main thread is, and the first signal held meanwhile."""

    def __init__(self) -> None:
        self.depth = 0
        self.held: int | None = None


_deferral = _Deferral()


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_or_hold(signum: int, frame: FrameType | None) -> None:
    if _deferral.depth:
        if _deferral.held is None:
            _deferral.held = signum
        return
    raise exception_for(signum)


@contextlib.contextmanager
def handling_signals(*, then_ignore: bool = False) -> Iterator[None]:
    """SIGINT and SIGTERM raise (or, inside :func:`deferred`, are held) while inside; the previous
    handlers come back on the way out (``then_ignore``: they are ignored from then on, in a
    process that only exits after).  Only on the main thread (elsewhere: does nothing)."""
    if not _on_main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, _raise_or_hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if then_ignore else handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM (when :func:`handling_signals` is active) until the block is done, then
    raise the first one held: the block's writes are all made, or (stopped before it) none."""
    _deferral.depth += 1
    try:
        yield
    finally:
        _deferral.depth -= 1
        held, _deferral.held = (_deferral.held, None) if _deferral.depth == 0 else (None, _deferral.held)
    if held is not None:
        raise exception_for(held)


#: the signal for which a handler of the run's own cancelled its task (:func:`cancel_for`)
_cancelled_for: list[int] = []


def cancel_for(task: Any, signum: int) -> None:
    """Cancel a run's main ``task`` because of ``signum``, from a signal handler the run installed
    itself (a second Ctrl-C while an apply lets what is in flight finish): :func:`run_interruptible`
    then raises that signal's exception once the loop has unwound, as for its own, instead of
    letting the ``CancelledError`` out (a traceback and exit 1)."""
    if not _cancelled_for:
        _cancelled_for.append(signum)
    task.cancel()


def run_interruptible(run: Callable[[Coroutine[Any, Any, T]], T], coro: Coroutine[Any, Any, T]) -> T:
    """``run(coro)`` (``asyncio.run``, a Runner's ``run``) where a SIGINT/SIGTERM cancels the
    coroutine's task, and is raised (:func:`exception_for`) once the loop has unwound; a second
    signal raises at once.  Without :func:`handling_signals` active (a test calling library code,
    another thread), just ``run(coro)``."""
    if not _on_main_thread() or signal.getsignal(signal.SIGTERM) is not _raise_or_hold:
        return run(coro)
    import asyncio

    caught: list[int] = []

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if caught:  # a second signal: at once (held inside a deferred block)
                _raise_or_hold(signum, frame)
                return
            caught.append(signum)
            loop.call_soon_threadsafe(task.cancel)

        previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
        try:
            return await coro
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    _cancelled_for.clear()
    try:
        result = run(main())
    except asyncio.CancelledError:
        why = caught or _cancelled_for
        if why:
            raise exception_for(why[0]) from None
        raise
    if caught:  # the run ended anyway (it finished what it was writing): stop now all the same
        raise exception_for(caught[0])
    return result
