"""One sandboxed process tree on this machine: spawn it under a launcher, talk JSON lines, kill the whole group.

A ``Launcher`` (bubblewrap, or the weaker fallback) turns "run this Python source" into an argv plus its
``Confinement`` (the sandbox's own cgroup and uid, rlimits, privilege drop), entered between fork and exec.
``SandboxProcess`` owns the child: a fresh session, bounded line reads, and an idempotent ``kill`` that kills
the whole tree (through its cgroup when it has one), reaps it, closes every pipe and releases the cgroup and uid.
``ProcessSandbox`` is the E2B-shaped persistent interpreter on top.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

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
from agentgym.envs.code.sandbox.confinement import Confinement
from agentgym.processes import stop_group, stop_pids

PYTHON = "/usr/bin/python3"  # readable by the unprivileged uid, unlike a virtualenv under /root
PYTHON_FLAGS = ("-S", "-s", "-B")  # no site (stdlib only, fast start); PYTHON* env vars are ours, not the user's
REPL_SOURCE = (Path(__file__).with_name("_repl.py")).read_text()
MAX_LINE = 16 << 20  # the longest protocol line accepted from a sandbox
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/user", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}


def _children(pid: int) -> list[int]:
    """Direct children of a process (from /proc; empty when it has none or is gone)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Launcher(Protocol):
    """How one backend starts a sandboxed Python process."""

    name: str
    own_pid_namespace: bool
    confinement: Confinement | None  # None: not confined at all (only a benchmark's unsandboxed baseline)

    def argv(self, python_args: list[str]) -> list[str]:
        """The full command line running ``python3 <python_args>`` inside the sandbox."""
        ...

    def popen_kwargs(self) -> dict[str, Any]:
        """Extra Popen arguments (cwd, and the confinement's preexec)."""
        ...

    def cleanup(self) -> None:
        """Remove what the launcher created on the host and release its confinement (after the process is gone)."""
        ...


class SandboxProcess:
    """A child process tree in its own session, spoken to in JSON lines; always ``await kill()`` it."""

    def __init__(self, launcher: Launcher, python_args: list[str], limits: SandboxLimits):
        self.launcher = launcher
        self.python_args = python_args
        self.limits = limits
        self.proc: asyncio.subprocess.Process | None = None
        self._killed = False

    async def start(self) -> None:
        """Spawn the process (its stdin/stdout are pipes; stderr goes nowhere)."""
        argv = self.launcher.argv(self.python_args)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True, env=dict(SANDBOX_ENV), limit=MAX_LINE,
                close_fds=True, **self.launcher.popen_kwargs())
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self.launcher.cleanup()
            raise SandboxError(f"could not start the {self.launcher.name} sandbox: {exc}") from exc

    async def launch_failure(self) -> str | None:
        """After an early EOF: the launcher's own error message (bwrap/unshare write to stderr), if it failed."""
        assert self.proc is not None and self.proc.stderr is not None
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=2.0)
            text = (await asyncio.wait_for(self.proc.stderr.read(4000), timeout=1.0)).decode("utf-8", "replace")
        except (asyncio.TimeoutError, OSError):
            return None
        return text.strip() or f"exit status {self.proc.returncode}" if self.proc.returncode else None

    async def send(self, obj: dict[str, Any]) -> None:
        """Write one JSON line to the process's stdin."""
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            await asyncio.wait_for(self.proc.stdin.drain(), timeout=10.0)
        except (OSError, asyncio.TimeoutError) as exc:
            raise SandboxError(f"the sandbox stopped reading its input ({type(exc).__name__})") from exc

    async def send_text(self, text: str) -> None:
        """Write raw text to the process's stdin (a program that exits early is not an error)."""
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(text.encode())
            await asyncio.wait_for(self.proc.stdin.drain(), timeout=10.0)
        except (OSError, asyncio.TimeoutError):
            pass

    async def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next JSON object from stdout; None at end of output. Raises TimeoutError or SandboxError."""
        assert self.proc is not None and self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                try:
                    line = await self.proc.stdout.readline()
                except (ValueError, asyncio.LimitOverrunError) as exc:
                    raise SandboxError("the sandbox sent an over-long line") from exc
                if not line:
                    return None
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue  # not ours (garbage someone wrote to the channel): skip it
                if isinstance(obj, dict):
                    return obj

    async def lines(self, timeout: float, stop: Callable[[str], bool], max_chars: int = MAX_LINE) -> list[str]:
        """Raw stdout lines until EOF, `stop(line)`, `max_chars` read, or the deadline (no error on timeout)."""
        assert self.proc is not None and self.proc.stdout is not None
        out: list[str] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                while size < max_chars:
                    try:
                        raw = await self.proc.stdout.readline()
                    except (ValueError, asyncio.LimitOverrunError):
                        break
                    if not raw:
                        break
                    line = raw.decode("utf-8", "replace").rstrip("\n")
                    out.append(line)
                    size += len(line)
                    if stop(line):
                        break
        except TimeoutError:
            pass
        return out

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and not self._killed

    def strays(self, keep: set[int]) -> list[int]:
        """Host pids of this sandbox's processes other than `keep` (its cgroup, else its own uid; [] if unknown)."""
        confinement = self.launcher.confinement
        if confinement is None:
            return []
        members = confinement.members()
        if members is None:
            members = uid_processes(confinement.lease.uid) if confinement.lease is not None else []
        return [p for p in members if p not in keep]

    async def kill(self) -> None:
        """SIGKILL the whole tree, reap it, close the pipes, then remove its cgroup and give its uid back."""
        if self._killed:
            return
        self._killed = True
        proc = self.proc
        confinement = self.launcher.confinement
        cgroup = confinement.cgroup if confinement is not None else None
        if proc is not None:
            if cgroup is not None:
                # everything the sandbox ever started is in its cgroup, whatever session or namespace it made
                cgroup.kill_all()
                deadline = time.monotonic() + 10.0
                while (cgroup.members() or proc.returncode is None) and time.monotonic() < deadline:
                    if proc.returncode is None:
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(proc.wait(), timeout=0.05)
                    else:
                        cgroup.kill_all()
                        await asyncio.sleep(0.005)
            else:
                if proc.returncode is None:
                    # Kill the launcher's children first (bwrap's pid-1, whose death ends the whole pid namespace),
                    # so the launcher reaps them and exits: killing the launcher first would orphan them to the
                    # host's init, and those zombies count against the sandbox uid's process limit until reaped.
                    children = _children(proc.pid)
                    for child in children:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(child, signal.SIGKILL)
                    if children:
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(proc.wait(), timeout=1.0)
                await stop_group(proc.pid, leader=proc, first_signal=None, kill_wait_s=10.0)
                if not self.launcher.own_pid_namespace:  # no namespace took its processes down with it
                    strays = self.strays(set())
                    if strays:
                        await stop_pids(strays, first_signal=None, kill_wait_s=10.0)
            if proc.stdin is not None:
                proc.stdin.close()
            if proc.stderr is not None:
                proc.stderr.feed_eof()
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()
        self.launcher.cleanup()


