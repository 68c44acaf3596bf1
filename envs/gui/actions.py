"""GUI actions: AndroidWorld's JSON actions as the canonical form, and parsers that read AndroidWorld JSON text,
AitW / DigiRL (AutoUI) DUAL_POINT actions and CogAgent-style ``tap [[x,y]]`` commands into it.

A parsed action becomes a tool call named by its ``action_type`` with AndroidWorld's fields as arguments, so every
format runs through the same validated tools. Coordinates are converted only by ``agentgym.envs.gui.coords``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentgym.envs.gui.coords import SWIPE_MACROS, Screen, is_tap, swipe_direction, yx_to_xy
from agentgym.messages import Message
from agentgym.tool_calls import ParsedAction, ToolCall, ToolResult

ACTION_TYPES = ("click", "long_press", "double_tap", "input_text", "keyboard_enter", "navigate_back",
                "navigate_home", "open_app", "scroll", "swipe", "wait", "status", "answer")
DIRECTIONS = ("up", "down", "left", "right")
# AitW's numeric action types (android_in_the_wild/action_type.py)
AITW_TYPES = {3: "TYPE", 4: "DUAL_POINT", 5: "PRESS_BACK", 6: "PRESS_HOME", 7: "PRESS_ENTER",
              10: "STATUS_TASK_COMPLETE", 11: "STATUS_TASK_IMPOSSIBLE"}


class ActionFormatError(ValueError):
    """The text names an action in a known format but its fields are wrong."""


@dataclass(frozen=True)
class PhoneAction:
    """AndroidWorld's JSONAction: ``action_type`` and the fields it uses (pixels are screenshot pixels)."""

    action_type: str
    index: int | None = None
    x: int | None = None
    y: int | None = None
    text: str | None = None
    direction: str | None = None
    goal_status: str | None = None
    app_name: str | None = None
    clear_text: bool | None = None

    def arguments(self) -> dict[str, Any]:
        """The tool arguments (fields that are set, minus action_type)."""
        return {k: v for k, v in self.__dict__.items() if k != "action_type" and v is not None}

    def to_json(self) -> str:
        """AndroidWorld's JSON text of this action."""
        return json.dumps({"action_type": self.action_type, **self.arguments()})


def _json_object(text: str) -> Any:
    """The first {...} object in `text` (models wrap it in prose: 'Action: {...}')."""
    start = text.find("{")
    if start < 0:
        raise ActionFormatError("no JSON object found")
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except (ValueError, RecursionError) as exc:
        raise ActionFormatError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, Mapping):
        raise ActionFormatError("the action must be a JSON object")
    return obj


