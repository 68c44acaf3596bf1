"""GUI coordinate conversions and action parsers, pinned by hand-checked examples (no browser needed)."""

from __future__ import annotations

import pytest

from agentgym.envs.gui.actions import (ActionFormatError, AitwFormat, AndroidWorldFormat, CogAgentFormat, PhoneAction,
                                       parse_aitw, parse_androidworld, parse_autoui, parse_cogagent)
from agentgym.envs.gui.coords import Screen, is_tap, scroll_for_swipe, swipe_direction, yx_to_xy
from agentgym.tool_calls import parse_action

PIXEL = Screen()                       # 412 x 839 CSS px, DPR 1
HIDPI = Screen(dpr=2.625)              # Pixel 7's real density


def test_screen_conversions_by_hand():
    assert PIXEL.pixel_size == (412, 839)
    assert PIXEL.from_normalized(0.5, 0.5) == (206, 420)          # 419.5 rounds to even
    assert PIXEL.from_normalized(1.0, 1.0) == (411, 838)          # clamped onto the screen
    assert PIXEL.from_grid(500, 120) == (206, 101)                # 0.12 * 839 = 100.68
    assert HIDPI.pixel_size == (1082, 2202)
    assert HIDPI.to_css(262.5, 525) == (100.0, 200.0)
    assert HIDPI.to_pixels(100, 200) == (262, 525)                # 262.5 rounds to even
    assert PIXEL.normalized(206, 419.5) == (0.5, 0.5)
    assert PIXEL.contains(0, 0) and PIXEL.contains(411, 838) and not PIXEL.contains(412, 10) and not PIXEL.contains(5, -1)


def test_aitw_geometry_rules():
    assert yx_to_xy((0.2, 0.7)) == (0.7, 0.2)
    assert is_tap((0.5, 0.5), (0.52, 0.53))                       # 0.036 apart
    assert not is_tap((0.5, 0.5), (0.5, 0.55))                    # 0.05 apart
    assert is_tap((0.0, 0.0), (0.0, 0.04))                        # exactly the 0.04 threshold is still a tap
    assert swipe_direction((0.5, 0.8), (0.5, 0.2)) == "up"
    assert swipe_direction((0.2, 0.5), (0.9, 0.45)) == "right"
    assert scroll_for_swipe("up") == "down" and scroll_for_swipe("left") == "right"


@pytest.mark.parametrize("obj, expected", [
    ({"action_type": "DUAL_POINT", "touch_yx": [0.25, 0.5], "lift_yx": [0.25, 0.5]}, PhoneAction("click", x=206, y=210)),
    ({"action_type": 4, "touch_yx": [0.8, 0.5], "lift_yx": [0.2, 0.5]}, PhoneAction("swipe", x=206, y=671, direction="up")),
    ({"action_type": "DUAL_POINT", "touch_yx": [0.5, 0.1], "lift_yx": [0.52, 0.12]}, PhoneAction("click", x=41, y=420)),
    ({"action_type": 3, "typed_text": "hi there"}, PhoneAction("input_text", text="hi there")),
    ({"action_type": 5}, PhoneAction("navigate_back")),
    ({"action_type": "PRESS_HOME"}, PhoneAction("navigate_home")),
    ({"action_type": 7}, PhoneAction("keyboard_enter")),
    ({"action_type": "STATUS_TASK_COMPLETE"}, PhoneAction("status", goal_status="complete")),
    ({"action_type": 11}, PhoneAction("status", goal_status="infeasible")),
])
def test_aitw_actions(obj, expected):
    assert parse_aitw(obj, PIXEL) == expected


def test_digirl_autoui_text():
    text = ('Action Plan: [DUAL_POINT,TYPE] ; Action Decision: "action_type": "DUAL_POINT", '
            '"touch_point": "[0.1, 0.9]", "lift_point": "[0.1, 0.9]", "typed_text": ""')
    assert parse_autoui(text, PIXEL) == PhoneAction("click", x=371, y=84)   # y first: x = 0.9 * 412
    typed = 'Action Decision: "action_type": "TYPE", "touch_point": "[-1.0, -1.0]", "lift_point": "[-1.0, -1.0]", "typed_text": "pizza"'
    assert parse_autoui(typed, PIXEL) == PhoneAction("input_text", text="pizza")


