"""The oracle solver: plays a template's plan through the real UI, reading each step's target off the current
element list, dismissing pop-ups, closing the keyboard and scrolling lists until the target is on screen."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentgym.envs.gui.actions import PhoneAction
from agentgym.envs.gui.observation import ScreenObservation, UIElement
from agentgym.envs.gui.tasks.base import Step

MAX_SCROLLS = 12


def find(elements: Sequence[UIElement], target: Mapping[str, str]) -> int | None:
    """Index of the first element whose fields equal every field of `target`."""
    for i, e in enumerate(elements):
        if all(getattr(e, k) == v for k, v in target.items()):
            return i
    return None


class OraclePlayer:
    """Steps through a plan; ``next(obs)`` returns the action for the current screen (None when stuck or done)."""

    def __init__(self, plan: Sequence[Step]):
        self.plan = list(plan)
        self.pc = 0
        self.scrolls = 0
        self.direction = "down"
        self._last_view: Any = None

    @property
    def position(self) -> dict[str, Any]:
        return {"pc": self.pc, "scrolls": self.scrolls, "direction": self.direction}

    def restore(self, position: Mapping[str, Any]) -> None:
        self.pc, self.scrolls, self.direction = int(position["pc"]), int(position["scrolls"]), str(position["direction"])

    def next(self, obs: ScreenObservation) -> PhoneAction | None:
        if self.pc >= len(self.plan):
            return None
        step, els = self.plan[self.pc], obs.elements
        if find(els, {"resource_id": "dialog/panel"}) is not None and not step.target.get("resource_id", "").startswith("dialog/"):
            dismiss = find(els, {"resource_id": "dialog/negative"})
            if dismiss is not None:
                return PhoneAction("click", index=dismiss)
        simple = {"open": PhoneAction("open_app", app_name=step.value), "back": PhoneAction("navigate_back"),
                  "done": PhoneAction("status", goal_status="complete"), "answer": PhoneAction("answer", text=step.value)}
        if step.op in simple:
            self._advance()
            return simple[step.op]
        index = find(els, step.target)
        if index is not None:
            self._advance()
            if step.op == "long":
                return PhoneAction("long_press", index=index)
            if step.op == "type":
                return PhoneAction("input_text", index=index, text=step.value, clear_text=True)
            return PhoneAction("click", index=index)
        if obs.keyboard_open:
            return PhoneAction("navigate_back")
        lists = [i for i, e in enumerate(els) if e.is_scrollable]
        if not lists or self.scrolls >= MAX_SCROLLS:
            return None
        view = tuple((e.text, e.resource_id) for e in els)
        if view == self._last_view:   # the last scroll moved nothing: the list ended, go the other way
            self.direction = "up" if self.direction == "down" else "down"
        self._last_view = view
        self.scrolls += 1
        return PhoneAction("scroll", index=lists[0], direction=self.direction)

    def _advance(self) -> None:
        self.pc += 1
        self.scrolls = 0
        self.direction = "down"
        self._last_view = None
