"""BrowserGym's high-level action set, dispatched through a whitelist of methods (agent text is never executed).

``BrowserActions`` implements each action on one page; ``ACTIONS`` documents them (the env turns each into
a tool, and ``agentgym.python_calls.PythonCalls`` reads the ``click('12')`` text form); ``SUBSETS`` names the
subsets used in the literature (``miniwob_liu18`` = click + fill, ``webarena``, ...). Agent mistakes (no such
element, element not actionable, a refused URL) raise ``ToolError``; a dead browser raises ``BrowserError``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from agentgym.envs.browser.host import BrowserError, ContextLease
from agentgym.envs.browser.network import NetworkPolicy
from agentgym.errors import ToolError
from agentgym.extras import require

_BID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
MAX_TYPED_CHARS = 2_000    # keyboard_type types key by key: longer text is refused, not left to time out
MAX_FILL_CHARS = 20_000
_DEAD = ("has been closed", "Target closed", "Browser closed", "Connection closed", "crashed")

ACTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "click": ("Click an element.", {"bid": "element id, e.g. '12'", "button": "left | middle | right"}),
    "dblclick": ("Double-click an element.", {"bid": "element id"}),
    "fill": ("Clear a text field and type a value into it.", {"bid": "element id", "value": "text to enter"}),
    "select_option": ("Select option(s) of a <select> by label or value.",
                      {"bid": "element id", "options": "an option label, or a list of labels"}),
    "press": ("Focus an element and press a key combination, e.g. 'Enter' or 'Control+a'.",
              {"bid": "element id", "key_comb": "key combination"}),
    "hover": ("Move the mouse over an element.", {"bid": "element id"}),
    "focus": ("Focus an element.", {"bid": "element id"}),
    "clear": ("Clear a text field.", {"bid": "element id"}),
    "scroll": ("Scroll the page by (delta_x, delta_y) pixels.", {"delta_x": "pixels right", "delta_y": "pixels down"}),
    "goto": ("Open a URL (only this task's site is reachable).", {"url": "the address"}),
    "go_back": ("Go back in the browser history.", {}),
    "go_forward": ("Go forward in the browser history.", {}),
    "send_msg_to_user": ("Send a message to the user (an answer or a status).", {"text": "the message"}),
    "report_infeasible": ("Say that the task cannot be done, and why.", {"reason": "why"}),
    "noop": ("Do nothing and wait.", {"wait_ms": "milliseconds to wait (at most 3000)"}),
    "mouse_click": ("Click at page coordinates.", {"x": "pixels from the left", "y": "pixels from the top",
                                                    "button": "left | middle | right"}),
    "keyboard_type": ("Type text with the keyboard into the focused element.", {"text": "the text"}),
    "keyboard_press": ("Press a key combination on the focused element.", {"key_comb": "key combination"}),
}

SUBSETS: dict[str, tuple[str, ...]] = {
    "all": tuple(ACTIONS),
    "miniwob_liu18": ("click", "fill"),
    "miniwob_all": ("click", "dblclick", "fill", "select_option", "press", "hover", "focus", "clear", "scroll",
                    "noop", "mouse_click", "keyboard_type", "keyboard_press"),
    "webarena": ("scroll", "press", "click", "fill", "hover", "go_back", "go_forward", "goto", "select_option",
                 "send_msg_to_user", "report_infeasible", "noop"),
}


def subset(name_or_names: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Action names of a named subset (or a validated explicit list)."""
    names = SUBSETS.get(name_or_names) if isinstance(name_or_names, str) else tuple(name_or_names)
    if names is None:
        raise ValueError(f"unknown action subset {name_or_names!r}; known: {sorted(SUBSETS)}")
    unknown = [n for n in names if n not in ACTIONS]
    if unknown:
        raise ValueError(f"unknown actions {unknown}; known: {sorted(ACTIONS)}")
    return names


