"""BrowserGym-style observations: element ids ("bids") marked in the DOM, the CDP accessibility tree rendered
as ``[bid] role 'name', props`` lines, the URL, the focused element and an optional set-of-marks screenshot.

Bids are written as a ``bid`` attribute and kept across steps (an element keeps its id; new elements get
new ones; a cloned duplicate is re-numbered). The AXTree comes from ``Accessibility.getFullAXTree`` and is
joined to the DOM through ``DOMSnapshot.captureSnapshot`` (backend node id -> bid, bounding box, cursor),
so nothing is smuggled through ARIA attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agentgym.envs.browser.host import guarded
from agentgym.envs.browser.marks import draw_marks

MARK_ELEMENTS = """(reset) => {
  if (reset || window.__agNextBid === undefined) {
    if (reset) for (const el of document.querySelectorAll('[bid]')) el.removeAttribute('bid');
    window.__agNextBid = 0;
  }
  const seen = new Set();
  for (const el of document.querySelectorAll('body, body *')) {
    let bid = el.getAttribute('bid');
    if (bid === null || seen.has(bid)) { bid = String(window.__agNextBid++); el.setAttribute('bid', bid); }
    seen.add(bid);
  }
  const a = document.activeElement;
  return a && a !== document.body ? a.getAttribute('bid') : null;
}"""

SOM_TAGS = frozenset({"INPUT", "TEXTAREA", "SELECT", "BUTTON", "A", "IFRAME", "VIDEO", "LI", "TD", "OPTION"})
_SKIP_ROLES = frozenset({"InlineTextBox", "none", "LineBreak", "ListMarker"})
_PROPS = ("checked", "selected", "expanded", "pressed", "disabled", "required", "readonly", "invalid")


@dataclass(frozen=True)
class Element:
    """What the snapshot knows about one marked element."""

    bid: str
    tag: str
    bbox: tuple[float, float, float, float] | None  # x, y, width, height in CSS pixels
    pointer: bool  # cursor: pointer starts here (not inherited from a clickable parent)


@dataclass
class PageObservation:
    """One observation of a page."""

    url: str
    title: str
    axtree: str
    focused_bid: str | None
    elements: dict[str, Element] = field(default_factory=dict)
    screenshot: bytes | None = None

    def text(self, last_action_error: str | None = None) -> str:
        """The prompt-ready text: URL, focus, last error, then the accessibility tree."""
        lines = [f"URL: {self.url}", f"Focused element: {'[' + self.focused_bid + ']' if self.focused_bid else 'none'}"]
        if last_action_error:
            lines.append(f"Last action error: {last_action_error}")
        lines += ["Accessibility tree:", self.axtree]
        return "\n".join(lines)


def _snapshot_elements(snap: dict[str, Any]) -> dict[int, Element]:
    """backend node id -> Element for every node of the main document carrying a bid."""
    strings = snap["strings"]
    doc = snap["documents"][0]
    nodes, layout = doc["nodes"], doc["layout"]
    bounds: dict[int, tuple[float, float, float, float]] = {}
    cursor: dict[int, str] = {}
    for i, node_index in enumerate(layout["nodeIndex"]):
        x, y, w, h = layout["bounds"][i]
        bounds[node_index] = (round(x, 1), round(y, 1), round(w, 1), round(h, 1))
        styles = layout["styles"][i]
        if styles:
            cursor[node_index] = strings[styles[0]]
    parents = nodes["parentIndex"]
    out: dict[int, Element] = {}
    for i, attrs in enumerate(nodes["attributes"]):
        bid = None
        for k in range(0, len(attrs), 2):
            if strings[attrs[k]] == "bid":
                bid = strings[attrs[k + 1]]
                break
        if bid is None:
            continue
        pointer = cursor.get(i) == "pointer" and cursor.get(parents[i]) != "pointer"
        out[nodes["backendNodeId"][i]] = Element(bid, strings[nodes["nodeName"][i]], bounds.get(i), pointer)
    return out


def _value(field_: Any) -> Any:
    return field_.get("value") if isinstance(field_, dict) else None


def _quote(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[:limit] + "..."
    return "'" + text.replace("'", "\\'") + "'"


def render_axtree(ax_nodes: list[dict[str, Any]], elements: dict[int, Element]) -> str:
    """Flatten the CDP AXTree to BrowserGym-style text lines (tab-indented by depth)."""
    by_id = {n["nodeId"]: n for n in ax_nodes}
    child_ids = {c for n in ax_nodes for c in n.get("childIds", ())}
    roots = [n for n in ax_nodes if n["nodeId"] not in child_ids]
    lines: list[str] = []

    def visit(node: dict[str, Any], depth: int, parent_name: str) -> None:
        role = _value(node.get("role")) or ""
        name = _value(node.get("name")) or ""
        element = elements.get(node.get("backendDOMNodeId", -1))
        show = not node.get("ignored") and role not in _SKIP_ROLES
        if show and role == "generic" and not (element is not None and element.pointer):
            show = False
        if show and role == "StaticText" and (not name.strip() or name.strip() == parent_name.strip()):
            show = False
        next_depth, next_name = depth, parent_name
        if show:
            parts = [f"{'[' + element.bid + '] ' if element is not None and role != 'StaticText' else ''}{role} {_quote(name)}"]
            value = _value(node.get("value"))
            if value not in (None, "") and role not in ("StaticText", "RootWebArea"):
                parts.append(f"value={_quote(value)}")
            focused = False
            for prop in node.get("properties", ()):
                pname, pval = prop.get("name"), _value(prop.get("value"))
                if pname == "focused":
                    focused = bool(pval)
                elif pname == "checked":
                    parts.append(f"checked={_quote(str(pval).lower())}")
                elif pname in _PROPS and pval not in (None, False, "false"):
                    parts.append(pname if pval in (True, "true") else f"{pname}={_quote(str(pval))}")
            if focused:
                parts.append("focused")
            if element is not None and element.pointer and role != "StaticText":
                parts.append("clickable")
            lines.append("\t" * depth + ", ".join(parts))
            next_depth, next_name = depth + 1, name
        for cid in node.get("childIds", ()):
            child = by_id.get(cid)
            if child is not None:
                visit(child, next_depth, next_name)

    for root in roots:
        visit(root, 0, "")
    return "\n".join(lines)


class Observer:
    """Observes one page through its own CDP session (every call under a deadline)."""

    def __init__(self, page: Any, cdp: Any, timeout_s: float = 10.0):
        self.page = page
        self.cdp = cdp
        self.timeout_s = timeout_s

    @classmethod
    async def attach(cls, context: Any, page: Any, timeout_s: float = 10.0) -> Observer:
        """Open a CDP session on `page`."""
        cdp = await guarded(context.new_cdp_session(page), timeout_s, "new_cdp_session")
        return cls(page, cdp, timeout_s)

    async def mark(self, reset: bool = False) -> str | None:
        """(Re)mark elements with bids; returns the focused element's bid. `reset` renumbers from 0."""
        return await guarded(self.page.evaluate(MARK_ELEMENTS, reset), self.timeout_s, "mark elements")

    async def observe(self, *, screenshot: bool = False, reset_bids: bool = False) -> PageObservation:
        """Mark, then read the AXTree and DOM snapshot concurrently (and a screenshot if asked)."""
        focused = await self.mark(reset_bids)
        jobs = [guarded(self.cdp.send("Accessibility.getFullAXTree"), self.timeout_s, "Accessibility.getFullAXTree"),
                guarded(self.cdp.send("DOMSnapshot.captureSnapshot", {"computedStyles": ["cursor"]}), self.timeout_s,
                        "DOMSnapshot.captureSnapshot"),
                guarded(self.page.title(), self.timeout_s, "page.title")]
        if screenshot:
            jobs.append(guarded(self.page.screenshot(type="png"), self.timeout_s, "page.screenshot"))
        results = await asyncio.gather(*jobs)
        ax, snap, title = results[0], results[1], results[2]
        by_backend = _snapshot_elements(snap)
        obs = PageObservation(url=self.page.url, title=title, axtree=render_axtree(ax["nodes"], by_backend),
                              focused_bid=focused, elements={e.bid: e for e in by_backend.values()})
        if screenshot:
            obs.screenshot = set_of_marks(results[3], obs.elements.values())
        return obs


def set_of_marks(png: bytes, elements: Iterable[Element]) -> bytes:
    """Draw a box and its bid on the screenshot for every interactive element that has a box."""
    return draw_marks(png, ((el.bid, (x, y, x + w, y + h)) for el in elements
                            if el.bbox is not None and (el.tag in SOM_TAGS or el.pointer) for x, y, w, h in [el.bbox]),
                      "web")
