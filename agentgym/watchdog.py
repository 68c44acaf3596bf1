"""Watchdogs for tool handlers: timeouts that fire even when a handler blocks, and reports of who blocked the loop.

``asyncio.timeout`` only fires when the event loop gets control back. A handler that blocks the loop
(``time.sleep`` or a long computation inside ``async def``) defeats it and stalls every concurrent episode
on that loop. So handlers run in one of three places:

- ``"loop"`` (``async def`` handlers, the default): on the event loop; each synchronous stretch of the
  coroutine is timed (``run_metered``), and a ``LoopLagMonitor`` thread logs, while it happens, which tool
  is holding the loop;
- ``"thread"`` (plain ``def`` handlers, the default for them): in a daemon worker thread; the timeout fires
  on time and the episode goes on, but the thread itself runs to its end (Python cannot kill a thread);
- ``"process"`` (opt-in, for untrusted or CPU-heavy code): in a forked child process with its own process
  group, killed with SIGKILL when the timeout fires, so the work really stops.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agentgym.errors import InfrastructureError, ToolError

RunsIn = Literal["loop", "thread", "process"]
RUNS_IN: tuple[str, ...] = ("loop", "thread", "process")

log = logging.getLogger("agentgym.watchdog")


# --- measuring how long a coroutine holds the loop -------------------------------------------------

@dataclass
class BlockMeter:
    """The longest time one synchronous stretch of a coroutine held the event loop, in seconds."""

    longest_s: float = 0.0


class _Metered:
    """Awaitable that drives a coroutine step by step and times each step (each step runs without yielding)."""

    def __init__(self, coro: Coroutine[Any, Any, Any], meter: BlockMeter):
        self._coro = coro
        self._meter = meter

    def __await__(self) -> Generator[Any, Any, Any]:
        send_value: Any = None
        throw: BaseException | None = None
        while True:
            start = time.perf_counter()
            try:
                yielded = self._coro.throw(throw) if throw is not None else self._coro.send(send_value)
            except StopIteration as stop:
                return stop.value
            finally:
                self._meter.longest_s = max(self._meter.longest_s, time.perf_counter() - start)
            try:
                send_value, throw = (yield yielded), None
            except BaseException as exc:  # cancellation and timeouts are passed into the coroutine
                send_value, throw = None, exc


async def run_metered(coro: Coroutine[Any, Any, Any], meter: BlockMeter) -> Any:
    """Await `coro`, recording in `meter` the longest stretch it ran without yielding to the loop."""
    return await _Metered(coro, meter)


# --- the live loop-lag monitor ---------------------------------------------------------------------

class LoopLagMonitor:
    """A daemon thread that notices when an event loop stops answering and logs which tool holds it.

    The loop bumps a heartbeat every ``interval_s``; when the heartbeat is older than ``warn_after_s`` the
    thread logs a warning naming the tool (``running(...)``) that the loop was running at the time.
    ``blocks`` keeps (tool, seconds) of the stalls it saw, for checkers and tests.
    """

    _monitors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLagMonitor] = weakref.WeakKeyDictionary()
    _lock = threading.Lock()

    def __init__(self, loop: asyncio.AbstractEventLoop, *, interval_s: float = 0.05, warn_after_s: float = 1.0):
        self._loop_ref = weakref.ref(loop)
        self.interval_s = interval_s
        self.warn_after_s = warn_after_s
        self._beat = time.monotonic()
        self._current: dict[int, str] = {}   # id of the running handler -> tool name
        self.blocks: list[tuple[str, float]] = []
        self._stop = threading.Event()
        loop.call_soon_threadsafe(self._tick)
        self._thread = threading.Thread(target=self._watch, name="agentgym-loop-lag", daemon=True)
        self._thread.start()

    @classmethod
    def for_running_loop(cls) -> LoopLagMonitor:
        """The monitor of the running loop, started on first use (one per loop)."""
        loop = asyncio.get_running_loop()
        with cls._lock:
            monitor = cls._monitors.get(loop)
            if monitor is None:
                monitor = cls._monitors[loop] = cls(loop)
            return monitor

    def _tick(self) -> None:
        self._beat = time.monotonic()
        loop = self._loop_ref()
        if loop is not None and not loop.is_closed() and not self._stop.is_set():
            loop.call_later(self.interval_s, self._tick)

    def running(self, tool: str) -> _Running:
        """Context manager marking `tool` as running on this loop (so a stall can be blamed on it)."""
        return _Running(self, tool)

    def _watch(self) -> None:
        reported: float | None = None  # heartbeat of the stall already reported
        while not self._stop.wait(self.interval_s):
            loop = self._loop_ref()
            if loop is None or loop.is_closed():
                return
            del loop
            beat = self._beat
            lag = time.monotonic() - beat
            if lag < self.warn_after_s or reported == beat:
                continue
            tools = sorted(set(self._current.values()))
            if not tools:
                continue
            reported = beat
            self.blocks.append((", ".join(tools), lag))
            log.warning("the event loop has been blocked for %.1f s by tool %s: blocking code in an async handler "
                        "stalls every episode on this loop and defeats its timeout; make the handler a plain def "
                        "(it then runs in a worker thread) or use @tool(..., isolate='process')", lag, ", ".join(tools))

    def stop(self) -> None:
        """Stop the watcher thread."""
        self._stop.set()


class _Running:
    def __init__(self, monitor: LoopLagMonitor, tool: str):
        self._monitor, self._tool, self._key = monitor, tool, 0

    def __enter__(self) -> None:
        self._key = id(self)
        self._monitor._current[self._key] = self._tool

    def __exit__(self, *exc: object) -> None:
        self._monitor._current.pop(self._key, None)


# --- running a handler off the loop ----------------------------------------------------------------

def _settle(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    def apply() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(apply)
    except RuntimeError:  # the loop closed while the thread ran: nobody waits for the result any more
        pass


def run_in_thread(fn: Callable[..., Any], kwargs: Mapping[str, Any], *, name: str = "tool") -> Awaitable[Any]:
    """Run `fn(**kwargs)` (a plain function or an ``async def``) in a daemon thread; await its result.

    A daemon thread rather than the loop's default executor: a handler stuck forever must not stop the
    event loop from shutting down. Cancelling the await (a timeout) abandons the thread, which runs on.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def work() -> None:
        try:
            result = asyncio.run(fn(**kwargs)) if inspect.iscoroutinefunction(fn) else fn(**kwargs)
        except BaseException as exc:  # delivered to the awaiting coroutine
            _settle(loop, future, None, exc)
        else:
            _settle(loop, future, result, None)

    threading.Thread(target=work, name=f"agentgym-tool-{name}", daemon=True).start()
    return future


