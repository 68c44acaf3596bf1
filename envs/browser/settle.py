"""Event-based page settling: no pending requests and no DOM mutations over two animation frames, capped.

Replaces BrowserGym's fixed 0.5 s sleep per step. An init script counts DOM mutations; the page is settled
when the count stays unchanged across two consecutive animation frames and no request of the page is in
flight, or when the cap is reached (a page that animates forever still gets observed).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from agentgym.envs.browser.host import guarded

MUTATION_COUNTER = """(() => {
  if (window.__agSettle) return;
  const s = window.__agSettle = {mutations: 0};
  new MutationObserver((records) => { s.mutations += records.length; })
    .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
})();"""

_QUIET = """async (capMs) => {
  const s = window.__agSettle;
  if (!s) return false;
  const t0 = performance.now();
  const frame = () => new Promise((resolve) => {
    requestAnimationFrame(() => resolve());
    setTimeout(resolve, 50);  // rAF is throttled in hidden pages: never wait on it alone
  });
  let last = s.mutations, quiet = 0;
  while (performance.now() - t0 < capMs) {
    await frame();
    if (s.mutations === last) { if (++quiet >= 2) return true; } else { quiet = 0; last = s.mutations; }
  }
  return false;
}"""


class RequestTracker:
    """Counts a page's requests in flight from Playwright's request events."""

    def __init__(self, page: Any):
        self.pending = 0
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    def _start(self, _request: Any) -> None:
        self.pending += 1

    def _end(self, _request: Any) -> None:
        self.pending = max(0, self.pending - 1)


async def install_settle(context: Any, timeout_s: float = 10.0) -> None:
    """Add the mutation counter to every page of `context` (before any page script runs)."""
    await guarded(context.add_init_script(MUTATION_COUNTER), timeout_s, "add_init_script(settle)")


async def settle(page: Any, tracker: RequestTracker | None = None, cap_ms: float = 300.0,
                 timeout_s: float = 10.0) -> bool:
    """Wait until the page is quiet (see module doc); True if it settled before the cap."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cap_ms / 1000
    while tracker is not None and tracker.pending > 0 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    with contextlib.suppress(Exception):  # a navigation in progress: wait for its document first
        await guarded(page.wait_for_load_state("domcontentloaded"), timeout_s, "wait_for_load_state")
    remaining = max(20.0, (deadline - loop.time()) * 1000)
    for _ in range(3):  # the execution context can be replaced by a navigation mid-check
        try:
            return bool(await guarded(page.evaluate(_QUIET, remaining), timeout_s, "settle"))
        except Exception as exc:
            if "context was destroyed" not in str(exc) and "navigat" not in str(exc):
                raise
            with contextlib.suppress(Exception):
                await guarded(page.wait_for_load_state("domcontentloaded"), timeout_s, "wait_for_load_state")
    return False
