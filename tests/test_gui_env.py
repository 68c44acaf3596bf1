"""The GUI env in a real Chromium: gymnasium's checker, the oracle on every held-out test task through the UI (as
a soak with leak and memory checks), the random floor, the device's realism (keyboard, off-screen rows, pop-ups,
screenshots), action formats end to end, reward hacking through the UI, snapshot/restore, fuzzed actions
and infrastructure failures (no browser left behind when the owning process dies: test_browser.py)."""

from __future__ import annotations

import json
import struct

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentgym
from agentgym.benchmark import BenchConfig, run_benchmark
from agentgym.envs.browser.host import marked_browser_pids as our_browser_pids
from agentgym.envs.browser.watch import HostSampler
from agentgym.processes import alive
from agentgym.policies.oracle import OraclePolicy
from agentgym.policies.random_policy import RandomPolicy

ID = "agentgym/gui-phone-v0"


def text_of(obs: dict) -> str:
    return "\n".join(c if isinstance(c, str) else " ".join(p.get("text", "") for p in c)
                     for c in (m["content"] for m in obs["messages"]))


def index_of(env, **match) -> int:
    for i, e in enumerate(env.last_obs.elements):
        if all(getattr(e, k) == v for k, v in match.items()):
            return i
    raise AssertionError(f"no element {match} on screen:\n{env.last_obs.text()}")


def act(env, **action) -> tuple:
    return env.step("Action: " + json.dumps(action))


def test_gymnasium_make_passes_the_env_checker_and_leaves_no_browser():
    env = gymnasium.make(ID)
    check_env(env.unwrapped)
    env.close()
    assert our_browser_pids() == []


async def test_oracle_solves_every_held_out_test_task_as_a_soak_and_random_is_near_zero(tmp_path):
    """Every test task through the UI at concurrency 2: 100% success, no infra error, bounded browser memory, and
    no browser process seen during the run survives it."""
    async with HostSampler(interval_s=1.0) as sampler:
        oracle = await run_benchmark(BenchConfig(ID, "oracle", "test", concurrency=2), OraclePolicy(), tmp_path / "oracle")
        rand = await run_benchmark(BenchConfig(ID, "random", "test", episodes=16, concurrency=2), RandomPolicy(seed=0),
                                   tmp_path / "random")
    assert oracle["episodes"] >= 50 and oracle["success_rate"] == 1.0 and oracle["infra_errors"] == 0
    assert rand["episodes"] == 16 and rand["success_rate"] <= 0.0625 and rand["infra_errors"] == 0
    assert sampler.pids and sampler.peak_pss_mb < 2048
    # closing the last env stops the browser and waits for its processes: gone by now, no waiting here
    assert sampler.survivors() == []


@pytest.fixture(scope="module")
def env():
    e = agentgym.make(ID, split="test")
    yield e
    e.close()


def _task(env, family: str):
    return next(t for t in env.suite.tasks() if t.family == family)


def _dismiss(env) -> None:
    if any(e.resource_id == "dialog/panel" for e in env.last_obs.elements):
        act(env, action_type="click", index=index_of(env, resource_id="dialog/negative"))


def test_device_realism_keyboard_offscreen_rows_popups_and_screenshot(env):
    task = next(t for t in env.suite.tasks() if t.family == "contacts/delete_contact")
    obs, info = env.reset(seed=0, options={"task_id": task.id})
    png = obs["messages"][1]["content"][1]["image_url"]["url"]
    assert png.startswith("data:image/png;base64,")
    import base64
    raw = base64.b64decode(png.split(",", 1)[1])
    assert struct.unpack(">II", raw[16:24]) == (412, 839)            # device pixels at DPR 1
    assert "status/clock" in text_of(obs) and "09:41" in text_of(obs)  # frozen clock
    act(env, action_type="open_app", app_name="Contacts")
    popup = "contacts" in env.store.state["meta"]["popups"]
    assert any(e.resource_id == "dialog/panel" for e in env.last_obs.elements) == popup
    _dismiss(env)
    names = sorted(c["name"] for c in env.store.state["contacts"])
    shown = [e.text for e in env.last_obs.elements if e.resource_id == "contacts/row_title"]
    assert shown == names[:len(shown)] and 0 < len(shown) < len(names)   # off-screen rows are not listed
    act(env, action_type="scroll", direction="down")
    later = [e.text for e in env.last_obs.elements if e.resource_id == "contacts/row_title"]
    assert later[-1] > shown[-1] and later != shown
    act(env, action_type="click", index=index_of(env, resource_id="contacts/fab"))
    fab_free = len(env.last_obs.elements)
    act(env, action_type="click", index=index_of(env, resource_id="contacts/name_field"))
    assert env.last_obs.keyboard_open and env.last_obs.elements[index_of(env, resource_id="contacts/name_field")].is_focused
    keyboard_top = 839 - 48 - 0.4 * 839                             # 40% of the screen above the navigation bar
    assert all(e.bbox_pixels[3] <= keyboard_top + 1 or e.resource_id.startswith("nav/") for e in env.last_obs.elements)
    act(env, action_type="navigate_back")                                   # Back closes the keyboard first
    assert not env.last_obs.keyboard_open and len(env.last_obs.elements) == fab_free
    act(env, action_type="navigate_back")
    assert any(e.resource_id == "contacts/row_title" for e in env.last_obs.elements)
    act(env, action_type="click", index=index_of(env, resource_id="contacts/row_title"))   # open a contact
    act(env, action_type="navigate_home")
    assert any(e.resource_id == "launcher/contacts" for e in env.last_obs.elements)
    act(env, action_type="click", index=index_of(env, resource_id="nav/recents"))
    act(env, action_type="click", index=index_of(env, resource_id="recents/card_title", text="Contacts"))
    assert any(e.resource_id == "contacts/edit" for e in env.last_obs.elements)   # Home kept the app's back stack
    act(env, action_type="navigate_back")
    assert any(e.resource_id == "contacts/fab" for e in env.last_obs.elements)
    act(env, action_type="navigate_back")
    assert any(e.resource_id == "launcher/contacts" for e in env.last_obs.elements)