def uid_processes(uid: int) -> list[int]:
    """Live (non-zombie) pids whose real uid is `uid`, from /proc."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry.name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith(("Z", "X")):
            out.append(int(entry.name))
    return out


TRANSIENT = "Resource temporarily unavailable"  # clone() hit a per-uid limit while killed sandboxes wind down
START_ATTEMPTS = 6


async def backoff(attempt: int) -> None:
    await asyncio.sleep(0.05 * 2 ** attempt)


class _ProcessFiles(Files):
    def __init__(self, sandbox: ProcessSandbox):
        self._sandbox = sandbox

    async def write(self, path: str, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        await self._sandbox._request({"op": "write", "path": path, "data": base64.b64encode(raw).decode()})

    async def read(self, path: str, format: str = "text") -> str | bytes:
        reply = await self._sandbox._request({"op": "read", "path": path})
        raw = base64.b64decode(reply["data"])
        return raw if format == "bytes" else raw.decode("utf-8", "replace")


class ProcessSandbox(Sandbox):
    """A persistent interpreter (``_repl.py``) in a sandboxed process; backends differ only in their launcher."""

    backend = "process"

    def __init__(self, launcher: Launcher, limits: SandboxLimits):
        self.limits = limits
        args = ["-c", REPL_SOURCE] + (["--own-pidns"] if launcher.own_pid_namespace else []) + [str(limits.output_chars)]
        self._process = SandboxProcess(launcher, [*PYTHON_FLAGS, *args], limits)
        self._next_id = 0
        self._lock = asyncio.Lock()
        self.files = _ProcessFiles(self)

    @classmethod
    def make_launcher(cls, limits: SandboxLimits) -> Launcher:
        raise NotImplementedError

    @classmethod
    async def create(cls, *, limits: SandboxLimits | None = None, **kwargs: Any) -> ProcessSandbox:
        limits = limits or SandboxLimits()
        for attempt in range(START_ATTEMPTS):
            sandbox = cls(cls.make_launcher(limits), limits)
            await sandbox._process.start()
            try:
                ready = await sandbox._process.receive(limits.start_timeout_s)
                failure = None if ready and ready.get("ready") else (await sandbox._process.launch_failure() or "exited")
            except BaseException as exc:
                await sandbox.kill()
                if isinstance(exc, TimeoutError):
                    raise SandboxError(f"the {cls.backend} sandbox did not start within {limits.start_timeout_s} s") from exc
                raise
            if failure is None:
                return sandbox
            await sandbox.kill()
            if TRANSIENT not in failure or attempt == START_ATTEMPTS - 1:
                raise SandboxError(f"the {cls.backend} sandbox failed to start: {failure[:500]}")
            await backoff(attempt)
        raise AssertionError("unreachable")

    def is_running(self) -> bool:
        return self._process.alive()

    @property
    def isolation(self) -> str:
        """How this sandbox is kept apart from the others: 'cgroup+uid', 'cgroup', 'uid' or 'none'."""
        confinement = self._process.launcher.confinement
        return confinement.kind if confinement is not None else "none"

    async def _end_strays(self) -> None:
        """Without a pid namespace of its own the interpreter cannot end what a cell left running: do it here."""
        proc = self._process.proc
        if self._process.launcher.own_pid_namespace or proc is None:
            return
        strays = self._process.strays({proc.pid})
        if strays:
            await stop_pids(strays, first_signal=None, kill_wait_s=5.0)

    async def _request(self, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Send a request and wait for its answer; the sandbox is killed if it does not answer in time."""
        async with self._lock:
            if not self.is_running():
                raise SandboxError("the sandbox is not running")
            self._next_id += 1
            rid = self._next_id
            try:
                await self._process.send({**payload, "id": rid})
                while True:
                    reply = await self._process.receive(timeout)
                    if reply is None:
                        raise SandboxError("the sandbox process exited (its code ended the interpreter)")
                    if reply.get("id") == rid:
                        break
            except BaseException:
                await self.kill()
                raise
        if payload["op"] != "exec" and reply.get("error"):
            err = reply["error"]
            raise OSError(f"{err['name']}: {err['value']}")
        return reply

    async def run_code(self, code: str, *, timeout: float = 30.0) -> Execution:
        """Run code in the persistent namespace. A soft timeout interrupts it in place; past the grace period
        the sandbox is killed and the execution reports ``SandboxKilled`` (later calls raise SandboxError)."""
        try:
            reply = await self._request({"op": "exec", "code": code, "timeout": timeout},
                                        timeout=timeout + self.limits.kill_grace_s)
        except TimeoutError:
            return Execution(error=ExecutionError("SandboxKilled", f"the code ignored its {timeout:g} s timeout, so "
                                                  "the sandbox was killed", ""))
        except SandboxError as exc:
            if "exited" in str(exc):
                return Execution(error=ExecutionError("SandboxKilled", "the interpreter process ended (os._exit, a "
                                                      "signal or a resource limit), so the sandbox is gone", ""))
            if "over-long" in str(exc):  # the code itself flooded the reply channel: its fault, not ours
                await self.kill()
                return Execution(error=ExecutionError("SandboxKilled", "the code wrote to the interpreter's reply "
                                                      "channel, so the sandbox was killed", ""))
            raise
        await self._end_strays()
        try:
            err = reply.get("error")
            return Execution(
                results=[Result(reply["result"])] if reply.get("result") is not None else [],
                logs=Logs([str(reply["stdout"])] if reply.get("stdout") else [],
                          [str(reply["stderr"])] if reply.get("stderr") else []),
                error=ExecutionError(str(err["name"]), str(err["value"]), str(err["traceback"])) if err else None,
                execution_count=reply.get("execution_count"), truncated_chars=int(reply.get("truncated_chars", 0)))
        except (TypeError, KeyError, ValueError):  # a reply forged by the code (it shares the channel)
            await self.kill()
            return Execution(error=ExecutionError("SandboxKilled", "the code forged a reply on the interpreter's "
                                                  "channel, so the sandbox was killed", ""))

    async def kill(self) -> None:
        await self._process.kill()

    @classmethod
    async def run_program(cls, source: str, stdin: str, *, timeout: float, stop: Callable[[str], bool],
                          limits: SandboxLimits | None = None) -> list[str]:
        limits = limits or SandboxLimits()
        for attempt in range(START_ATTEMPTS):
            process = SandboxProcess(cls.make_launcher(limits), [*PYTHON_FLAGS, "-c", source], limits)
            await process.start()
            try:
                await process.send_text(stdin)
                lines = await process.lines(timeout, stop)
                failure = None if lines else await process.launch_failure()
            finally:
                await process.kill()
            if failure is None or TRANSIENT not in failure:
                return lines
            if attempt == START_ATTEMPTS - 1:
                raise SandboxError(f"the {cls.backend} sandbox failed to start: {failure[:500]}")
            await backoff(attempt)
        raise AssertionError("unreachable")
