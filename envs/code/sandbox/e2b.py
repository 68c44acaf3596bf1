"""The E2B backend: the real ``e2b-code-interpreter`` client (``AsyncSandbox``), adapted to agentgym's Sandbox API.

Used when asked for (``sandbox="e2b"``) or, with ``sandbox="auto"``, when ``E2B_API_KEY`` is set. Connection
settings (``api_key``, ``domain``, ``api_url``, ``sandbox_url``, ``request_timeout``, ``template``) pass through
to ``AsyncSandbox.create``, so a self-hosted E2B (or a loopback stand-in in tests) works the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agentgym.envs.code.sandbox.base import (
    Execution,
    ExecutionError,
    Files,
    Logs,
    Result,
    Sandbox,
    SandboxError,
    SandboxLimits,
)
from agentgym.extras import require

CONNECTION_KEYS = ("api_key", "domain", "api_url", "sandbox_url", "request_timeout", "template", "debug")
SANDBOX_LIFETIME_S = 600
GRADER_PATH = "/home/user/_agentgym_grader.py"


class _E2BFiles(Files):
    def __init__(self, inner: Any):
        self._inner = inner

    async def write(self, path: str, data: str | bytes) -> None:
        await self._inner.files.write(path, data)

    async def read(self, path: str, format: str = "text") -> str | bytes:
        return await self._inner.files.read(path, format=format)


class E2BSandbox(Sandbox):
    """An E2B cloud (or self-hosted) code-interpreter sandbox (``backend == "e2b"``)."""

    backend = "e2b"
    isolation = "vm"  # each E2B sandbox is a microVM of its own
    connection: dict[str, Any] = {}  # class-level defaults for create() (tests point this at a stand-in)

    def __init__(self, inner: Any, limits: SandboxLimits):
        self._inner = inner
        self.limits = limits
        self.files = _E2BFiles(inner)
        self._alive = True

    @classmethod
    async def create(cls, *, limits: SandboxLimits | None = None, **kwargs: Any) -> E2BSandbox:
        module = require("e2b_code_interpreter", "e2b")
        options = {**cls.connection, **{k: v for k, v in kwargs.items() if k in CONNECTION_KEYS}}
        try:
            inner = await asyncio.wait_for(module.AsyncSandbox.create(timeout=SANDBOX_LIFETIME_S, **options),
                                           timeout=(limits or SandboxLimits()).start_timeout_s + 20)
        except Exception as exc:  # auth, network, quota: the service's failure, not the agent's
            raise SandboxError(f"could not create an E2B sandbox: {type(exc).__name__}: {exc}") from exc
        return cls(inner, limits or SandboxLimits())

    async def run_code(self, code: str, *, timeout: float = 30.0) -> Execution:
        if not self._alive:
            raise SandboxError("the sandbox is not running")
        try:
            ex = await self._inner.run_code(code, timeout=timeout)
        except Exception as exc:
            name = type(exc).__name__
            if "Timeout" in name:
                return Execution(error=ExecutionError("TimeoutError", f"execution exceeded the {timeout:g} s timeout", ""))
            raise SandboxError(f"E2B run_code failed: {name}: {exc}") from exc
        stdout, stderr = "".join(ex.logs.stdout), "".join(ex.logs.stderr)
        cap = self.limits.output_chars
        dropped = max(0, len(stdout) - cap) + max(0, len(stderr) - cap)
        return Execution(results=[Result(r.text, bool(r.is_main_result)) for r in ex.results],
                         logs=Logs([stdout[:cap]] if stdout else [], [stderr[:cap]] if stderr else []),
                         error=ExecutionError(ex.error.name, ex.error.value, ex.error.traceback) if ex.error else None,
                         execution_count=ex.execution_count, truncated_chars=dropped)

    def is_running(self) -> bool:
        return self._alive

    async def kill(self) -> None:
        if not self._alive:
            return
        self._alive = False
        try:
            await asyncio.wait_for(self._inner.kill(), timeout=30)
        except Exception:  # the sandbox times out on the service's side anyway
            pass

    @classmethod
    async def run_program(cls, source, stdin, *, timeout, stop, limits=None) -> list[str]:
        """A fresh E2B sandbox runs the program as a child process of its kernel; its stdout comes back."""
        async with await cls.create(limits=limits) as sandbox:
            await sandbox.files.write(GRADER_PATH, source)
            await sandbox.files.write(GRADER_PATH + ".in", stdin)
            driver = ("import subprocess, sys\n"
                      f"with open({GRADER_PATH + '.in'!r}) as f:\n"
                      f"    r = subprocess.run([sys.executable, {GRADER_PATH!r}], stdin=f, capture_output=True, "
                      f"text=True, timeout={timeout!r})\n"
                      "print(r.stdout, end='')\n")
            execution = await sandbox.run_code(driver, timeout=timeout + 5)
        lines = "".join(execution.logs.stdout).splitlines()
        for i, line in enumerate(lines):
            if stop(line):
                return lines[: i + 1]
        return lines
