"""GUI observations: a stable screenshot and the on-screen UI elements in AndroidWorld's UIElement schema,
read from the DOM (class name, text, content description, hint, bounds, flags, resource id), with an optional
set-of-marks overlay (M3A) and a text rendering (T3A).

Only elements actually visible are listed: inside the screen, inside their scrolling list's viewport, and not
covered by the soft keyboard or a dialog (hit-tested), as an accessibility tree omits recycled off-screen rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from agentgym.envs.browser.host import guarded
from agentgym.envs.browser.marks import draw_marks
from agentgym.envs.gui.coords import Screen

COLLECT = """() => {
  const out = [];
  const H = innerHeight, Wd = innerWidth;
  for (const el of document.querySelectorAll('[data-cls]')) {
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    let top = Math.max(r.top, 0), bottom = Math.min(r.bottom, H), left = Math.max(r.left, 0), right = Math.min(r.right, Wd);
    for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (s.overflowY === 'auto' || s.overflowY === 'scroll' || s.overflow === 'hidden') {
        const q = p.getBoundingClientRect();
        top = Math.max(top, q.top); bottom = Math.min(bottom, q.bottom); left = Math.max(left, q.left); right = Math.min(right, q.right);
      }
    }
    if (bottom - top < 4 || right - left < 4) continue;
    const cx = (left + right) / 2, cy = (top + bottom) / 2;
    const hit = document.elementFromPoint(cx, cy);
    if (!hit || !(hit === el || el.contains(hit) || hit.contains(el))) continue;
    const tag = el.tagName;
    const editable = tag === 'INPUT' || tag === 'TEXTAREA';
    const scrollable = el.scrollHeight > el.clientHeight + 2 && getComputedStyle(el).overflowY === 'auto';
    const checked = el.getAttribute('aria-checked');
    let text = editable ? el.value : (el.dataset.cls === 'android.widget.TextView' || el.dataset.cls === 'android.widget.Button'
      || el.dataset.cls === 'android.widget.RadioButton') ? (el.dataset.text ?? el.innerText.trim()) : '';
    if (el.dataset.cls === 'android.widget.ImageButton' || el.dataset.cls === 'android.widget.Switch') text = '';
    out.push({text: text || null, content_description: el.getAttribute('aria-label'), class_name: el.dataset.cls,
      bbox: [left, top, right, bottom], hint_text: el.getAttribute('placeholder'),
      is_checked: checked === 'true' || el.getAttribute('aria-selected') === 'true', is_checkable: checked !== null,
      is_clickable: !!el.dataset.act || tag === 'BUTTON' || editable, is_editable: editable,
      is_focused: document.activeElement === el, is_scrollable: scrollable, is_long_clickable: !!el.dataset.long,
      resource_id: el.dataset.rid || null});
  }
  return {elements: out, keyboard: document.getElementById('kbd').classList.contains('show'), version: window.__phone.version};
}"""

STABLE = """async (capMs) => {
  const P = window.__phone, s = window.__agSettle, t0 = performance.now();
  const frame = () => new Promise((resolve) => { requestAnimationFrame(() => resolve()); setTimeout(resolve, 50); });
  let last = -1, quiet = 0;
  while (performance.now() - t0 < capMs) {
    await frame();
    const busy = !P || !P.ready || P.busy > 0 || document.getAnimations().length > 0;
    const m = s ? s.mutations : 0;
    if (!busy && m === last) { if (++quiet >= 2) return true; } else { quiet = 0; last = m; }
  }
  return false;
}"""


@dataclass(frozen=True)
class UIElement:
    """AndroidWorld's representation_utils.UIElement (the fields this device fills); bbox in screenshot pixels."""

    text: str | None
    content_description: str | None
    class_name: str
    bbox_pixels: tuple[int, int, int, int]   # x_min, y_min, x_max, y_max
    hint_text: str | None = None
    is_checked: bool = False
    is_checkable: bool = False
    is_clickable: bool = False
    is_editable: bool = False
    is_focused: bool = False
    is_scrollable: bool = False
    is_long_clickable: bool = False
    resource_id: str | None = None
    package_name: str = "com.agentgym.phoneos"

    @property
    def center(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.bbox_pixels
        return (x0 + x1) // 2, (y0 + y1) // 2

    def describe(self) -> str:
        """One compact JSON line (T3A's element list), false flags and empty fields left out."""
        d = {k: v for k, v in asdict(self).items() if v not in (None, False, "") and k != "package_name"}
        return json.dumps(d, ensure_ascii=False)


@dataclass
class ScreenObservation:
    """One stable observation of the device."""

    elements: list[UIElement]
    keyboard_open: bool
    screenshot: bytes | None = None

    def text(self) -> str:
        """The element list as text, one ``UI element i: {...}`` per line (indices are what ``index`` refers to)."""
        lines = [f"UI element {i}: {e.describe()}" for i, e in enumerate(self.elements)]
        if self.keyboard_open:
            lines.append("(the soft keyboard is open)")
        return "\n".join(lines)


def parse_elements(raw: list[dict[str, Any]], screen: Screen) -> list[UIElement]:
    """The page's element dicts as UIElements with bounds in screenshot pixels."""
    out = []
    for r in raw:
        x0, y0 = screen.to_pixels(r["bbox"][0], r["bbox"][1])
        x1, y1 = screen.to_pixels(r["bbox"][2], r["bbox"][3])
        fields = {k: v for k, v in r.items() if k != "bbox"}
        out.append(UIElement(bbox_pixels=(x0, y0, x1, y1), **fields))
    return out


async def stabilize(page: Any, cap_ms: float = 1000.0, timeout_s: float = 10.0) -> bool:
    """Wait for a still screen: no store call in flight, no animation, no DOM mutation over two frames (capped)."""
    return bool(await guarded(page.evaluate(STABLE, cap_ms), timeout_s, "stabilize"))


async def observe(page: Any, screen: Screen, *, screenshot: bool = True, marks: bool = False,
                  timeout_s: float = 10.0) -> ScreenObservation:
    """Read the element list and (optionally) a PNG screenshot of the stable screen."""
    raw = await guarded(page.evaluate(COLLECT), timeout_s, "collect elements")
    obs = ScreenObservation(parse_elements(raw["elements"], screen), bool(raw["keyboard"]))
    if screenshot:
        png = await guarded(page.screenshot(type="png", animations="disabled", caret="hide"), timeout_s, "screenshot")
        obs.screenshot = set_of_marks(png, obs.elements) if marks else png
    return obs


def set_of_marks(png: bytes, elements: list[UIElement]) -> bytes:
    """Draw each element's box and index on the screenshot (M3A's set-of-marks)."""
    return draw_marks(png, ((str(i), e.bbox_pixels) for i, e in enumerate(elements)), "gui")
