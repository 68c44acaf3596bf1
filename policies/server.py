"""Policy-server supervision shared by every backend: launch a server subprocess, wait for health, restart it.

``ManagedServer`` owns one OpenAI-compatible server process (C2 contract) in its own process group with
a free loopback port and a log file. Backends subclass it and only say which command line to run:
``HFServer`` (``policies/hf_server.py``, next to the built-in transformers server it launches) and
``VLLMServer`` (``policies/vllm_server.py``).

    async with HFServer(model_dir, watchdog=True) as server:
        policy = TokenPolicy(model_dir, base_urls=[server.base_url])
        ...
        version = await server.load_weights(checkpoint_dir)

The supervisor uses a plain ``subprocess.Popen`` (not an asyncio child watcher), so one object can be
started from one event loop and stopped from another (test fixtures, ``asyncio.run`` in scripts).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from agentgym.errors import InfrastructureError
from agentgym.processes import StopReport, kill_group_now, stop_group


class ServerStartError(InfrastructureError):
    """The server process exited or never became healthy; the message carries the end of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def log_tail(path: Path | None, n_chars: int = 2000) -> str:
    """The last `n_chars` characters of a log file ("" when there is none)."""
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - n_chars))
        return f.read().decode("utf-8", "replace")


class ManagedServer:
    """One supervised server subprocess speaking the C2 HTTP contract; subclasses implement ``command()``.

    ``base_url`` ends in ``/v1``; ``version`` is the weights version it serves (bumped by ``load_weights``);
    ``watchdog=True`` restarts the process (same port, so clients keep their URL) when it exits or stops
    answering ``/health`` ``watchdog_failures`` times in a row.
    """

    def __init__(self, *, model_name: str = "default", host: str = "127.0.0.1", port: int | None = None,
                 log_path: str | Path | None = None, env: Mapping[str, str] | None = None,
                 startup_timeout_s: float = 300.0, request_timeout_s: float = 30.0, stop_timeout_s: float = 15.0,
                 watchdog: bool = False, watchdog_interval_s: float = 1.0, watchdog_failures: int = 3):
        self.model_name = model_name
        self.host = host
        self.port = port or free_port(host)
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="agentgym-server-")) / "server.log"
        self.env = dict(env or {})
        self.startup_timeout_s = startup_timeout_s
        self.request_timeout_s = request_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.watchdog = watchdog
        self.watchdog_interval_s = watchdog_interval_s
        self.watchdog_failures = watchdog_failures
        self.version = 0
        self.restarts = 0                      # restarts done by the watchdog or by ``restart()``
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._restart_lock: asyncio.Lock | None = None
        self.last_stop: StopReport | None = None   # what the last stop or restart left behind (survivors)

    # --- what subclasses provide -------------------------------------------------------------------
    def command(self) -> list[str]:
        """The server's command line (it must bind ``self.host:self.port``)."""
        raise NotImplementedError

    def process_env(self) -> dict[str, str]:
        """Environment of the server process: ours, offline HF flags, plus ``env`` given to the constructor."""
        env = dict(os.environ)
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        return env

    # --- addresses and state -----------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (ends in ``/v1``)."""
        return f"{self.root_url}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        """Whether the server process is running (it may still be loading)."""
        return self._proc is not None and self._proc.poll() is None

    async def healthy(self, timeout_s: float = 5.0) -> bool:
        """Whether ``GET /health`` answers 200 within `timeout_s`."""
        if not self.alive:
            return False
        try:
            async with httpx.AsyncClient(timeout=timeout_s) as client:
                response = await client.get(f"{self.root_url}/health")
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self, timeout_s: float | None = None) -> None:
        """Launch the process and wait until ``/health`` answers; raises ServerStartError with the log tail."""
        if self.alive:
            return
        self._spawn()
        await self._wait_healthy(self.startup_timeout_s if timeout_s is None else timeout_s)
        await self.on_started()
        if self.watchdog and (self._watchdog_task is None or self._watchdog_task.done()):
            self._watchdog_task = asyncio.create_task(self._watch(), name=f"watchdog:{self.port}")

    async def on_started(self) -> None:
        """Hook run after each (re)start once healthy; the default does nothing."""

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n--- {time.strftime('%H:%M:%S')} starting: {' '.join(self.command())}\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=self.process_env(),
                                      start_new_session=True)  # own process group: stop() kills children too

    async def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while time.monotonic() < deadline:
            if not self.alive:
                code = self._proc.returncode if self._proc is not None else None
                await self._kill_group()
                raise ServerStartError(f"server exited with code {code} while starting; log {self.log_path}:\n"
                                       f"{log_tail(self.log_path)}")
            if await self.healthy(timeout_s=min(5.0, max(0.1, deadline - time.monotonic()))):
                return
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        await self._kill_group()
        raise ServerStartError(f"server not healthy after {timeout_s:.0f} s; log {self.log_path}:\n"
                               f"{log_tail(self.log_path)}")

    async def stop(self) -> StopReport:
        """Stop the watchdog, then the whole process group (SIGTERM, SIGKILL after ``stop_timeout_s``); returns
        once no process of the group is left, or with the survivors named in the report (also logged)."""
        task, self._watchdog_task = self._watchdog_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return await self._kill_group()

    async def _kill_group(self) -> StopReport:
        """Stop the server's process group and close its log; the report is kept as ``last_stop``."""
        report = StopReport()
        if self._proc is not None:
            # the group id is the leader's pid (start_new_session): children that outlived it are found too
            report = await stop_group(self._proc.pid, leader=self._proc, grace_s=self.stop_timeout_s)
        self.last_stop = report
        if not report.clean:
            message = (f"[agentgym] server {self.root_url} (group {self._proc.pid}): processes survived "
                       f"{'+'.join(report.signals)}: {report.survivors}\n")
            print(message, end="", file=sys.stderr)
            if self._log is not None:
                self._log.write(message.encode())
        if self._log is not None:
            self._log.close()
            self._log = None
        return report

    async def restart(self, timeout_s: float | None = None) -> None:
        """Stop the process (not the watchdog) and start it again on the same port."""
        if self._restart_lock is None:
            self._restart_lock = asyncio.Lock()
        async with self._restart_lock:
            await self._kill_group()
            self.restarts += 1
            self._spawn()
            await self._wait_healthy(self.startup_timeout_s if timeout_s is None else timeout_s)
            await self.on_started()

    async def _watch(self) -> None:
        """Restart the server when its process exits or its health check fails repeatedly."""
        failures = 0
        while True:
            await asyncio.sleep(self.watchdog_interval_s)
            if self.alive and await self.healthy(timeout_s=max(1.0, self.watchdog_interval_s * 2)):
                failures = 0
                continue
            failures = self.watchdog_failures if not self.alive else failures + 1
            if failures < self.watchdog_failures:
                continue
            try:
                await self.restart()
                failures = 0
            except ServerStartError as exc:  # keep trying: the next round starts it again
                print(f"[agentgym] watchdog could not restart {self.root_url}: {exc}", file=sys.stderr)

    # --- API calls ---------------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, json: Any = None, timeout_s: float | None = None) -> Any:
        """One JSON request to the server (path relative to the root URL); raises on HTTP errors."""
        async with httpx.AsyncClient(timeout=timeout_s or self.request_timeout_s) as client:
            response = await client.request(method, f"{self.root_url}{path}", json=json)
        if response.status_code >= 400:
            raise InfrastructureError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json()

    async def load_weights(self, path: str | Path, timeout_s: float = 600.0) -> int:
        """Load a ``save_pretrained`` checkpoint into the running server; returns and stores the new version."""
        data = await self.request("POST", "/v1/load_weights", json={"path": str(path)}, timeout_s=timeout_s)
        self.version = int(data["version"])
        return self.version

    # --- context manager ---------------------------------------------------------------------------
    async def __aenter__(self) -> ManagedServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __del__(self) -> None:  # last resort: never leave an orphan server behind
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                kill_group_now(proc.pid)