class BrowserActions:
    """The whitelisted implementations, bound to one leased page and its network policy."""

    def __init__(self, lease: ContextLease, policy: NetworkPolicy, action_timeout_ms: float = 3000.0):
        self.lease = lease
        self.policy = policy
        self.action_timeout_ms = action_timeout_ms
        self.chat: list[dict[str, str]] = []   # messages sent to the user and infeasibility reports
        self._playwright_error = require("playwright.async_api", "web").Error

    @property
    def page(self) -> Any:
        return self.lease.page

    def _locator(self, bid: str) -> Any:
        if not _BID.match(bid):
            raise ToolError(f"invalid element id {bid[:50]!r}: use the number in brackets, e.g. click('12')")
        return self.page.locator(f'[bid="{bid}"]')

    async def _do(self, awaitable: Any, what: str) -> Any:
        """Run one Playwright action: agent-caused failures -> ToolError, a dead browser -> BrowserError."""
        try:
            return await self.lease.call(awaitable, what, timeout_s=self.action_timeout_ms / 1000 + 5)
        except self._playwright_error as exc:
            message = str(exc).split("\n")[0][:300]
            if any(d in message for d in _DEAD):
                self.lease.broken = True
                raise BrowserError(f"{what}: {message}") from None
            raise ToolError(f"{what} failed: {message}") from None

    async def _element(self, bid: str) -> Any:
        loc = self._locator(bid)
        if await self._do(loc.count(), "count") == 0:
            raise ToolError(f"no element with bid '{bid}' on this page")
        return loc.first

    async def _act_on(self, bid: str, method: str, *args: Any, **kwargs: Any) -> None:
        el = await self._element(bid)
        try:
            await self._do(getattr(el, method)(*args, timeout=self.action_timeout_ms, **kwargs), f"{method}('{bid}')")
        except ToolError:
            if method not in ("click", "dblclick", "hover"):
                raise
            # like BrowserGym: an element that fails actionability checks (covered, animating) is forced
            await self._do(getattr(el, method)(*args, timeout=self.action_timeout_ms, force=True, **kwargs),
                           f"{method}('{bid}')")

    # --- the actions (names and signatures are the public grammar) ----------------------------------

    async def click(self, bid: str, button: str = "left") -> None:
        if button not in ("left", "middle", "right"):
            raise ToolError("button must be 'left', 'middle' or 'right'")
        await self._act_on(bid, "click", button=button)

    async def dblclick(self, bid: str) -> None:
        await self._act_on(bid, "dblclick")

    async def fill(self, bid: str, value: str) -> None:
        if len(value) > MAX_FILL_CHARS:
            raise ToolError(f"value too long ({len(value)} characters; the limit is {MAX_FILL_CHARS})")
        await self._act_on(bid, "fill", value)

    async def select_option(self, bid: str, options: str | list[str]) -> None:
        if not isinstance(options, str) and not (isinstance(options, list) and all(isinstance(o, str) for o in options)):
            raise ToolError("options must be a string or a list of strings")
        el = await self._element(bid)
        try:
            await self._do(el.select_option(label=options, timeout=self.action_timeout_ms), f"select_option('{bid}')")
        except ToolError:
            await self._do(el.select_option(options, timeout=self.action_timeout_ms), f"select_option('{bid}')")

    async def press(self, bid: str, key_comb: str) -> None:
        await self._act_on(bid, "press", key_comb[:100])

    async def hover(self, bid: str) -> None:
        await self._act_on(bid, "hover")

    async def focus(self, bid: str) -> None:
        await self._act_on(bid, "focus")

    async def clear(self, bid: str) -> None:
        await self._act_on(bid, "fill", "")

    async def scroll(self, delta_x: float, delta_y: float) -> None:
        await self._do(self.page.mouse.wheel(max(-1e5, min(1e5, delta_x)), max(-1e5, min(1e5, delta_y))), "scroll")

    async def goto(self, url: str) -> None:
        if not self.policy.allows(url):
            raise ToolError(self.policy.refusal(url))
        await self._do(self.page.goto(url, timeout=self.action_timeout_ms * 2), "goto")

    async def go_back(self) -> None:
        await self._do(self.page.go_back(timeout=self.action_timeout_ms), "go_back")

    async def go_forward(self) -> None:
        await self._do(self.page.go_forward(timeout=self.action_timeout_ms), "go_forward")

    async def send_msg_to_user(self, text: str) -> None:
        self.chat.append({"role": "assistant", "message": text[:10_000]})

    async def report_infeasible(self, reason: str) -> None:
        self.chat.append({"role": "infeasible", "message": reason[:10_000]})

    async def noop(self, wait_ms: float = 0.0) -> None:
        await asyncio.sleep(max(0.0, min(3000.0, wait_ms)) / 1000)

    async def mouse_click(self, x: float, y: float, button: str = "left") -> None:
        if button not in ("left", "middle", "right"):
            raise ToolError("button must be 'left', 'middle' or 'right'")
        if not (-1e5 < x < 1e5 and -1e5 < y < 1e5):
            raise ToolError("coordinates out of range")
        await self._do(self.page.mouse.click(x, y, button=button), "mouse_click")

    async def keyboard_type(self, text: str) -> None:
        if len(text) > MAX_TYPED_CHARS:
            raise ToolError(f"text too long ({len(text)} characters; the limit is {MAX_TYPED_CHARS})")
        await self._do(self.page.keyboard.type(text), "keyboard_type")

    async def keyboard_press(self, key_comb: str) -> None:
        await self._do(self.page.keyboard.press(key_comb[:100]), "keyboard_press")