@pytest.mark.parametrize("line, expected", [
    ("tap [[500,120]]", PhoneAction("click", x=206, y=101)),
    ("long press [[0, 1000]]", PhoneAction("long_press", x=0, y=838)),
    ("swipe up", PhoneAction("swipe", x=206, y=671, direction="up")),
    ("swipe left", PhoneAction("swipe", x=330, y=420, direction="left")),
    ("type [hello world]", PhoneAction("input_text", text="hello world")),
    ('Type "hi"', PhoneAction("input_text", text="hi")),
    ("type [a] [b]]", PhoneAction("input_text", text="a] [b]")),   # the text runs to the closer that ends the line
    ("type [x]\n.", PhoneAction("input_text", text="x")),          # a closer before a final newline also ends it
    ("press home", PhoneAction("navigate_home")),
    ("task complete", PhoneAction("status", goal_status="complete")),
])
def test_cogagent_commands(line, expected):
    assert parse_cogagent(line, PIXEL) == expected


def test_androidworld_json():
    assert parse_androidworld({"action_type": "click", "index": 3}) == PhoneAction("click", index=3)
    assert parse_androidworld({"action_type": "input_text", "text": "x", "x": 10, "y": 20, "clear_text": True}) == \
        PhoneAction("input_text", x=10, y=20, text="x", clear_text=True)
    assert PhoneAction("scroll", direction="down", index=2).to_json() == '{"action_type": "scroll", "index": 2, "direction": "down"}'


@pytest.mark.parametrize("bad", [
    lambda: parse_aitw({"action_type": "DUAL_POINT", "touch_yx": [1.5, 0.2], "lift_yx": [0.1, 0.2]}, PIXEL),
    lambda: parse_aitw({"action_type": "DUAL_POINT", "touch_yx": "nope"}, PIXEL),
    lambda: parse_aitw({"action_type": 99}, PIXEL),
    lambda: parse_cogagent("tap [[1200, 5]]", PIXEL),
    lambda: parse_cogagent("fly away", PIXEL),
    lambda: parse_cogagent("type [no closer", PIXEL),
    lambda: parse_cogagent("type [a] b", PIXEL),
    lambda: parse_androidworld({"action_type": "teleport"}),
    lambda: parse_androidworld({"action_type": "click", "elbow": 1}),
])
def test_malformed_actions_raise_format_errors(bad):
    with pytest.raises(ActionFormatError):
        bad()


def test_each_format_is_detected_and_becomes_a_canonical_tool_call():
    parsers = ["openai", "hermes", AndroidWorldFormat(PIXEL), AitwFormat(PIXEL), CogAgentFormat(PIXEL)]
    from agentgym.tool_calls import resolve_parsers
    ps = resolve_parsers(parsers)
    cases = {
        'Reason: open it.\nAction: {"action_type": "open_app", "app_name": "Contacts"}': ("androidworld", "open_app", {"app_name": "Contacts"}),
        '{"action_type": "DUAL_POINT", "touch_yx": [0.25, 0.5], "lift_yx": [0.25, 0.5]}': ("aitw", "click", {"x": 206, "y": 210}),
        'Action Decision: "action_type": "PRESS_BACK", "touch_point": "[-1.0, -1.0]"': ("aitw", "navigate_back", {}),
        "I will tap it.\ntap [[500,120]]": ("cogagent", "click", {"x": 206, "y": 101}),
        '<tool_call>{"name": "scroll", "arguments": {"direction": "down"}}</tool_call>': ("hermes", "scroll", {"direction": "down"}),
    }
    for text, (fmt, name, args) in cases.items():
        parsed = parse_action(text, ps)
        assert parsed is not None and parsed.format == fmt and not parsed.errors, text
        assert (parsed.calls[0].name, parsed.calls[0].arguments) == (name, args)
    broken = parse_action('{"action_type": "DUAL_POINT", "touch_yx": [7, 7]}', ps)
    assert broken.format == "aitw" and not broken.calls and "normalised" in broken.errors[0].content
