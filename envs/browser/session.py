"""An env's hold on the shared browser: its reference to the host and the context lease it currently uses.

Web and GUI envs keep one ``BrowserSession`` each. ``renew`` replaces a lease that can no longer serve (the
browser restarted, the context broke or served its quota), and ``close`` gives back the lease and then the
host reference, in that order and even when the first step fails, so no context or browser outlives its env.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agentgym.envs.browser.host import BrowserConfig, BrowserHost, ContextLease, acquire_host, release_host


class BrowserSession:
    """The host reference and current lease of one env (see the module docstring)."""

    def __init__(self, config: BrowserConfig):
        self.config = config
        self.host: BrowserHost | None = None
        self._lease: ContextLease | None = None

    @property
    def lease(self) -> ContextLease:
        """The current lease (there is one once the env's first episode has started)."""
        assert self._lease is not None, "no page: call areset() first"
        return self._lease

    @property
    def page(self) -> Any:
        """The page of the current lease."""
        return self.lease.page

    @property
    def needs_lease(self) -> bool:
        """True when there is no lease or the current one must be replaced."""
        return self._lease is None or not self._lease.usable

    async def renew(self, setup: Callable[[Any], Awaitable[None]] | None = None,
                    **context_options: Any) -> ContextLease:
        """Release the current lease, if any, and lease a new context (acquiring the host on first use)."""
        await self.drop_lease()
        if self.host is None:
            self.host = await acquire_host(self.config)
        self._lease = await self.host.lease(setup, **context_options)
        return self._lease

    def mark_broken(self) -> None:
        """Never reuse the current context again (a call on it failed as infrastructure)."""
        if self._lease is not None:
            self._lease.broken = True

    async def drop_lease(self) -> None:
        """Close the current context and give its slot back (nothing when there is none)."""
        lease, self._lease = self._lease, None
        if lease is not None:
            await lease.release()

    async def close(self) -> None:
        """Release the lease, then the host reference (the last reference closes the browser). Idempotent."""
        host, self.host = self.host, None
        try:
            await self.drop_lease()
        finally:
            if host is not None:
                await release_host(host)


class BrowserSessionMixin:
    """For envs that keep a ``BrowserSession`` as ``browser_session``: the current lease and page as attributes."""

    browser_session: BrowserSession

    @property
    def lease(self) -> ContextLease:
        """The context lease of the current episode stream."""
        return self.browser_session.lease

    @property
    def page(self) -> Any:
        """The page of the current episode stream."""
        return self.browser_session.page
