"""Watching the browsers of this process from outside the envs: every browser process seen, peak memory and
restarts, sampled while a run goes on, for soaks (benchmarks and tests) that must prove nothing leaked."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from agentgym import processes
from agentgym.envs.browser.host import live_hosts


class HostSampler:
    """Samples every live host of this process each `interval_s` while entered (``async with``): the browser
    pids seen, the peak PSS of one host's process tree, and the most restarts of one host."""

    def __init__(self, interval_s: float = 1.0):
        self.interval_s = interval_s
        self.pids: set[int] = set()
        self.peak_pss_mb = 0.0
        self.restarts = 0
        self._ignored = {id(h) for h in live_hosts()}   # hosts opened before the run are not its own
        self._task: asyncio.Task | None = None

    async def sample(self) -> None:
        """Take one sample now."""
        for host in live_hosts():
            if id(host) in self._ignored:
                continue
            self.pids.update(host.process_tree())
            self.peak_pss_mb = max(self.peak_pss_mb, await asyncio.to_thread(host.memory_mb))
            self.restarts = max(self.restarts, host.restarts)

    async def _run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.interval_s)

    async def __aenter__(self) -> HostSampler:
        self._task = asyncio.create_task(self._run(), name="agentgym-host-sampler")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def survivors(self) -> list[int]:
        """The sampled browser processes still alive (a clean run leaves none once its envs are closed)."""
        return sorted(p for p in self.pids if processes.alive(p))
