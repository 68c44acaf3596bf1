"""Cleanup at the end of an event loop: parts that own loop-bound resources register it, the loop's end runs it.

Some resources belong to the event loop that made them (subprocess pipes, servers, sockets): they must
be released while that loop still runs, since afterwards nothing can await their exit (and asyncio logs
"Loop ... that handles pid ... is closed" when such a child exits later). The core knows no env, so an
env (or any other part) registers its cleanup with ``on_loop_end`` and whoever ends the loop runs it:

* ``asyncio.run``, ``asyncio.Runner`` and any loop shut down with ``loop.shutdown_asyncgens()`` (as
  asyncio documents) run the callbacks by themselves: each loop's callbacks hang off an async generator
  that the loop closes, inside the still-running loop, when it shuts down;
* an entry point that owns its loop may run them earlier, at a point of its choosing, with
  ``await run_loop_end()``; ``run(main)`` is ``asyncio.run`` that does so right after `main`.

Callbacks run last-registered first (like ``atexit``), each once; one that fails is logged and the
others still run.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["CLEANUP_TIMEOUT_S", "on_loop_end", "run", "run_loop_end"]

log = logging.getLogger(__name__)

CLEANUP_TIMEOUT_S = 30.0  # the longest one async cleanup may take before the next one runs

Cleanup = Callable[[], Awaitable[None] | None]
T = TypeVar("T")


class _LoopCleanups:
    """The cleanups registered for one loop, and the async generator that the loop's shutdown closes."""

    def __init__(self) -> None:
        self.callbacks: list[Cleanup] = []
        self.sentinel: AsyncGenerator[None, None] | None = None

    async def run(self) -> None:
        while self.callbacks:  # a cleanup may register another one: it runs too
            callback = self.callbacks.pop()
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, CLEANUP_TIMEOUT_S)
            except Exception:  # one broken cleanup must not keep the others from running
                log.exception("loop-end cleanup %r failed", callback)


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopCleanups] = weakref.WeakKeyDictionary()


async def _until_shutdown(cleanups: _LoopCleanups) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:  # reached when the loop's shutdown_asyncgens() closes this generator
        await cleanups.run()


def _start(agen: AsyncGenerator[None, None]) -> None:
    """Advance `agen` to its first ``yield`` without awaiting: its first step registers it with the running loop."""
    step = agen.__anext__()  # the loop's first-iteration hook adds the generator to the loop's shutdown list
    try:
        step.send(None)
    except StopIteration:  # the generator yielded: it now waits for the loop to close it
        return
    raise RuntimeError("the loop-end sentinel awaited before its first yield")  # pragma: no cover


def on_loop_end(callback: Cleanup) -> Callable[[], None]:
    """Run `callback` (sync, or returning an awaitable) before the running event loop ends; returns an unregister.

    Raises RuntimeError when no event loop is running (there is no loop whose end could run it).
    """
    loop = asyncio.get_running_loop()
    cleanups = _LOOPS.get(loop)
    if cleanups is None:
        cleanups = _LOOPS[loop] = _LoopCleanups()
        cleanups.sentinel = _until_shutdown(cleanups)
        _start(cleanups.sentinel)
    cleanups.callbacks.append(callback)

    def unregister() -> None:
        if callback in cleanups.callbacks:
            cleanups.callbacks.remove(callback)

    return unregister


async def run_loop_end() -> None:
    """Run the running loop's registered cleanups now (each once); later registrations still run at the loop's end."""
    cleanups = _LOOPS.get(asyncio.get_running_loop())
    if cleanups is not None:
        await cleanups.run()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` that runs the loop-end cleanups as soon as `main` finishes (or fails)."""
    async def wrapped() -> T:
        try:
            return await main
        finally:
            await run_loop_end()

    return asyncio.run(wrapped())
