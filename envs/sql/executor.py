"""Async, crash-proof SQL execution for the sql env: a pool of sandboxed SQLite worker processes.

Agent-written SQL can hang in C code, blow up memory or try to write; running it in-process would let one bad
query stall the event loop or kill the trainer.  Each query instead goes to a long-lived ``_worker.py``
subprocess (stdlib only, started with ``python -I -S``, RLIMIT_AS-capped, own process group) over a JSON-lines
pipe.  A worker that misses its deadline or dies is killed and replaced; the query gets an agent-readable error.
Workers belong to the event loop that started them and end with it (``agentgym.shutdown.on_loop_end``).
"""

from __future__ import annotations

import asyncio
import atexit
import binascii
import itertools
import json
import logging
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.errors import InfrastructureError
from agentgym.processes import kill_group_now, stop_group
from agentgym.shutdown import on_loop_end

__all__ = ["QueryResult", "SqlExecutor", "shared_executor", "close_shared_executor", "WORKER_PATH"]

log = logging.getLogger(__name__)

WORKER_PATH = str(Path(__file__).with_name("_worker.py"))
_STREAM_LIMIT = 256 * 1024 * 1024  # max bytes of one response line (the worker enforces max_bytes well below this)


@dataclass(frozen=True)
class QueryResult:
    """The outcome of one query: columns and rows, or an agent-readable ``error`` (then rows are empty)."""

    columns: list[str]
    rows: list[tuple]  # values: int | float | str | bytes | None
    truncated: bool  # hit max_rows or max_bytes
    error: str | None
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        """True when the query ran without error (it may still be truncated)."""
        return self.error is None


def _fmt_seconds(t: float) -> str:
    return str(float(round(float(t), 3)))


def _decode_value(v: Any) -> Any:
    if type(v) is dict:
        return binascii.a2b_base64(v["$b"])
    return v


def _decode_rows(rows: list[list[Any]]) -> list[tuple]:
    out = []
    for row in rows:
        if any(type(v) is dict for v in row):
            out.append(tuple(_decode_value(v) for v in row))
        else:
            out.append(tuple(row))
    return out


def _error_result(msg: str, t0: float) -> QueryResult:
    return QueryResult(columns=[], rows=[], truncated=False, error=msg, elapsed_ms=(time.perf_counter() - t0) * 1e3)


class _WorkerDied(Exception):
    """The worker process exited (or its pipe broke) before answering."""


class _Worker:
    """One worker subprocess; at most one request in flight (guaranteed by the pool)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.ids = itertools.count(1)

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait at most ``timeout`` s for its response (asyncio.TimeoutError otherwise)."""
        rid = next(self.ids)
        payload["id"] = rid
        line = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        deadline = time.monotonic() + timeout
        try:
            stdin.write(line)
            await asyncio.wait_for(stdin.drain(), timeout)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _WorkerDied(str(exc)) from None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError
            try:
                raw = await asyncio.wait_for(stdout.readline(), remaining)
            except (ValueError, asyncio.LimitOverrunError) as exc:  # response line over _STREAM_LIMIT
                raise _WorkerDied(f"response too large: {exc}") from None
            if not raw:
                raise _WorkerDied("worker closed its stdout")
            try:
                resp = json.loads(raw)
            except ValueError:
                raise _WorkerDied("malformed response from worker") from None
            if resp.get("id") == rid or resp.get("id") is None:
                return resp
            # A stale answer (should not happen: cancelled requests kill the worker); skip it.

    def kill(self) -> None:
        """SIGKILL the worker's whole process group without waiting (synchronous, idempotent)."""
        if self.proc.returncode is None:
            kill_group_now(self.proc.pid)  # the worker leads its own group (start_new_session)

    def dispose(self) -> None:
        """Kill the worker and close its pipes now, so nothing is left for the event loop to clean up later."""
        self.kill()
        transport = getattr(self.proc, "_transport", None)
        if transport is not None:
            try:
                transport.close()
            except Exception:  # loop already closed: the process is dead, nothing else to release
                pass

    async def close(self, timeout: float = 2.0) -> None:
        """Ask the worker to exit (EOF on stdin), then SIGKILL its group; returns once no member of it is left."""
        if self.proc.returncode is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
                await asyncio.wait_for(self.proc.wait(), timeout)
            except (asyncio.TimeoutError, OSError):
                pass
        report = await stop_group(self.proc.pid, leader=self.proc, first_signal=None, kill_wait_s=timeout)
        if not report.clean:  # pragma: no cover - SIGKILL not delivered
            log.warning("sql worker group %s: pids %s survived SIGKILL", self.proc.pid, report.survivors)
        self.dispose()


