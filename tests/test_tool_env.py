"""The env contract on the README's example env: errors are observations, budgets truncate, infra is flagged."""

from __future__ import annotations

import asyncio

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from guess_env import GuessEnv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentgym
from agentgym.errors import ToolError


def call(name: str, **args) -> dict:
    import json

    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}


async def started(split: str = "test", **options) -> GuessEnv:
    env = GuessEnv(split=split)
    await env.areset(seed=0, options=options or None)
    return env


async def test_reset_gives_messages_tools_and_task_info():
    env = GuessEnv(split="test")
    obs, info = await env.areset(seed=3)
    assert obs in env.observation_space
    assert obs["messages"][0]["role"] == "system" and obs["turns_left"] == 8
    assert info["split"] == "test" and info["task_id"] == env.task.id
    assert [t["function"]["name"] for t in env.tools] == ["guess"]
    again, _ = await env.areset(seed=3)
    assert again == obs  # same seed, same task


@pytest.mark.parametrize("action, fragment", [
    ("I have no idea", "No tool call found"),
    (call("shout", number=3), "unknown tool 'shout'"),
    (call("guess", number="ten"), "expected integer, got string"),
    (call("guess"), "missing required argument(s): number"),
    ('<tool_call>{"name": "guess", "arguments": {"number": 1}', "not closed"),
    (12345, "must be a string or an assistant message dict"),
])
async def test_malformed_actions_become_observations_and_leave_state(action, fragment):
    env = await started()
    secret = env.secret
    obs, reward, terminated, truncated, info = await env.astep(action)
    text = " ".join(m["content"] for m in obs["messages"])
    assert fragment in text
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["invalid_actions"] == 1 and info["turn"] == 1 and obs["turns_left"] == 7
    assert env.secret == secret
    assert obs in env.observation_space


async def test_tool_error_is_an_observation_not_invalid_action():
    env = await started()
    obs, _, _, _, info = await env.astep("<guess>1000</guess>")
    assert "outside 1..100" in obs["messages"][0]["content"]
    assert info["tool_errors"] == 1 and info["invalid_actions"] == 0


async def test_openai_calls_answered_with_tool_messages():
    env = await started()
    obs, *_ = await env.astep(call("guess", number=env.secret + 1 if env.secret < 100 else env.secret - 1))
    assert obs["messages"][0]["role"] == "tool" and obs["messages"][0]["tool_call_id"] == "c"
    assert obs["messages"][0]["content"] in ("higher", "lower")


async def test_success_ends_with_outcome_reward_and_components():
    env = await started()
    obs, reward, terminated, truncated, info = await env.astep(await env.oracle_action())
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["outcome"] == {"reward": 1.0, "success": True}
    assert info["reward_components"] == {"turns_used": 1.0}
    assert info["termination"] == "submitted"
    with pytest.raises(RuntimeError, match="areset"):
        await env.astep("<guess>1</guess>")


async def test_turn_budget_truncates_with_failure_outcome():
    env = GuessEnv(split="test", max_turns=3)
    await env.areset(seed=0)
    wrong = 1 if env.secret != 1 else 2
    results = [await env.astep(f"<guess>{wrong}</guess>") for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]
    _, reward, terminated, truncated, info = results[-1]
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert info["termination"] == "turn_budget" and info["outcome"]["success"] is False


async def test_a_crashing_handler_is_an_infrastructure_failure():
    class Broken(GuessEnv):
        @agentgym.tool("Guess.")
        async def guess(self, number: int) -> str:
            raise OSError("disk on fire")

    env = Broken(split="test")
    await env.areset(seed=0)
    obs, reward, terminated, truncated, info = await env.astep("<guess>3</guess>")
    assert truncated and not terminated and reward == 0.0
    assert info["infra_error"]["type"] == "OSError" and "disk on fire" in info["infra_error"]["message"]
    assert "outcome" not in info  # never scored as a failure
    assert "not scored" in obs["messages"][0]["content"]


async def test_a_hanging_handler_times_out_as_infrastructure():
    class Hangs(GuessEnv):
        tool_timeout_s = 0.2

        @agentgym.tool("Guess.")
        async def guess(self, number: int) -> str:
            await asyncio.sleep(30)
            return "never"

    env = Hangs(split="test")
    await env.areset(seed=0)
    _, _, _, truncated, info = await env.astep("<guess>3</guess>")
    assert truncated and info["infra_error"]["type"] == "EnvTimeoutError"


