"""The sandbox API every backend implements, shaped like E2B's code interpreter (``run_code`` -> ``Execution``).

Users who know ``e2b-code-interpreter`` find the same names: ``await Sandbox.create()``, ``run_code(code,
timeout=...)`` returning ``Execution(results, logs(stdout, stderr), error(name, value, traceback),
execution_count)``, ``files.write/read``, ``kill()``, and ``async with`` for cleanup. State persists across
``run_code`` calls of one sandbox, like a notebook kernel.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from agentgym.errors import InfrastructureError


class SandboxError(InfrastructureError):
    """The sandbox itself failed (could not start, died, broke its protocol); not the submitted code's fault."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandbox process tree: per-sandbox caps, per-process rlimits, a wall clock, an output cap.

    Per-sandbox caps (``processes``, ``total_memory_bytes``) hold for the whole tree when the host gives each
    sandbox a cgroup or a uid of its own (see ``confinement.py``); otherwise only the per-process rlimits hold.
    """

    memory_bytes: int = 1 << 30          # RLIMIT_AS per process
    total_memory_bytes: int = 1 << 30    # all of the sandbox's processes and tmpfs pages together (cgroup memory cap)
    cpu_seconds: int = 120               # RLIMIT_CPU per process (cumulative over the sandbox's life)
    file_bytes: int = 16 << 20           # RLIMIT_FSIZE: the largest file a process may write
    open_files: int = 256                # RLIMIT_NOFILE
    processes: int = 64                  # processes of the sandbox (cgroup pids.max, or RLIMIT_NPROC of its own uid)
    tmpfs_bytes: int = 64 << 20          # size of the private work dir and /tmp (bubblewrap backend)
    shm_bytes: int = 64 << 20            # size of /dev/shm (bubblewrap backend; the rest of /dev is read-only)
    output_chars: int = 32_000           # stdout/stderr kept per stream per execution; the rest is counted, not kept
    start_timeout_s: float = 10.0        # wall clock for the sandbox to come up
    kill_grace_s: float = 1.0            # after a soft timeout, how long before the whole process group is killed
    uid: int = 65534                     # the uid/gid code sees inside the sandbox (and runs as on the host when
    gid: int = 65534                     # started by root without a uid pool)
    uid_pool_base: int = 0x70000000      # as root, each live sandbox runs as its own host uid from this range
    uid_pool_size: int = 4096            # (0: all sandboxes run as `uid`)


@dataclass
class ExecutionError:
    """An exception raised by the executed code (or a timeout), as E2B reports it."""

    name: str
    value: str
    traceback: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "traceback": self.traceback}


@dataclass
class Result:
    """A rich result of an execution; here only the value of the last expression, as ``text`` (its repr)."""

    text: str | None = None
    is_main_result: bool = True


@dataclass
class Logs:
    """Everything printed while the code ran, as chunks (E2B streams; the local backend sends one chunk)."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


@dataclass
class Execution:
    """The outcome of one ``run_code`` call."""

    results: list[Result] = field(default_factory=list)
    logs: Logs = field(default_factory=Logs)
    error: ExecutionError | None = None
    execution_count: int | None = None
    truncated_chars: int = 0            # output characters dropped by the output cap (not in E2B's model)

    @property
    def text(self) -> str | None:
        """The main result's text (the last expression's repr), like E2B's ``Execution.text``."""
        return next((r.text for r in self.results if r.is_main_result), None)

    def to_json(self) -> dict[str, Any]:
        return {"results": [{"text": r.text, "is_main_result": r.is_main_result} for r in self.results],
                "stdout": "".join(self.logs.stdout), "stderr": "".join(self.logs.stderr),
                "error": self.error.to_json() if self.error else None, "execution_count": self.execution_count,
                "truncated_chars": self.truncated_chars}


class Files(abc.ABC):
    """File access inside a sandbox (paths relative to its work dir, or absolute inside it)."""

    @abc.abstractmethod
    async def write(self, path: str, data: str | bytes) -> None:
        """Write a file (parents are created)."""

    @abc.abstractmethod
    async def read(self, path: str, format: str = "text") -> str | bytes:
        """Read a file as text (``format="text"``) or bytes (``format="bytes"``)."""


class Sandbox(abc.ABC):
    """One isolated, persistent Python interpreter. Create with ``await Backend.create()``; always ``kill()`` it."""

    backend: str = "abstract"
    isolation: str = "none"  # how it is kept apart from other sandboxes: cgroup+uid | cgroup | uid | none | vm
    files: Files

    @classmethod
    @abc.abstractmethod
    async def create(cls, *, limits: SandboxLimits | None = None, **kwargs: Any) -> Sandbox:
        """Start a sandbox and return it once it answers."""

    @abc.abstractmethod
    async def run_code(self, code: str, *, timeout: float = 30.0) -> Execution:
        """Run Python code in the persistent interpreter; errors and timeouts come back in ``Execution.error``.
        The interpreter's state persists; processes the code started do not outlive the call (local backends)."""

    @abc.abstractmethod
    async def kill(self) -> None:
        """Stop the sandbox and everything it started. Idempotent."""

    @abc.abstractmethod
    def is_running(self) -> bool:
        """Whether the sandbox can still run code."""

    @classmethod
    @abc.abstractmethod
    async def run_program(cls, source: str, stdin: str, *, timeout: float, stop: Callable[[str], bool],
                          limits: SandboxLimits | None = None) -> list[str]:
        """Run a Python program once in a fresh sandbox of this backend, feeding it `stdin`; return its stdout
        lines, read until EOF, the line for which `stop(line)` is true, or `timeout` (then the program is killed)."""

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()
