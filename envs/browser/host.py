"""The browser host: one Chromium per worker process (per event loop), a bounded pool of contexts,
recycling, a watchdog, a deadline on every Playwright/CDP call, and tracking of the browser's process tree.

Every env that drives a browser (web, GUI) goes through ``acquire_host(config)`` -> ``BrowserHost`` and
``host.lease(...)`` -> ``ContextLease`` (one context + page per episode stream). The host is shared by all
envs on the same event loop and closed when the last one releases it. Browser processes are found by a
marker switch on the command line of the browser we launched, never by name, so other Chromiums on the
machine are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agentgym import processes
from agentgym.errors import EnvTimeoutError, InfrastructureError
from agentgym.extras import require

T = TypeVar("T")

# Flags from the platform notes: no sandbox as root, no GPU, no background traffic, no crash-reporter orphans.
LAUNCH_FLAGS: tuple[str, ...] = (
    "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-crash-reporter", "--disable-breakpad",
    "--disable-extensions", "--mute-audio", "--disable-features=Translate,MediaRouter,OptimizationHints",
)
DEFAULT_CHROMIUM = "/usr/bin/chromium"
MARKER_PREFIX = "--agentgym-host="   # + a per-host id: a no-op switch that names the browsers we launched


class BrowserError(InfrastructureError):
    """The browser machinery failed (crash, launch failure, a call past its deadline)."""


class BrowserTimeout(BrowserError, EnvTimeoutError):
    """A Playwright or CDP call did not return within its deadline."""


def chromium_path(explicit: str | None = None) -> str | None:
    """The Chromium to drive: `explicit`, $AGENTGYM_CHROMIUM, /usr/bin/chromium, else None (Playwright's own)."""
    for candidate in (explicit, os.environ.get("AGENTGYM_CHROMIUM"), DEFAULT_CHROMIUM):
        if candidate and (os.path.exists(candidate) or shutil.which(candidate)):
            return candidate
    return None


@dataclass(frozen=True)
class BrowserConfig:
    """How the shared browser is launched and policed (hashable: hosts are shared per config)."""

    executable_path: str | None = None     # None: chromium_path() decides
    headless: bool = True
    extra_args: tuple[str, ...] = ()
    max_contexts: int = 8                  # contexts open at once; further leases wait
    recycle_after: int = 100               # episodes per context before it is replaced
    call_timeout_s: float = 10.0           # default deadline of one Playwright/CDP call
    launch_timeout_s: float = 60.0
    max_pss_mb: float = 3072.0             # the watchdog restarts a browser above this
    max_consecutive_errors: int = 5        # ... or after this many failed calls in a row
    watchdog_interval_s: float = 5.0


async def guarded(awaitable: Awaitable[T], timeout_s: float, what: str) -> T:
    """Await with a deadline; a miss raises BrowserTimeout naming the call (Playwright/CDP have no default)."""
    try:
        async with asyncio.timeout(timeout_s):
            return await awaitable
    except TimeoutError:
        raise BrowserTimeout(f"{what} did not finish within {timeout_s:g} s") from None


# --- memory of a process tree (Linux /proc) --------------------------------------------------------


def pss_mb(pids: list[int]) -> float:
    """Proportional set size of these processes in MB (shared pages counted once overall)."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except (OSError, ValueError):
            continue
    return total_kb / 1024


# --- the host -------------------------------------------------------------------------------------


class ContextLease:
    """One browser context and its page, held by one env across episodes; recycled after N episodes or an error."""

    def __init__(self, host: BrowserHost, context: Any, page: Any, generation: int):
        self.host = host
        self.context = context
        self.page = page
        self.generation = generation
        self.episodes = 0
        self.broken = False
        self._released = False

    @property
    def usable(self) -> bool:
        """False once the browser was restarted, the context broke, or it served its quota of episodes."""
        return (not self.broken and not self._released and self.generation == self.host.generation
                and self.episodes < self.host.config.recycle_after and self.host.running)

    async def call(self, awaitable: Awaitable[T], what: str, timeout_s: float | None = None) -> T:
        """Run one Playwright/CDP call under the deadline; failures mark the lease broken and are counted."""
        try:
            result = await guarded(awaitable, timeout_s or self.host.config.call_timeout_s, what)
        except BrowserTimeout:
            self.broken = True
            self.host.note_error()
            raise
        self.host.note_ok()
        return result

    async def release(self) -> None:
        """Close the context (bounded) and give the slot back. Idempotent."""
        if self._released:
            return
        self._released = True
        try:
            if self.generation == self.host.generation and self.host.running:
                with contextlib.suppress(Exception):
                    await guarded(self.context.close(), self.host.config.call_timeout_s, "context.close")
        finally:
            self.host._slots.release()


class BrowserHost:
    """One launched Chromium shared by the envs of an event loop, with a context pool and a watchdog."""

    def __init__(self, config: BrowserConfig):
        self.config = config
        self.marker = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
        self.generation = 0
        self.restarts = 0
        self.running = False
        self._pw: Any = None
        self._browser: Any = None
        self._cdp: Any = None
        self._slots = asyncio.Semaphore(config.max_contexts)
        self._errors = 0
        self._lock = asyncio.Lock()
        self._watchdog: asyncio.Task | None = None
        self._known_pids: set[int] = set()

    # lifecycle

    async def start(self) -> None:
        """Launch Playwright's driver and Chromium (bounded by launch_timeout_s)."""
        playwright = require("playwright.async_api", "web")
        cfg = self.config
        args = [*LAUNCH_FLAGS, *cfg.extra_args, self.marker]
        if os.geteuid() == 0:
            args.insert(0, "--no-sandbox")
        self._pw = await guarded(playwright.async_playwright().start(), cfg.launch_timeout_s, "playwright start")
        try:
            self._browser = await guarded(
                self._pw.chromium.launch(executable_path=chromium_path(cfg.executable_path), headless=cfg.headless,
                                         args=args, handle_sigint=False, handle_sigterm=False, handle_sighup=False),
                cfg.launch_timeout_s, "chromium launch")
            self._cdp = await guarded(self._browser.new_browser_cdp_session(), cfg.call_timeout_s, "CDP session")
        except BaseException:
            await self._shutdown()
            raise
        self.running = True
        self._errors = 0
        self._known_pids |= set(self.process_tree())
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch(), name="agentgym-browser-watchdog")

    async def close(self) -> None:
        """Stop the watchdog, close the browser and the driver, and make sure none of our processes remain."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(BaseException):
                await self._watchdog
            self._watchdog = None
        await self._shutdown()

    async def _shutdown(self) -> None:
        self.running = False
        self._known_pids |= set(self.process_tree())
        browser, pw = self._browser, self._pw
        self._browser = self._pw = self._cdp = None
        if browser is not None:
            with contextlib.suppress(Exception):
                await guarded(browser.close(), self.config.call_timeout_s, "browser.close")
        if pw is not None:
            with contextlib.suppress(Exception):
                await guarded(pw.stop(), self.config.call_timeout_s, "playwright stop")
        await self._reap(self._known_pids)
        self._known_pids = set()

    @staticmethod
    async def _reap(pids: set[int], grace_s: float = 5.0) -> processes.StopReport:
        """Make sure our browser processes are gone: SIGTERM, SIGKILL after `grace_s`, then wait for them."""
        report = await processes.stop_pids(pids, grace_s=grace_s)
        if not report.clean:
            print(f"[agentgym] browser processes survived {'+'.join(report.signals)}: {report.survivors}",
                  file=sys.stderr)
        return report

    async def restart(self, reason: str) -> None:
        """Replace the browser; leases of the old one become unusable (their envs re-lease)."""
        async with self._lock:
            self.generation += 1
            self.restarts += 1
            self.last_restart_reason = reason
            await self._shutdown()
            await self.start()

    # processes and health

    def process_tree(self) -> list[int]:
        """PIDs of the Chromium we launched and all its descendants (found by our marker switch)."""
        table = processes.snapshot()
        marked = {p for p in processes.descendants(os.getpid(), table) if self.marker in processes.cmdline(p)}
        roots = [p for p in marked if table[p].ppid not in marked]
        tree: set[int] = set()
        for root in roots:
            tree.add(root)
            tree.update(processes.descendants(root, table))
        return sorted(tree)

    def memory_mb(self) -> float:
        """PSS of the browser's process tree."""
        return pss_mb(self.process_tree())

    def note_error(self) -> None:
        self._errors += 1

    def note_ok(self) -> None:
        self._errors = 0

    async def healthy(self) -> bool:
        """A cheap CDP round trip under a short deadline."""
        if not self.running or self._cdp is None:
            return False
        try:
            await guarded(self._cdp.send("Browser.getVersion"), min(5.0, self.config.call_timeout_s), "heartbeat")
            return True
        except Exception:
            return False

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.watchdog_interval_s)
            if not self.running or self._lock.locked():
                continue
            reason = None
            if self._errors >= self.config.max_consecutive_errors:
                reason = f"{self._errors} consecutive failed calls"
            elif not await self.healthy():
                reason = "heartbeat failed"
            else:
                mem = await asyncio.to_thread(self.memory_mb)
                if mem > self.config.max_pss_mb:
                    reason = f"PSS {mem:.0f} MB above {self.config.max_pss_mb:.0f} MB"
            if reason is not None:
                with contextlib.suppress(Exception):
                    await self.restart(reason)

    # contexts

    async def lease(self, setup: Callable[[Any], Awaitable[None]] | None = None, **context_options: Any) -> ContextLease:
        """A new context + page (waits for a free slot); `setup(context)` installs routes and init scripts."""
        await guarded(self._slots.acquire(), max(60.0, self.config.call_timeout_s), "waiting for a browser context slot")
        try:
            async with self._lock:
                if not self.running:
                    await self.start()
                generation = self.generation
                browser = self._browser
            context = await guarded(browser.new_context(**context_options), self.config.call_timeout_s, "new_context")
            try:
                context.set_default_timeout(self.config.call_timeout_s * 1000)
                context.set_default_navigation_timeout(self.config.call_timeout_s * 1000)
                if setup is not None:
                    await guarded(setup(context), self.config.call_timeout_s, "context setup")
                page = await guarded(context.new_page(), self.config.call_timeout_s, "new_page")
            except BaseException:
                with contextlib.suppress(Exception):
                    await guarded(context.close(), self.config.call_timeout_s, "context.close")
                raise
        except BaseException:
            self._slots.release()
            raise
        return ContextLease(self, context, page, generation)