async def test_too_many_calls_in_one_turn_are_refused_individually():
    task = agentgym.Task("guess", "range-100", "secret", {"secret": 50, "high": 100})
    env = await started(task=task)
    obs, *_, info = await env.astep("".join(f"<guess>{n}</guess>" for n in range(1, 8)))
    content = obs["messages"][0]["content"]
    assert content.count("<observation>higher</observation>") == 4
    assert content.count("not run: at most 4 tool calls per turn") == 3
    assert info["tool_calls"] == 4


def test_sync_api_and_gymnasium_checker():
    import guess_env

    guess_env.register()
    env = gymnasium.make("example/guess-v0")
    check_env(env.unwrapped)
    obs, info = env.reset(seed=5)
    obs, reward, terminated, truncated, info = env.step(env.unwrapped._run(env.unwrapped.oracle_action()))
    assert terminated and reward == 1.0
    env.close()


async def test_sync_api_works_inside_a_running_loop():
    env = GuessEnv(split="test")
    obs, _ = env.reset(seed=1)  # called from a coroutine: runs on the env's own loop thread
    assert obs["turns_left"] == 8
    env.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.one_of(
    st.text(max_size=300),
    st.binary(max_size=50),
    st.integers(), st.none(), st.floats(allow_nan=True),
    st.lists(st.text(max_size=5), max_size=3),
    st.builds(lambda n, a: f'<tool_call>{{"name": "{n}", "arguments": {a}}}</tool_call>',
              st.sampled_from(["guess", "x", ""]), st.text(max_size=30)),
    st.builds(lambda a: "<guess>" + a + "</guess>", st.text(max_size=30)),
    st.fixed_dictionaries({"content": st.one_of(st.none(), st.text(max_size=20), st.integers()),
                           "tool_calls": st.one_of(
                               st.none(), st.text(max_size=5),
                               st.lists(st.one_of(st.none(), st.integers(), st.dictionaries(st.text(max_size=5), st.text(max_size=5)),
                                                  st.fixed_dictionaries({"id": st.text(max_size=5), "function": st.fixed_dictionaries({
                                                      "name": st.sampled_from(["guess", "nope"]),
                                                      "arguments": st.one_of(st.text(max_size=40), st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=5)))})})),
                                        max_size=6))}),
))
def test_fuzzed_actions_never_raise(action):
    env = GuessEnv(split="test")

    async def go():
        await env.areset(seed=1)
        obs, reward, terminated, truncated, info = await env.astep(action)
        assert obs in env.observation_space
        assert "infra_error" not in info

    asyncio.run(go())


def test_tool_error_class_is_exported():
    assert issubclass(ToolError, agentgym.AgentGymError)


async def test_close_after_async_use_ends_the_episode():
    ended = []

    class Tracked(GuessEnv):
        async def end_episode(self):
            ended.append(True)

    env = Tracked(split="test")
    await env.areset(seed=0)
    await asyncio.to_thread(env.close)  # gymnasium wrappers call the sync close()
    assert ended == [True] and env.task is None


async def test_unknown_task_id_leaves_the_current_episode_intact():
    env = await started()
    task = env.task
    with pytest.raises(agentgym.UnknownTaskError):
        await env.areset(options={"task_id": "nope"})
    assert env.task is task
    _, _, term, _, _ = await env.astep(await env.oracle_action())
    assert term


async def test_a_handler_returning_garbage_is_an_infrastructure_failure():
    class Garbage(GuessEnv):
        @agentgym.tool("Guess.")
        async def guess(self, number: int) -> str:
            return None  # type: ignore[return-value]

    env = Garbage(split="test")
    await env.areset(seed=0)
    _, _, _, truncated, info = await env.astep("<guess>3</guess>")
    assert truncated and info["infra_error"]["type"] == "ContractError"


async def test_calls_inside_unfinished_reasoning_are_not_run():
    env = await started()
    obs, *_ , info = await env.astep(f"draft <guess>{env.secret}</guess> hmm </think> no call after thinking")
    assert info["invalid_actions"] == 1 and "No tool call found" in obs["messages"][0]["content"]
