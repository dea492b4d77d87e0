"""A request's body written with its head, in the same step of the event loop, on every Python.

aiohttp buffers a request's head to send it together with the body, and writes the body in a
task of its own.  From Python 3.12 that task starts eagerly: a small body (every create and
update) is written at once, head and body in one segment.  On Python 3.11 the task only starts at
the event loop's next turn, behind every callback already waiting: under an apply's load (32
creates in flight, answers arriving in bursts) each create then waited a turn of a busy loop
before a single byte of it left.  Measured (``bench/bench_apply.py``'s apply of 1,000 creates at
20 ms, 8 alternating pairs in one process, on a machine shared with other work): 2.21x of the
bound without this, 2.03x with it (medians).

:class:`InlineBodyRequest` gives Python 3.11 what 3.12 does: aiohttp's own ``write_bytes`` is run
up to its first suspension at the very place aiohttp creates its task (the body of a create
never suspends it: a few hundred bytes on a fresh or quiet connection), and the task aiohttp
creates only finishes what is left, if anything (a body larger than the transport's buffer
waits for it to drain; a ``100-continue`` waits for the server).  Nothing else changes: the same
coroutine, the same error handling (aiohttp's own, inside ``write_bytes``), the same bytes.
On Python 3.12 and later, and should aiohttp's ``write_bytes`` ever change its parameters, it is
aiohttp's plain ``ClientRequest`` (:data:`REQUEST_CLASS`).
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Coroutine, Generator
from typing import Any

import aiohttp


def stepped(coro: Coroutine[Any, Any, Any]) -> Coroutine[Any, Any, Any]:
    """Run ``coro`` now up to its first suspension (or its end) and return a coroutine that
    finishes it: awaiting the returned coroutine is awaiting ``coro``, its first step already
    taken (its result, its exception, its cancellation, as if awaited directly)."""
    try:
        first = coro.send(None)
    except StopIteration as stop:
        return _returned(stop.value)
    except (KeyboardInterrupt, SystemExit):
        raise  # at once, as a task's step re-raises them
    except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits, as a task would
        return _raised(exc)
    return _finish(coro, first)


async def _returned(value: Any) -> Any:
    return value


async def _raised(exc: BaseException) -> Any:
    raise exc


async def _finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _delegate(coro, yielded)


@types.coroutine
def _delegate(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    # what ``yield from coro`` does, from a suspension ``coro`` already reached: what the task
    # sends or throws in goes to ``coro``, what ``coro`` yields (the future it waits for) goes out
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - a cancellation, or the future's failure
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class InlineBodyRequest(aiohttp.ClientRequest):
    """aiohttp's request, whose body is written with its head (see the module docstring)."""

    def write_bytes(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, None]:
        return stepped(super().write_bytes(*args, **kwargs))


def _fits() -> bool:
    """aiohttp's ``write_bytes`` is still the coroutine method this module steps."""
    method = getattr(aiohttp.ClientRequest, "write_bytes", None)
    if method is None or not inspect.iscoroutinefunction(method):
        return False
    return list(inspect.signature(method).parameters)[:3] == ["self", "writer", "conn"]


#: the request class of the client's sessions
REQUEST_CLASS: type[aiohttp.ClientRequest] = (
    InlineBodyRequest if sys.version_info < (3, 12) and _fits() else aiohttp.ClientRequest)
