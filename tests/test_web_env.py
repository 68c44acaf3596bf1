"""The web envs in a real Chromium: gymnasium's checker, scripted MiniWoB solvers, the shop oracle on every
held-out task, random floors, refused navigation, fuzzed actions, snapshot/restore, infrastructure failures,
set-of-marks screenshots, and process hygiene in a soak (SIGKILL of the owning process: test_browser.py)."""

from __future__ import annotations

import json
from collections import defaultdict

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentgym
from agentgym.benchmark import BenchConfig, run_benchmark
from agentgym.envs.browser.host import marked_browser_pids as our_browser_pids
from agentgym.envs.browser.watch import HostSampler
from agentgym.envs.web.miniwob import SOLVERS, html_root
from agentgym.policies.oracle import OraclePolicy
from agentgym.policies.random_policy import RandomPolicy
from agentgym.records import iter_episodes


def text_of(obs: dict) -> str:
    """All text of an observation's messages (multi-part contents joined)."""
    return "\n".join(c if isinstance(c, str) else " ".join(p.get("text", "") for p in c)
                     for c in (m["content"] for m in obs["messages"]))


@pytest.mark.parametrize("env_id", ["agentgym/web-miniwob-v0", "agentgym/web-shop-v0"])
def test_gymnasium_make_passes_the_env_checker_and_leaves_no_browser(env_id):
    env = gymnasium.make(env_id)
    check_env(env.unwrapped)
    env.close()
    assert our_browser_pids() == []


async def test_scripted_solvers_reach_95_percent_on_held_out_seeds_as_a_soak_without_leaks(tmp_path):
    """Every held-out seed of the solver tasks at concurrency 4: solvers >= 95%, no hung step, bounded
    memory, and none of the browser processes seen during the run survives it."""
    before_pids = set(our_browser_pids())
    async with HostSampler(interval_s=0.5) as sampler:
        config = BenchConfig("agentgym/web-miniwob-v0", "oracle", "test", concurrency=4,
                             env_kwargs={"tasks": sorted(SOLVERS)})
        result = await run_benchmark(config, OraclePolicy(), tmp_path / "oracle")
    per_task: dict[str, list[bool]] = defaultdict(list)
    for record in iter_episodes(tmp_path / "oracle" / "episodes.jsonl"):
        per_task[record.task_info["template"]].append(bool(record.success))
    # a hung step would hit a call deadline and end its episode as an infra error: none may
    assert len(per_task) == len(SOLVERS) >= 10 and result["infra_errors"] == 0
    rates = {k: sum(v) / len(v) for k, v in per_task.items()}
    assert all(r >= 0.95 for r in rates.values()), rates
    assert result["episodes"] >= 60
    assert sampler.pids and 0 < sampler.peak_pss_mb < 2500
    assert sampler.survivors() == [] and set(our_browser_pids()) == before_pids


async def test_random_policy_on_miniwob_held_out_is_near_zero(tmp_path):
    rand = await run_benchmark(BenchConfig("agentgym/web-miniwob-v0", "random", "test", episodes=24, concurrency=4,
                                           env_kwargs={"max_turns": 3}), RandomPolicy(seed=0), tmp_path / "random")
    assert rand["episodes"] == 24 and rand["infra_errors"] == 0 and rand["success_rate"] <= 0.15


async def test_shop_oracle_solves_every_held_out_task_and_random_scores_near_zero(tmp_path):
    oracle = await run_benchmark(BenchConfig("agentgym/web-shop-v0", "oracle", "test", concurrency=4), OraclePolicy(),
                                 tmp_path / "oracle")
    assert oracle["episodes"] == oracle["tasks"] >= 70
    assert oracle["success_rate"] == 1.0 and oracle["infra_errors"] == 0 and oracle["manifest_checksum"]
    rand = await run_benchmark(BenchConfig("agentgym/web-shop-v0", "random", "test", episodes=8, concurrency=4,
                                           env_kwargs={"max_turns": 6}), RandomPolicy(seed=0), tmp_path / "random")
    assert rand["infra_errors"] == 0 and rand["success_rate"] == 0.0
    assert our_browser_pids() == []


async def test_goto_outside_the_task_is_refused_and_outside_requests_are_blocked():
    async with agentgym.make("agentgym/web-miniwob-v0", split="train", tasks=["click-test"],
                             action_subset="all") as env:
        await env.areset(seed=0)
        url = env.page.url
        for target in ["http://example.com/", "https://127.0.0.1:1/", "file:///etc/passwd",
                       f"file://{html_root()}/../../../../../etc/passwd", "javascript:alert(1)",
                       "data:text/html,<h1>x</h1>", "chrome://settings", "view-source:http://example.com"]:
            obs, reward, term, trunc, info = await env.astep(f"goto({target!r})")
            assert "goto refused" in text_of(obs) and "goto refused" in obs["last_action_error"], target
            assert env.page.url == url and not (term or trunc) and "infra_error" not in info
        blocked = await env.page.evaluate(
            "() => fetch('http://example.com/x').then(() => 'loaded', (e) => 'blocked: ' + e.message)")
        assert blocked.startswith("blocked")


