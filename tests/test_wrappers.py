"""Async wrappers on the corridor env: forwarding of the contract, TimeLimit, TransformReward, the sync face."""

from __future__ import annotations

import inspect

import pytest

from agentgym.env import AsyncEnv, SupportsOracle, SupportsSnapshot
from agentgym.envs.corridor.env import CorridorEnv, move_call
from agentgym.policies.oracle import OraclePolicy
from agentgym.rollout import RolloutEngine, make_jobs
from agentgym.wrappers import AsyncWrapper, TimeLimit, TransformReward


def first_task(env: CorridorEnv) -> str:
    return env.suite.tasks("train")[0].id


async def test_a_wrapper_forwards_the_contract_and_public_attributes_but_not_private_ones():
    inner = CorridorEnv(horizon=4)
    env = TransformReward(TimeLimit(inner, max_steps=10), lambda r: r)
    assert env.unwrapped is inner and env.env.env is inner
    assert env.env_id == "agentgym/corridor-v0" and env.tools == inner.tools and env.options_help is inner.options_help
    assert env.suite is inner.suite and await env.aload_suite() is inner.suite
    assert env.action_space is inner.action_space and env.observation_space is inner.observation_space
    assert isinstance(env, SupportsOracle) and isinstance(env, SupportsSnapshot)  # the corridor's capabilities
    inspect.getattr_static(env, "oracle_action")  # found statically too (Python 3.12's runtime Protocol check)
    await env.areset(options={"task_id": first_task(inner)})
    assert env.task is inner.task and env.room == 0
    assert await env.oracle_action() == await inner.oracle_action()
    with pytest.raises(AttributeError, match="private names are not forwarded"):
        env._tool_specs  # noqa: B018


def test_a_wrapper_claims_no_capability_its_env_lacks():
    class Plain(AsyncEnv):
        async def astep(self, action):
            return {"messages": []}, 0.0, True, False, {}

    env = TimeLimit(Plain(), max_steps=3)
    assert not isinstance(env, SupportsOracle) and not isinstance(env, SupportsSnapshot)
    with pytest.raises(AttributeError):
        env.oracle_action  # noqa: B018


async def test_async_with_closes_the_wrapped_env():
    inner = CorridorEnv(horizon=3)
    async with AsyncWrapper(inner) as env:
        await env.areset(options={"task_id": first_task(inner)})
        assert inner.task is not None
    assert inner.task is None  # ToolEnv.aclose ended the episode


async def test_time_limit_truncates_after_max_steps_and_says_why():
    inner = CorridorEnv(horizon=6)
    env = TimeLimit(inner, max_steps=2)
    await env.areset(options={"task_id": first_task(inner)})
    _, _, terminated, truncated, info = await env.astep(move_call(inner.good_direction()))
    assert not (terminated or truncated) and "termination" not in info and env.elapsed_steps == 1
    _, _, terminated, truncated, info = await env.astep(move_call(inner.good_direction()))
    assert truncated and not terminated and info["termination"] == "time_limit" and "outcome" not in info
    await env.areset(options={"task_id": first_task(inner)})
    assert env.elapsed_steps == 0


async def test_time_limit_leaves_an_episode_that_ends_by_itself_alone():
    inner = CorridorEnv(horizon=2)
    env = TimeLimit(inner, max_steps=2)
    await env.areset(options={"task_id": first_task(inner)})
    await env.astep(move_call(inner.good_direction()))
    _, reward, terminated, truncated, info = await env.astep(move_call(inner.good_direction()))
    assert terminated and not truncated and reward == 1.0 and info["termination"] == "submitted"


def test_time_limit_rejects_a_limit_below_one():
    with pytest.raises(ValueError, match="max_steps"):
        TimeLimit(CorridorEnv(), max_steps=0)


async def test_rollouts_record_a_time_limited_episode_as_an_unsuccessful_truncation():
    task = first_task(CorridorEnv(horizon=5))
    [record] = await RolloutEngine(lambda: TimeLimit(CorridorEnv(horizon=5), max_steps=3),
                                   OraclePolicy()).run(make_jobs([task]))
    assert record.termination == "time_limit" and len(record.turns) == 3 and record.success is False
    assert record.env_id == "agentgym/corridor-v0"


async def test_transform_reward_applies_the_function_to_every_step_reward():
    inner = CorridorEnv(horizon=3)
    env = TransformReward(inner, lambda r: 10 * r - 1)
    await env.areset(options={"task_id": first_task(inner)})
    rewards = []
    for _ in range(3):
        _, reward, terminated, _, info = await env.astep(move_call(inner.good_direction()))
        rewards.append(reward)
    assert rewards == [-1.0, -1.0, 9.0] and terminated and info["outcome"]["reward"] == 1.0  # outcome untouched
    task = first_task(inner)
    [record] = await RolloutEngine(lambda: TransformReward(CorridorEnv(horizon=3), lambda r: 10 * r - 1),
                                   OraclePolicy()).run(make_jobs([task]))
    assert record.reward == 7.0 and record.success is True


def test_the_sync_gymnasium_face_works_through_a_wrapper():
    inner = CorridorEnv(horizon=3)
    env = TimeLimit(inner, max_steps=1)
    try:
        obs, info = env.reset(seed=0, options={"task_id": first_task(inner)})
        assert info["turn"] == 0 and obs["messages"]
        _, _, terminated, truncated, info = env.step(move_call(inner.good_direction()))
        assert truncated and not terminated and info["termination"] == "time_limit"
    finally:
        env.close()
    assert inner.task is None
