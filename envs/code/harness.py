"""The trusted harness for assert-style tests: persistent sandboxed workers that run only the dataset's own code.

HumanEval- and MBPP-style tests are code (asserts, loops, helpers), so they cannot be turned into fixed expected
values. They run here instead, in sandboxed interpreters the submission never runs in (``_harness.py``): once per
task against the reference solution, to record the plain-data calls the tests make (cached in memory and on disk,
keyed by a hash of everything that shapes them), then once per submission, replaying those calls with the
answers the submission's own interpreter gave (``grading.candidate_answers``). The workers are owned by a private
event-loop thread, so any caller's loop can use them; idle ones are stopped after a few seconds.
"""

from __future__ import annotations

import ast
import asyncio
import atexit
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.cache import cache_dir
from agentgym.envs.code.sandbox.backends import backend_class
from agentgym.envs.code.sandbox.base import Sandbox, SandboxLimits

logger = logging.getLogger("agentgym.envs.code.harness")
_HERE = Path(__file__).parent
PLAINDATA_SOURCE = (_HERE / "_plaindata.py").read_text()
HARNESS_LIMITS = SandboxLimits(cpu_seconds=3600, output_chars=16 << 20)
WORKERS_PER_BACKEND = 2      # one per core: a replay is CPU-bound and short
JOBS_PER_WORKER = 400        # then a fresh interpreter: dataset code may leave module state behind
IDLE_S = 3.0                 # an idle worker is stopped after this long
JOB_TIMEOUT_S = 120.0


def with_plaindata(source: str) -> str:
    """A sandbox program's source with ``_plaindata`` made importable in front of it (the sandbox has no package)."""
    return ("import sys as _s, types as _t\n_m = _t.ModuleType('_plaindata')\n"
            f"exec({PLAINDATA_SOURCE!r}, _m.__dict__)\n_s.modules['_plaindata'] = _m\ndel _s, _t, _m\n" + source)