def _point(value: Any, what: str) -> tuple[float, float]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ActionFormatError(f"{what} must be a [y, x] pair") from None
    if (not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise ActionFormatError(f"{what} must be a [y, x] pair of numbers in [0, 1]")
    if not all(0.0 <= float(v) <= 1.0 for v in value):
        raise ActionFormatError(f"{what} must be normalised to [0, 1]")
    return float(value[0]), float(value[1])


def from_dual_point(screen: Screen, touch_xy: tuple[float, float], lift_xy: tuple[float, float]) -> PhoneAction:
    """A normalised touch -> lift gesture: a click if within AitW's threshold, else a swipe from the touch point."""
    x, y = screen.from_normalized(*touch_xy)
    if is_tap(touch_xy, lift_xy):
        return PhoneAction("click", x=x, y=y)
    return PhoneAction("swipe", x=x, y=y, direction=swipe_direction(touch_xy, lift_xy))


def parse_aitw(obj: Mapping[str, Any], screen: Screen) -> PhoneAction:
    """An AitW / DigiRL action dict (AitW's touch_yx/lift_yx or AutoUI's touch_point/lift_point, both y-first)."""
    kind = obj.get("action_type")
    if isinstance(kind, int) and not isinstance(kind, bool):
        kind = AITW_TYPES.get(kind, str(kind))
    kind = str(kind).upper().replace(" ", "_")
    if kind in ("DUAL_POINT", "DUALPOINT"):
        touch = _point(obj.get("touch_yx", obj.get("touch_point")), "touch point")
        lift = _point(obj.get("lift_yx", obj.get("lift_point", obj.get("touch_yx", obj.get("touch_point")))), "lift point")
        return from_dual_point(screen, yx_to_xy(touch), yx_to_xy(lift))
    if kind == "TYPE":
        return PhoneAction("input_text", text=str(obj.get("typed_text", obj.get("text", ""))))
    simple = {"PRESS_BACK": PhoneAction("navigate_back"), "GOBACK": PhoneAction("navigate_back"),
              "PRESS_HOME": PhoneAction("navigate_home"), "GOHOME": PhoneAction("navigate_home"),
              "PRESS_ENTER": PhoneAction("keyboard_enter"), "ENTER": PhoneAction("keyboard_enter"),
              "STATUS_TASK_COMPLETE": PhoneAction("status", goal_status="complete"),
              "TASKCOMPLETE": PhoneAction("status", goal_status="complete"),
              "STATUS_TASK_IMPOSSIBLE": PhoneAction("status", goal_status="infeasible"),
              "TASKIMPOSSIBLE": PhoneAction("status", goal_status="infeasible"), "IDLE": PhoneAction("wait")}
    if kind in simple:
        return simple[kind]
    raise ActionFormatError(f"unknown AitW action type {obj.get('action_type')!r}")


# Agent text is adversarial (up to the action length limit), so every repeat below is possessive: no regex here
# backtracks, and the unanchored ones (findall, search) can only start a try at a quoted field name.
# A JSON-style string value stops at its closing quote or at a backslash before a newline, never inside an escape.
_AUTOUI_FIELD = re.compile(r'"(action_type|touch_point|lift_point|typed_text)"\s*+:\s*+"((?:[^"\\]|\\.)*+)"')
_AITW_TYPE = re.compile(r'"action_type"\s*+:\s*+("[A-Z_]++"|\d++)')  # AitW's upper-case or numeric action types
_COG_POINT = re.compile(r"^(tap|click|long_press|long press|double_tap|double tap)\s*+\[\[\s*+(-?[\d.]++)\s*+,\s*+"
                        r"(-?[\d.]++)\s*+\]\]$", re.I)
_COG_SWIPE = re.compile(r"^swipe\s++(up|down|left|right)$", re.I)
_COG_TYPE = re.compile(r"type\s*+[\[\"']", re.I)  # the opening of ``type [text]``; the text runs to the last closer
_COG_TYPE_CLOSERS = "]\"'"
_COG_PRESS = {"press back": PhoneAction("navigate_back"), "press home": PhoneAction("navigate_home"),
              "press enter": PhoneAction("keyboard_enter"), "task complete": PhoneAction("status", goal_status="complete"),
              "task impossible": PhoneAction("status", goal_status="infeasible"), "wait": PhoneAction("wait")}


def parse_autoui(text: str, screen: Screen) -> PhoneAction:
    """DigiRL's AutoUI text: ``Action Decision: "action_type": "DUAL_POINT", "touch_point": "[y, x]", ...``."""
    fields = {k: v for k, v in _AUTOUI_FIELD.findall(text)}
    if "action_type" not in fields:
        raise ActionFormatError('AutoUI actions need "action_type": "..."')
    obj: dict[str, Any] = {"action_type": fields["action_type"], "typed_text": fields.get("typed_text", "")}
    for key in ("touch_point", "lift_point"):
        if key in fields:
            obj[key] = fields[key]
    return parse_aitw(obj, screen)


def parse_cogagent(line: str, screen: Screen) -> PhoneAction:
    """CogAgent / DigiRL commands: ``tap [[x,y]]`` (0-1000 grid, x first), ``swipe up``, ``type [text]``, ``press back``."""
    line = line.strip().rstrip(".")
    if m := _COG_POINT.match(line):
        gx, gy = float(m.group(2)), float(m.group(3))
        if not (0 <= gx <= 1000 and 0 <= gy <= 1000):
            raise ActionFormatError("grid coordinates must be in 0..1000")
        x, y = screen.from_grid(gx, gy)
        kind = m.group(1).lower().replace(" ", "_")
        return PhoneAction("click" if kind in ("tap", "click") else kind, x=x, y=y)
    if m := _COG_SWIPE.match(line):
        touch, lift = SWIPE_MACROS[m.group(1).lower()]
        return from_dual_point(screen, touch, lift)
    if (typed := _typed_text(line)) is not None:
        return PhoneAction("input_text", text=typed)
    if (press := _COG_PRESS.get(line.lower())) is not None:
        return press
    raise ActionFormatError(f"unknown command {line[:80]!r}")


def _typed_text(line: str) -> str | None:
    """The text of ``type [text]``, or None: from the opening (``[``, ``"`` or ``'``) to a closer (``]``, ``"``
    or ``'``) that ends the line or stands before its final newline; the text may hold closers and newlines."""
    opening = _COG_TYPE.match(line)
    if opening is None:
        return None
    start, end = opening.end(), len(line)
    if end - 1 >= start and line[end - 1] in _COG_TYPE_CLOSERS:
        return line[start:end - 1]
    if end - 2 >= start and line[end - 1] == "\n" and line[end - 2] in _COG_TYPE_CLOSERS:
        return line[start:end - 2]
    return None


def parse_androidworld(obj: Mapping[str, Any]) -> PhoneAction:
    """An AndroidWorld JSON action dict (``{"action_type": "click", "index": 3}``)."""
    kind = obj.get("action_type")
    if kind not in ACTION_TYPES:
        raise ActionFormatError(f"unknown action_type {kind!r}; expected one of {', '.join(ACTION_TYPES)}")
    fields = {k: v for k, v in obj.items() if k != "action_type"}
    if "keycode" in fields:  # AndroidWorld's keycode field is only meaningful for KEYCODE_ENTER here
        fields.pop("keycode")
    try:
        return PhoneAction(kind, **fields)
    except TypeError:
        known = ", ".join(f for f in PhoneAction.__dataclass_fields__ if f != "action_type")
        raise ActionFormatError(f"unknown fields in {sorted(fields)}; AndroidWorld actions use {known}") from None


class _PhoneFormat:
    """Base of the GUI's text formats: one action per message, results rendered as a user message."""

    name = "phone"

    def __init__(self, screen: Screen):
        self.screen = screen

    def convert(self, text: str) -> PhoneAction:
        raise NotImplementedError

    def parse(self, message: Mapping[str, Any], text: str, turn: int) -> ParsedAction:
        parsed = ParsedAction(self.name)
        try:
            action = self.convert(text)
        except ActionFormatError as exc:
            parsed.errors.append(ToolResult(None, f"could not read the {self.name} action: {exc}", True))
            return parsed
        parsed.calls.append(ToolCall(action.action_type, action.arguments(), f"call_{turn}_0"))
        return parsed

    def render(self, results: Sequence[ToolResult]) -> list[Message]:
        return [{"role": "user", "content": "\n".join(("Error: " if r.is_error else "") + r.content for r in results)}]


class AndroidWorldFormat(_PhoneFormat):
    """AndroidWorld / M3A text: ``Reason: ... Action: {"action_type": "click", "index": 3}``."""

    name = "androidworld"

    def detect(self, message: Mapping[str, Any], text: str) -> bool:
        return '"action_type"' in text and "{" in text and "Action Decision" not in text \
            and _AITW_TYPE.search(text) is None

    def convert(self, text: str) -> PhoneAction:
        return parse_androidworld(_json_object(text))


class AitwFormat(_PhoneFormat):
    """AitW JSON (``{"action_type": "DUAL_POINT", "touch_yx": [y, x], "lift_yx": [y, x]}``) and DigiRL AutoUI text."""

    name = "aitw"

    def detect(self, message: Mapping[str, Any], text: str) -> bool:
        return "Action Decision" in text or _AITW_TYPE.search(text) is not None

    def convert(self, text: str) -> PhoneAction:
        if "Action Decision" in text:
            return parse_autoui(text, self.screen)
        return parse_aitw(_json_object(text), self.screen)


class CogAgentFormat(_PhoneFormat):
    """CogAgent / DigiRL commands on a 0-1000 grid: ``tap [[500,120]]``, ``swipe up``, ``type [hello]``."""

    name = "cogagent"
    _DETECT = re.compile(r"^\s*+(tap|click|long[_ ]press|double[_ ]tap)\s*+\[\[|^\s*+swipe\s++(up|down|left|right)\b|"
                         r"^\s*+type\s*+\[|^\s*+(press (back|home|enter)|task (complete|impossible))\b", re.I)

    def detect(self, message: Mapping[str, Any], text: str) -> bool:
        stripped = text.strip()
        return bool(self._DETECT.match(stripped.splitlines()[-1] if stripped else ""))

    def convert(self, text: str) -> PhoneAction:
        return parse_cogagent(text.strip().splitlines()[-1], self.screen)