# --- one host per (event loop, config) --------------------------------------------------------------

_HOSTS: dict[tuple[int, BrowserConfig], tuple[BrowserHost, list[int]]] = {}
_HOSTS_LOCK = threading.Lock()


async def acquire_host(config: BrowserConfig | None = None) -> BrowserHost:
    """The shared host of this event loop for `config` (launched lazily by the first lease)."""
    config = config or BrowserConfig()
    key = (id(asyncio.get_running_loop()), config)
    with _HOSTS_LOCK:
        if key not in _HOSTS:
            _HOSTS[key] = (BrowserHost(config), [0])
        host, refs = _HOSTS[key]
        refs[0] += 1
    return host


async def release_host(host: BrowserHost) -> None:
    """Drop one reference; the last one closes the browser."""
    key = (id(asyncio.get_running_loop()), host.config)
    with _HOSTS_LOCK:
        entry = _HOSTS.get(key)
        if entry is None or entry[0] is not host:
            last = True
        else:
            entry[1][0] -= 1
            last = entry[1][0] <= 0
            if last:
                del _HOSTS[key]
    if last:
        await host.close()


def marked_browser_pids() -> list[int]:
    """Live processes below this one whose command line carries a host's marker switch: the main process of every
    browser a host launched (its children are in ``BrowserHost.process_tree``); a clean shutdown leaves none."""
    table = processes.snapshot()
    return [p for p in processes.descendants(os.getpid(), table)
            if table[p].state not in ("Z", "X") and MARKER_PREFIX in processes.cmdline(p)]


def live_hosts() -> list[BrowserHost]:
    """Hosts currently open in this process (for tests and benchmarks)."""
    with _HOSTS_LOCK:
        return [h for h, _ in _HOSTS.values()]