_ALL_EXECUTORS: "weakref.WeakSet[SqlExecutor]" = weakref.WeakSet()


class SqlExecutor:
    """A pool of sandboxed SQLite worker processes; ``execute`` never blocks the event loop.

    Workers start lazily (one per concurrent query, up to ``workers``) in the event loop that first uses the
    executor, and are stopped when that loop ends (``asyncio.run`` returning, or ``agentgym.shutdown``'s
    ``run_loop_end``); the executor stays usable, and a later loop starts fresh workers. If it is used from
    a different loop while the old one still runs, the old workers are killed at once. Use
    ``async with SqlExecutor() as ex`` or ``await ex.aclose()`` to close it for good; leftover workers are
    also SIGKILLed at interpreter exit, and exit by themselves when their stdin closes.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        memory_limit_mb: int = 1024,
        python: str | None = None,
        heap_limit_mb: int | None = None,
        grace_s: float = 1.0,
        acquire_timeout_s: float = 300.0,
        spawn_timeout_s: float = 15.0,
    ) -> None:
        """``memory_limit_mb`` is each worker's RLIMIT_AS; SQLite's own heap is capped at ``heap_limit_mb``
        (default half of it).  A worker gets ``timeout_s + grace_s`` to answer before it is killed."""
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = int(workers)
        self.memory_limit_mb = int(memory_limit_mb)
        self.heap_limit_mb = int(heap_limit_mb if heap_limit_mb is not None else max(16, memory_limit_mb // 2))
        self.python = python or sys.executable
        self.grace_s = float(grace_s)
        self.acquire_timeout_s = float(acquire_timeout_s)
        self.spawn_timeout_s = float(spawn_timeout_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._idle: list[_Worker | None] = []
        self._live: set[_Worker] = set()
        self._closed = False
        self._dying: set[_Worker] = set()
        self._lock = threading.Lock()
        self._unregister_loop_end: Any = None
        _ALL_EXECUTORS.add(self)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        with self._lock:
            if self._loop is loop:
                return
            if self._loop is not None:  # used from a new event loop: old transports are unusable there
                self._kill_all_sync()
                self._unregister_loop_end()
            self._loop = loop
            self._sem = asyncio.Semaphore(self.workers)
            self._idle = [None] * self.workers  # None = slot without a running worker (spawned on demand)
            # Held strongly until the loop ends (or aclose): an executor dropped without aclose still has its
            # workers stopped inside the loop, instead of their pipes being collected after it closed.
            self._unregister_loop_end = on_loop_end(self.release)

    def _kill_all_sync(self) -> None:
        for w in list(self._live):
            w.dispose()
        self._live.clear()

    async def _spawn(self) -> _Worker:
        proc = await asyncio.wait_for(
            asyncio.create_subprocess_exec(
                self.python, "-I", "-S", WORKER_PATH,
                "--memory-limit-mb", str(self.memory_limit_mb),
                "--heap-limit-mb", str(self.heap_limit_mb),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # own process group: killpg takes down anything it started
                limit=_STREAM_LIMIT,
            ),
            self.spawn_timeout_s,
        )
        w = _Worker(proc)
        self._live.add(w)
        return w

    async def start(self) -> None:
        """Optionally pre-start all workers now (otherwise they start on first use)."""
        self._check_open()
        self._bind()
        missing = [i for i, w in enumerate(self._idle) if w is None or not w.alive]
        spawned = await asyncio.gather(*(self._spawn() for _ in missing))
        for i, w in zip(missing, spawned):
            self._idle[i] = w

    async def aclose(self) -> None:
        """Stop all workers (gracefully, then SIGKILL); the executor cannot be used afterwards."""
        self._closed = True
        workers = list(self._live)
        self._live.clear()
        self._idle = []
        try:
            asyncio.get_running_loop()
            same_loop = self._loop is asyncio.get_running_loop()
        except RuntimeError:
            same_loop = False
        dying, self._dying = list(self._dying), set()
        if self._unregister_loop_end is not None:
            self._unregister_loop_end()
        if same_loop:
            await asyncio.gather(*(w.close() for w in workers + dying), return_exceptions=True)
        else:
            for w in workers:
                w.dispose()

    async def release(self) -> None:
        """Stop the running loop's workers and forget the loop; the executor stays open for other loops."""
        if self._loop is not asyncio.get_running_loop():
            return
        workers = list(self._live) + list(self._dying)
        self._live.clear()
        self._dying.clear()
        self._idle = []
        self._loop = self._sem = None
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)

    def close_sync(self) -> None:
        """SIGKILL all workers without awaiting (for atexit / foreign-loop shutdown)."""
        self._closed = True
        self._kill_all_sync()
        self._idle = []

    async def __aenter__(self) -> "SqlExecutor":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("SqlExecutor is closed")

    # -- requests ----------------------------------------------------------------------------------------

    async def _run(self, payload: dict[str, Any], timeout_s: float) -> QueryResult:
        t0 = time.perf_counter()
        self._check_open()
        self._bind()
        sem = self._sem
        assert sem is not None
        try:
            await asyncio.wait_for(sem.acquire(), self.acquire_timeout_s)
        except asyncio.TimeoutError:
            raise InfrastructureError(
                f"the SQL executor is overloaded: no worker became free within {self.acquire_timeout_s:g} s")
        slot: _Worker | None = self._idle.pop() if self._idle else None
        try:
            for attempt in range(2):
                if slot is not None and not slot.alive:  # died while idle (e.g. killed externally)
                    self._discard(slot)
                    slot = None
                if slot is None:
                    if self._closed:
                        raise InfrastructureError("the SQL executor was closed")
                    try:
                        slot = await self._spawn()
                    except (OSError, asyncio.TimeoutError) as exc:
                        log.error("cannot start sql worker: %r", exc)
                        raise InfrastructureError(f"cannot start the SQL worker ({exc!r})") from exc
                try:
                    resp = await slot.request(dict(payload), timeout_s + self.grace_s)
                except asyncio.TimeoutError:
                    self._discard(slot)
                    slot = None
                    return _error_result(f"query exceeded the {_fmt_seconds(timeout_s)} s deadline", t0)
                except _WorkerDied as exc:
                    # Retry once on a fresh worker: the old one may have died before our query (external kill).
                    log.info("sql worker died (%s); attempt %d", exc, attempt + 1)
                    self._discard(slot)
                    slot = None
                    continue
                return QueryResult(
                    columns=list(resp.get("columns") or []),
                    rows=_decode_rows(resp.get("rows") or []),
                    truncated=bool(resp.get("truncated")),
                    error=resp.get("error"),
                    elapsed_ms=(time.perf_counter() - t0) * 1e3,
                )
            return _error_result("query crashed the SQL worker (it most likely exceeded the memory limit)", t0)
        except BaseException:  # cancelled mid-request: the worker's answer would desynchronise the pipe
            if slot is not None:
                self._discard(slot)
                slot = None
            raise
        finally:
            if self._sem is sem and not self._closed:
                self._idle.append(slot)
            elif slot is not None:
                slot.dispose()
            sem.release()

    def _discard(self, w: _Worker) -> None:
        w.dispose()  # SIGKILL the group and close the pipes; asyncio's child watcher reaps the process
        self._live.discard(w)
        self._dying.add(w)  # aclose() waits for these so no process outlives the loop unreaped
        if len(self._dying) > 64:
            self._dying = {d for d in self._dying if d.alive}

    async def execute(
        self,
        db_path: str | os.PathLike[str],
        sql: str,
        *,
        timeout_s: float = 2.0,
        max_rows: int = 10_000,
        max_bytes: int = 2_000_000,
    ) -> QueryResult:
        """Run one read-only SQL statement against the SQLite file ``db_path`` in a sandboxed worker.

        Never raises for query problems: errors (write attempts, deadline, memory, syntax, ...) come back as
        ``QueryResult.error``.  Rows beyond ``max_rows`` / ``max_bytes`` are dropped and ``truncated`` is set.
        Raises ``InfrastructureError`` when the executor itself cannot serve (closed, overloaded, no worker).
        """
        payload = {
            "op": "execute",
            "db": os.path.abspath(os.fspath(db_path)),
            "sql": sql,
            "timeout_s": float(timeout_s),
            "max_rows": int(max_rows),
            "max_bytes": int(max_bytes),
        }
        return await self._run(payload, float(timeout_s))

    async def explain(self, db_path: str | os.PathLike[str], sql: str, *, timeout_s: float = 2.0) -> str | None:
        """Compile ``sql`` with ``EXPLAIN`` without running it: None if syntax and names are valid, else the error."""
        payload = {"op": "explain", "db": os.path.abspath(os.fspath(db_path)), "sql": sql, "timeout_s": float(timeout_s)}
        res = await self._run(payload, float(timeout_s))
        return res.error

    async def ping(self, *, timeout_s: float = 5.0) -> float:
        """Round-trip a no-op request through a worker; returns milliseconds (raises RuntimeError on failure)."""
        res = await self._run({"op": "ping"}, timeout_s)
        if res.error:
            raise RuntimeError(res.error)
        return res.elapsed_ms

    def worker_pids(self) -> list[int]:
        """PIDs of the currently running workers (for tests and monitoring)."""
        return [w.proc.pid for w in self._live if w.alive]


