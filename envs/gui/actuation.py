"""Carrying out AndroidWorld actions on the simulated device: touch taps, long presses and double taps through
Chromium's touch input, typing through the IME path (tap the field, optionally clear it, insert text, press
Enter, as AndroidWorld's input_text does), scrolls and swipes on the list under the finger, and the system keys.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agentgym.envs.browser.host import ContextLease
from agentgym.envs.gui.coords import Screen, scroll_for_swipe
from agentgym.envs.gui.observation import UIElement
from agentgym.errors import ToolError

LONG_PRESS_S = 0.6        # Android's long-press timeout is 400-500 ms; the page fires at 400 ms
APP_NAMES = {"contacts": "contacts", "messages": "messages", "phone": "phone", "dialer": "phone",
             "calendar": "calendar", "notes": "notes", "expenses": "expenses", "clock": "clock",
             "settings": "settings", "browser": "browser", "chrome": "browser", "timer": "clock"}

_SCROLL = """([x, y, dir]) => {
  let el = x === null ? null : document.elementFromPoint(x, y);
  let box = null;
  for (let p = el; p; p = p.parentElement) {
    if (p.scrollHeight > p.clientHeight + 2 && getComputedStyle(p).overflowY === 'auto') { box = p; break; }
  }
  if (!box) box = [...document.querySelectorAll('#app .scroll')].find(b => b.scrollHeight > b.clientHeight + 2) || null;
  if (!box || dir === 'left' || dir === 'right') return false;
  const before = box.scrollTop;
  box.scrollBy({top: (dir === 'down' ? 1 : -1) * Math.round(box.clientHeight * 0.6), behavior: 'instant'});
  return box.scrollTop !== before;
}"""
_CLEAR = """() => { const el = document.activeElement;
  if (!el || !('value' in el)) return false;
  el.value = ''; el.dispatchEvent(new Event('input', {bubbles: true})); return true; }"""
_FOCUSED_EDITABLE = "() => !!document.activeElement && document.activeElement.matches('input,textarea')"


class Actuator:
    """Runs canonical actions against one leased page; agent mistakes raise ToolError."""

    def __init__(self, lease: ContextLease, screen: Screen, cdp: Any):
        self.lease = lease
        self.screen = screen
        self.cdp = cdp

    @property
    def page(self) -> Any:
        return self.lease.page

    def target(self, elements: list[UIElement], index: int | None, x: float | None, y: float | None,
               required: bool = True) -> tuple[float, float] | None:
        """The CSS point an action aims at: an element's centre (by index) or a pixel (x, y)."""
        if index is not None:
            if not 0 <= index < len(elements):
                raise ToolError(f"index {index} is out of range: the screen lists {len(elements)} UI elements (0-{len(elements) - 1})")
            return self.screen.to_css(*elements[index].center)
        if x is not None or y is not None:
            if x is None or y is None:
                raise ToolError("give both x and y (screenshot pixels), or an element index")
            if not self.screen.contains(x, y):
                w, h = self.screen.pixel_size
                raise ToolError(f"({x:g}, {y:g}) is off the screen ({w}x{h} pixels)")
            return self.screen.to_css(x, y)
        if required:
            raise ToolError("this action needs a target: an element index, or x and y")
        return None

    async def tap(self, point: tuple[float, float]) -> None:
        await self.lease.call(self.page.touchscreen.tap(*point), "tap")

    async def long_press(self, point: tuple[float, float]) -> None:
        touch = [{"x": point[0], "y": point[1]}]
        await self.lease.call(self.cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": touch}), "touch start")
        await asyncio.sleep(LONG_PRESS_S)  # the gesture itself lasts this long
        await self.lease.call(self.cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []}), "touch end")

    async def input_text(self, point: tuple[float, float] | None, text: str, clear: bool) -> None:
        if point is not None:
            await self.tap(point)
        if not await self.lease.call(self.page.evaluate(_FOCUSED_EDITABLE), "focused field"):
            raise ToolError("input_text: no text field is focused (target an editable element)")
        if clear:
            await self.lease.call(self.page.evaluate(_CLEAR), "clear text")
        if text:
            await self.lease.call(self.page.keyboard.insert_text(text), "insert text")
        await self.enter()

    async def enter(self) -> None:
        await self.lease.call(self.page.keyboard.press("Enter"), "press Enter")

    async def scroll(self, point: tuple[float, float] | None, direction: str) -> bool:
        """Scroll the list under `point` (or the screen's list) so content in `direction` comes into view."""
        args = [point[0], point[1], direction] if point else [None, None, direction]
        return bool(await self.lease.call(self.page.evaluate(_SCROLL, args), "scroll"))

    async def swipe(self, point: tuple[float, float] | None, direction: str) -> bool:
        """A finger swipe: the content moves with the finger (swipe up scrolls down)."""
        return await self.scroll(point, scroll_for_swipe(direction))

    async def system(self, key: str, arg: str | None = None) -> None:
        """Back, home or launching an app, as the system shell handles them."""
        call = {"back": "window.__phoneNav.back()", "home": "window.__phoneNav.home()",
                "open": f"window.__phoneNav.open({arg!r})"}[key]
        await self.lease.call(self.page.evaluate(f"() => {{ {call}; }}"), key)


def app_id(name: str) -> str:
    """The app an open_app name refers to (case-insensitive, a few aliases); ToolError for unknown apps."""
    key = str(name).strip().lower()
    if key not in APP_NAMES:
        known = sorted({v.capitalize() for v in APP_NAMES.values()})
        raise ToolError(f"no app named {name!r}; installed apps: {', '.join(known)}")
    return APP_NAMES[key]