HARNESS_SOURCE = with_plaindata((_HERE / "_harness.py").read_text())
HARNESS_VERSION = hashlib.sha256(HARNESS_SOURCE.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RecordedTest:
    """One assert-style test as the reference solution ran it: the calls it made and the reference's answers, or
    why the test cannot be graded outside the submission's process (then it is failed for every submission)."""

    calls: list[Any]
    answers: list[Any]
    unsafe: str | None = None
    batch: bool = False          # its arguments never depend on earlier answers: may be sent all at once


def _recorded(rows: Any) -> list[RecordedTest]:
    if not isinstance(rows, list):
        raise TypeError("a recording is a list")
    return [RecordedTest(list(r["calls"]), list(r["answers"]), r["unsafe"], r.get("batch") is True) for r in rows]


class HarnessFailed(RuntimeError):
    """The harness could not finish a job (it ran out of time or died); the job's tests count as failed."""


class _Worker:
    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.jobs = 0
        self.last_used = time.monotonic()


class HarnessService:
    """Sandboxed harness workers per backend, driven from a private event loop in a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[str, list[_Worker]] = {}
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._recordings: dict[str, asyncio.Task[list[RecordedTest]]] = {}
        self._reaper: asyncio.Task[None] | None = None

    def _service_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._pid != os.getpid():  # a forked child has the loop but not its thread: start over
                self._reset()
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="agentgym-code-harness", daemon=True).start()
                self._loop = loop
                atexit.register(self.close)
            return self._loop

    async def _call(self, coro: Any) -> Any:
        """Run a coroutine on the service loop and await it from the caller's loop (cancellation propagates)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._service_loop()))

    async def replay(self, backend: str, job: dict[str, Any]) -> list[dict[str, Any]]:
        """Per test {"passed", "error"}: the job's tests replayed with the candidate's answers."""
        return await self._call(self._run(backend, {**job, "op": "replay"}))

    async def recording(self, backend: str, job: dict[str, Any]) -> list[RecordedTest]:
        """The tests' calls as the reference solution makes them (computed once per process, cached on disk)."""
        key = hashlib.sha256(json.dumps([HARNESS_VERSION, job], sort_keys=True).encode()).hexdigest()
        return await self._call(self._recording(backend, key, {**job, "op": "record"}))

    # --- on the service loop ------------------------------------------------------------------------

    async def _recording(self, backend: str, key: str, job: dict[str, Any]) -> list[RecordedTest]:
        task = self._recordings.get(key)
        if task is None or (task.done() and task.exception() is not None):  # a failed recording is retried
            task = asyncio.get_running_loop().create_task(self._record(backend, key, job))
            self._recordings[key] = task
        return await asyncio.shield(task)  # a cancelled caller does not cancel the recording others wait for

    async def _record(self, backend: str, key: str, job: dict[str, Any]) -> list[RecordedTest]:
        path = cache_dir("code-recordings") / f"{key}.json"
        try:
            return _recorded(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        rows = await self._run(backend, job)
        unsafe = [i for i, r in enumerate(rows) if r.get("unsafe")]
        if unsafe:  # said once, when the recording is made; every grade also names it in the test's verdict
            logger.warning("%d of %d tests cannot be graded safely (e.g. test %d: %s); they fail for every "
                           "submission", len(unsafe), len(rows), unsafe[0] + 1, rows[unsafe[0]]["unsafe"])
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(rows))
        os.replace(tmp, path)
        return _recorded(rows)

    async def _run(self, backend: str, job: dict[str, Any]) -> list[dict[str, Any]]:
        """One job on a worker; a worker that fails is replaced and the job retried once, then HarnessFailed."""
        gate = self._gates.setdefault(backend, asyncio.Semaphore(WORKERS_PER_BACKEND))
        code = f"_agentgym_harness({json.dumps(job)!r})"
        timeout = min(JOB_TIMEOUT_S, 10.0 + len(job["tests"]) * (float(job.get("timeout", 3.0)) * 2 + 0.5))
        problem = ""
        async with gate:
            for _ in range(2):
                idle = self._idle.setdefault(backend, [])
                worker = idle.pop() if idle else await self._start(backend)
                try:
                    execution = await worker.sandbox.run_code(code, timeout=timeout)
                except BaseException:
                    await worker.sandbox.kill()
                    raise
                try:
                    if execution.error is not None:
                        raise ValueError(f"{execution.error.name}: {execution.error.value}"[:300])
                    answer = json.loads(ast.literal_eval(execution.text or ""))
                    tests = answer["tests"]
                    if answer.get("op") != job["op"] or len(tests) != len(job["tests"]):
                        raise ValueError("an answer of the wrong shape")
                except (ValueError, SyntaxError, TypeError, KeyError) as exc:
                    problem = str(exc)
                    await worker.sandbox.kill()
                    continue
                worker.jobs += 1
                worker.last_used = time.monotonic()
                if worker.jobs < JOBS_PER_WORKER and worker.sandbox.is_running():
                    idle.append(worker)
                    self._start_reaper()
                else:
                    await worker.sandbox.kill()
                return tests
        raise HarnessFailed(f"the test harness could not finish: {problem}")

    async def _start(self, backend: str) -> _Worker:
        sandbox = await backend_class(backend).create(limits=HARNESS_LIMITS)
        try:
            execution = await sandbox.run_code(HARNESS_SOURCE, timeout=30.0)
        except BaseException:
            await sandbox.kill()
            raise
        if execution.error is not None:
            await sandbox.kill()
            raise HarnessFailed(f"the test harness failed to load: {execution.error.value}")
        return _Worker(sandbox)

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Stop workers idle for IDLE_S; end once none is left."""
        while any(self._idle.values()):
            await asyncio.sleep(IDLE_S / 3)
            now = time.monotonic()
            for workers in self._idle.values():
                for worker in [w for w in workers if now - w.last_used >= IDLE_S]:
                    workers.remove(worker)
                    await worker.sandbox.kill()

    async def _close(self) -> None:
        for workers in self._idle.values():
            while workers:
                await workers.pop().sandbox.kill()

    async def aclose(self) -> None:
        """Stop every idle worker now (busy ones finish their job first); later jobs start fresh ones."""
        if self._loop is not None and self._pid == os.getpid():
            await self._call(self._close())

    def close(self) -> None:
        """Stop every idle worker now, from synchronous code (also run at interpreter exit)."""
        loop = self._loop
        if loop is not None and loop.is_running() and self._pid == os.getpid():
            try:
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
            except Exception:  # noqa: BLE001 - at exit, a worker that will not die goes with the process anyway
                pass


HARNESS = HarnessService()