def _child_main(fn: Callable[..., Any], kwargs: Mapping[str, Any], conn: Any) -> None:
    """Body of a forked tool process: run the handler and send back ("ok", value) or the error."""
    os.setpgrp()  # its own process group, so a kill also takes anything the handler started
    asyncio.events._set_running_loop(None)  # the forked copy of the parent's loop is not ours to run
    try:
        result = asyncio.run(fn(**kwargs)) if inspect.iscoroutinefunction(fn) else fn(**kwargs)
        message: tuple[Any, ...] = ("ok", result)
    except ToolError as exc:
        message = ("tool_error", str(exc))
    except BaseException as exc:
        message = ("error", type(exc).__name__, f"{exc}"[:500], traceback.format_exc()[-2000:])
    try:
        conn.send(message)
    except Exception as exc:  # e.g. an unpicklable return value
        conn.send(("error", type(exc).__name__, f"the tool's result could not be sent back: {exc}"[:500], ""))
    finally:
        conn.close()


async def run_in_process(fn: Callable[..., Any], kwargs: Mapping[str, Any], *, name: str = "tool") -> Any:
    """Run `fn(**kwargs)` in a forked child process and return its (picklable) result.

    The child sees a copy of the parent's memory (the env and its state as they are now); what it changes
    there is lost. Cancelling the await (a timeout) kills the child's whole process group with SIGKILL.
    A ``ToolError`` raised in the child is raised here; any other failure becomes an InfrastructureError.
    """
    import multiprocessing

    if not hasattr(os, "fork"):
        raise InfrastructureError(f"tool {name} asks for isolate='process', which needs os.fork (POSIX)")
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(fn, dict(kwargs), sender), name=f"agentgym-tool-{name}", daemon=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded process forks": the child runs no threads
        proc.start()
    sender.close()
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(receiver.fileno(), wake)
    loop.add_reader(proc.sentinel, wake)
    try:
        await ready
        if not receiver.poll():
            proc.join(1)
            raise InfrastructureError(f"tool {name}'s process died without an answer (exit code {proc.exitcode})")
        message = receiver.recv()
    finally:
        loop.remove_reader(receiver.fileno())
        loop.remove_reader(proc.sentinel)
        if proc.is_alive():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        proc.join(1)
        receiver.close()
    status = message[0]
    if status == "ok":
        return message[1]
    if status == "tool_error":
        raise ToolError(message[1])
    raise InfrastructureError(f"tool {name} failed in its process: {message[1]}: {message[2]}")