async def test_actions_as_text_and_tool_calls_keep_bids_stable_and_score():
    async with agentgym.make("agentgym/web-miniwob-v0", split="train", tasks=["enter-text"]) as env:
        obs, info = await env.areset(seed=3)
        first = text_of(obs)
        box = env.page.locator("#tt")
        bid = await box.get_attribute("bid")
        button = await env.page.locator("#subbtn").get_attribute("bid")
        word = env.goal.split('"')[1]
        obs, *_ = await env.astep({"role": "assistant", "content": None, "tool_calls": [{
            "id": "a", "type": "function", "function": {"name": "fill", "arguments": json.dumps({"bid": bid, "value": word})}}]})
        assert obs["messages"][0]["role"] == "tool" and f"[{bid}] textbox" in text_of(obs)
        assert f"value='{word}'" in text_of(obs) and f"[{button}] button 'Submit'" in first
        obs, *_ = await env.astep("click('999')")
        assert "no element with bid '999'" in obs["last_action_error"]
        obs, reward, term, trunc, info = await env.astep(f"Now submit.\n```\nclick('{button}')\n```")
        assert (reward, term) == (1.0, True) and info["reward_components"]["raw_reward"] == 1.0


async def test_snapshot_restore_replays_identically_and_screenshot_has_marks():
    async with agentgym.make("agentgym/web-miniwob-v0", split="train", tasks=["login-user"], screenshot=True) as env:
        obs, _ = await env.areset(seed=1)
        image = obs["messages"][-1]["content"][1]
        assert image["type"] == "image_url" and image["image_url"]["url"].startswith("data:image/png;base64,")
        plan = [await env.oracle_action() for _ in range(3)]
        await env.astep(plan[0])
        snap = await env.snapshot()
        a = await env.astep(plan[1])
        b = await env.astep(plan[2])
        assert b[2] and b[1] == 1.0
        await env.restore(snap)
        assert env.turn == 1
        again_a = await env.astep(plan[1])
        again_b = await env.astep(plan[2])
        assert again_a[0] == a[0] and again_a[1:4] == a[1:4]
        assert again_b[0] == b[0] and again_b[1:4] == b[1:4]


async def test_a_dead_context_is_an_infrastructure_failure_and_the_env_recovers():
    async with agentgym.make("agentgym/web-miniwob-v0", split="train", tasks=["click-test"]) as env:
        await env.areset(seed=0)
        await env.lease.context.close()
        obs, reward, term, trunc, info = await env.astep("click('1')")
        assert trunc and info["infra_error"]["type"] in ("BrowserError", "BrowserTimeout")
        await env.areset(seed=0)  # a fresh context is leased
        obs, reward, term, trunc, info = await env.astep(await env.oracle_action())
        assert reward == 1.0 and "infra_error" not in info


@pytest.fixture(scope="module")
def fuzz_env():
    env = agentgym.make("agentgym/web-shop-v0", split="test", action_subset="all")
    env.reset(seed=0)
    yield env
    env.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.one_of(
    st.text(max_size=200),
    st.builds(lambda n, a: f"{n}({a})", st.sampled_from(["click", "fill", "goto", "scroll", "select_option", "press",
                                                         "mouse_click", "keyboard_type", "noop", "hover"]),
              st.text(max_size=40)),
    st.builds(lambda n, a: {"content": None, "tool_calls": [{"id": "z", "function": {"name": n, "arguments": a}}]},
              st.sampled_from(["click", "fill", "goto", "scroll", "search", "click_text", "nope"]),
              st.text(max_size=60) | st.builds(json.dumps, st.dictionaries(
                  st.sampled_from(["bid", "value", "url", "delta_x", "keywords", "x"]),
                  st.integers() | st.text(max_size=20) | st.lists(st.integers(), max_size=3), max_size=3))),
    st.builds(lambda s: f"search[{s}]", st.text(max_size=50)),
    st.builds(lambda s: f"click[{s}]", st.text(max_size=50)),
    st.sampled_from(["keyboard_type('" + "x" * 5000 + "')", "fill('1', '" + "y" * 150_000 + "')",
                     "click(" * 300, "<tool_call>" + "{" * 3000 + "</tool_call>", "goto('http://evil.com')"]),
))
def test_fuzzed_actions_never_raise_and_stay_in_the_observation_space(fuzz_env, action):
    if fuzz_env._done:
        fuzz_env.reset(seed=0)
    obs, reward, term, trunc, info = fuzz_env.step(action)
    assert obs in fuzz_env.observation_space and isinstance(reward, float)
    assert "infra_error" not in info