# ------------------------------------------------------------------------------------------------------------
# One shared executor per event loop.

_SHARED: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SqlExecutor]" = weakref.WeakKeyDictionary()
_SHARED_DEFAULT: list[SqlExecutor] = []  # used when called outside a running loop
_SHARED_LOCK = threading.Lock()


def shared_executor() -> SqlExecutor:
    """The process's shared executor for the running event loop (created lazily; cheap to call from many envs).

    Closing: ``await close_shared_executor()`` shuts it down explicitly; otherwise its workers are SIGKILLed by
    an atexit hook (and exit on their own when the parent's pipes close).  Executors of event loops that have
    been closed are killed the next time this function is called.  Called outside a running loop, it returns
    a process-wide default executor that binds to whichever loop first uses it.
    """
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    with _SHARED_LOCK:
        for old_loop, ex in list(_SHARED.items()):
            if old_loop.is_closed():
                ex.close_sync()
                _SHARED.pop(old_loop, None)
        if loop is None:
            if not _SHARED_DEFAULT or _SHARED_DEFAULT[0]._closed:
                _SHARED_DEFAULT[:] = [SqlExecutor()]
            return _SHARED_DEFAULT[0]
        ex = _SHARED.get(loop)
        if ex is None or ex._closed:
            ex = SqlExecutor()
            _SHARED[loop] = ex
        return ex


async def close_shared_executor() -> None:
    """Close the running loop's shared executor (if any)."""
    loop = asyncio.get_running_loop()
    with _SHARED_LOCK:
        ex = _SHARED.pop(loop, None)
    if ex is not None:
        await ex.aclose()


@atexit.register
def _kill_all_workers_at_exit() -> None:
    for ex in list(_ALL_EXECUTORS):
        try:
            ex.close_sync()
        except Exception:  # pragma: no cover
            pass