def test_every_action_format_drives_the_device(env):
    task = _task(env, "settings/toggle")
    env.reset(seed=0, options={"task_id": task.id})
    icon = env.last_obs.elements[index_of(env, resource_id="launcher/settings")]
    x, y = icon.center
    obs, r, term, trunc, info = env.step(f"tap [[{x / 412 * 1000:.0f},{y / 839 * 1000:.0f}]]")   # CogAgent grid
    assert info["format"] == "cogagent" and any(e.resource_id == "settings/network" for e in env.last_obs.elements)
    obs, r, term, trunc, info = env.step('{"action_type": "PRESS_HOME"}')                        # AitW
    assert info["format"] == "aitw" and any(e.resource_id == "launcher/settings" for e in env.last_obs.elements)
    row = env.last_obs.elements[index_of(env, resource_id="launcher/notes")]
    nx, ny = row.center
    aitw = {"action_type": "DUAL_POINT", "touch_yx": [ny / 839, nx / 412], "lift_yx": [ny / 839 + 0.01, nx / 412]}
    obs, r, term, trunc, info = env.step(json.dumps(aitw))                                       # a tap within 0.04
    assert info["format"] == "aitw" and any(e.resource_id in ("notes/fab", "dialog/panel") for e in env.last_obs.elements)
    obs, r, term, trunc, info = env.step({"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "open_app", "arguments": '{"app_name": "Clock"}'}}]})
    assert info["format"] == "openai" and "clock" in text_of(obs)
    obs, r, term, trunc, info = act(env, action_type="click", index=999)
    assert info["tool_errors"] == 1 and "out of range" in text_of(obs) and not term


def _run_oracle(env) -> str:
    """Play the oracle up to its final status action, which is returned (not sent)."""
    while True:
        action = env._run(env.oracle_action())
        if '"status"' in action:
            return action
        env.step(action)


def test_typing_into_the_wrong_field_or_collateral_damage_does_not_score(env):
    task = _task(env, "contacts/add_contact")
    env.reset(seed=0, options={"task_id": task.id})
    p = task.params
    act(env, action_type="open_app", app_name="Contacts")
    _dismiss(env)
    act(env, action_type="click", index=index_of(env, resource_id="contacts/fab"))
    act(env, action_type="input_text", index=index_of(env, resource_id="contacts/name_field"), text=p["phone"])
    act(env, action_type="input_text", index=index_of(env, resource_id="contacts/phone_field"), text=p["name"].replace(" ", ""))
    obs, r, term, trunc, info = act(env, action_type="click", index=index_of(env, resource_id="contacts/save"))
    assert "Phone number is not valid" in text_of(obs)             # the app refuses letters as a number
    act(env, action_type="input_text", index=index_of(env, resource_id="contacts/phone_field"), text="", clear_text=True)
    act(env, action_type="input_text", index=index_of(env, resource_id="contacts/email_field"), text=p["name"])
    act(env, action_type="click", index=index_of(env, resource_id="contacts/save"))
    assert any(c["name"] == p["phone"] for c in env.store.state["contacts"])   # committed, in the wrong fields
    obs, r, term, trunc, info = act(env, action_type="status", goal_status="complete")
    assert term and r == 0.0 and info["reward_components"]["state_match"] == 0.0

    task = _task(env, "settings/toggle")
    env.reset(seed=0, options={"task_id": task.id})
    _run_oracle(env)                                                 # the setting is changed ...
    act(env, action_type="open_app", app_name="Notes")
    _dismiss(env)
    act(env, action_type="long_press", index=index_of(env, resource_id="notes/row_title"))
    act(env, action_type="click", index=index_of(env, resource_id="dialog/positive"))   # ... and a note deleted
    obs, r, term, trunc, info = act(env, action_type="status", goal_status="complete")
    assert r == 0.0 and info["reward_components"]["goal_met"] == 1.0
    assert info["reward_components"]["other_apps_intact"] == 0.0


def test_snapshot_restore_replays_identically(env):
    task = _task(env, "notes/delete_note")
    env.reset(seed=3, options={"task_id": task.id})
    for _ in range(2):
        env.step(env._run(env.oracle_action()))
    snap = env._run(env.snapshot())
    nxt = env._run(env.oracle_action())
    first = env.step(nxt)
    state_after = json.dumps(env.store.state, sort_keys=True)
    env._run(env.restore(snap))
    assert env._run(env.oracle_action()) == nxt
    again = env.step(nxt)
    assert text_of(again[0]) == text_of(first[0]) and again[1:4] == first[1:4]
    assert json.dumps(env.store.state, sort_keys=True) == state_after
    assert again[4]["turn"] == first[4]["turn"]


def test_a_dead_context_is_an_infrastructure_failure_and_the_env_recovers(env):
    task = _task(env, "clock/add_alarm")
    env.reset(seed=0, options={"task_id": task.id})
    env._run(env.lease.context.close())
    obs, r, term, trunc, info = act(env, action_type="open_app", app_name="Clock")
    assert trunc and "infra_error" in info
    env.reset(seed=0, options={"task_id": task.id})
    obs, r, term, trunc, info = env.step(_run_oracle(env))
    assert r == 1.0 and "infra_error" not in info


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.one_of(
    st.text(max_size=120),
    st.builds(lambda d: "Action: " + json.dumps(d), st.fixed_dictionaries(
        {"action_type": st.sampled_from(["click", "long_press", "input_text", "scroll", "swipe", "open_app", "teleport",
                                         "keyboard_enter", "navigate_back", "double_tap", "wait"])},
        optional={"index": st.integers(-5, 500) | st.text(max_size=5), "x": st.floats(allow_nan=True) | st.integers(-10**9, 10**9),
                  "y": st.integers(-100, 5000), "text": st.text(max_size=40), "direction": st.text(max_size=8),
                  "app_name": st.text(max_size=12), "clear_text": st.booleans() | st.integers()})),
    st.builds(lambda a, b: json.dumps({"action_type": "DUAL_POINT", "touch_yx": a, "lift_yx": b}),
              st.lists(st.floats(-2, 2), max_size=3), st.lists(st.floats(0, 1), min_size=2, max_size=2)),
    st.builds(lambda x, y: f"tap [[{x},{y}]]", st.integers(-50, 1500), st.integers(-50, 1500)),
    st.builds(lambda n, a: {"content": None, "tool_calls": [{"id": "z", "function": {"name": n, "arguments": a}}]},
              st.sampled_from(["click", "input_text", "scroll", "status", "answer", "nope"]),
              st.text(max_size=40) | st.builds(json.dumps, st.dictionaries(
                  st.sampled_from(["index", "x", "y", "text", "direction", "goal_status"]),
                  st.integers() | st.text(max_size=10) | st.lists(st.integers(), max_size=3), max_size=3))),
    st.sampled_from(['{"action_type": "input_text", "text": "' + "y" * 20000 + '", "index": 1}', "{" * 3000,
                     "<tool_call>" + "[" * 2000 + "</tool_call>", "Action Decision: " + '"action_type": "TYPE", ' * 50]),
))
def test_fuzzed_actions_never_raise_and_stay_in_the_observation_space(env, action):
    if env._done:
        env.reset(seed=0, options={"task_id": _task(env, "notes/create_note").id})
    obs, reward, term, trunc, info = env.step(action)
    assert obs in env.observation_space and isinstance(reward, float)
    assert "infra_error" not in info


async def test_high_dpi_pixels_transitions_and_set_of_marks():
    """At DPR 2 screenshots and element bounds are in device pixels and x/y taps land; with transitions on, the
    observation is taken only after the screen animation finished."""
    from agentgym.envs.gui.coords import Screen
    from agentgym.envs.gui.env import PhoneEnv

    async with PhoneEnv(split="test", screen=Screen(dpr=2.0), transitions=True, marks=True) as env:
        suite = await env.aload_suite()
        task = next(t for t in suite.tasks() if t.family == "clock/add_alarm")
        await env.areset(seed=0, options={"task_id": task.id})
        assert struct.unpack(">II", env.last_obs.screenshot[16:24]) == (824, 1678)
        icon = next(e for e in env.last_obs.elements if e.resource_id == "launcher/clock")
        css = await env.page.evaluate("() => { const r = document.querySelector('[data-rid=\"launcher/clock\"]')"
                                      ".getBoundingClientRect(); return [r.left, r.top]; }")
        assert icon.bbox_pixels[:2] == (round(css[0] * 2), round(css[1] * 2))
        x, y = icon.center
        obs, *_ = await env.astep(json.dumps({"action_type": "click", "x": x, "y": y}))
        assert await env.page.evaluate("() => document.getAnimations().length") == 0
        assert await env.page.evaluate("() => !!document.querySelector('.enter')")   # the transition did play
        assert any(e.resource_id in ("clock/fab", "dialog/panel") for e in env.last_obs.elements)
        pids = env.browser_session.host.process_tree()
    assert pids and [p for p in pids if alive(p)] == []
