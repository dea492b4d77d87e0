"""asyncio helpers: concurrent work that never outlives the caller who waits for it.

``asyncio.gather`` raises the first failure at once and leaves the other awaitables running: a
refresh whose catalog read fails would return its error while the reads of client packages it
started go on, after the command has closed its client (a new connection pool opened for them
and never closed) and until the event loop ends.  :func:`gather` cancels them and waits for them
to end before it raises, so nothing a failed step started is still in flight when the caller
moves on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def gather(*aws: Awaitable[Any]) -> list[Any]:
    """The results of ``aws`` in order, as ``asyncio.gather``; when one raises (or the caller is
    cancelled), the others are cancelled and awaited before the exception propagates."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
