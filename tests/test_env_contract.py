"""The declared env contract: defaults of AsyncEnv's members, the StepInfo keys, duck-typed envs, random tool calls."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
from guess_env import GuessEnv

from agentgym.actions import random_tool_call
from agentgym.benchmark import BenchConfig, run_benchmark
from agentgym.env import AsyncEnv, NoTaskSuiteError
from agentgym.envs.corridor.env import CorridorEnv, move_call
from agentgym.info import StepInfo
from agentgym.policies.oracle import OraclePolicy
from agentgym.rollout import RolloutEngine, make_jobs
from agentgym.tool_calls import TagToolCalls, parse_action, resolve_parsers
from agentgym.tool_env import ToolEnv
from agentgym.tools import tool


class Bare(AsyncEnv):
    """Declares nothing beyond the step loop: every member the core reads must have its documented default."""

    async def areset(self, *, seed=None, options=None):
        await super().areset(seed=seed)
        return {"messages": [{"role": "user", "content": "say done"}]}, {"task_id": (options or {}).get("task_id")}

    async def astep(self, action):
        return {"messages": []}, 1.0, True, False, {"outcome": {"reward": 1.0, "success": True}}


class DuckEnv:
    """Async step loop without subclassing AsyncEnv (a third-party env): the engine still reads it."""

    tools = ({"type": "function", "function": {"name": "done", "parameters": {"type": "object", "properties": {}}}},)

    def __init__(self):
        self.closed = False

    async def areset(self, *, seed=None, options=None):
        return {"messages": [{"role": "user", "content": "go"}]}, {"task_id": options["task_id"]}

    async def astep(self, action):
        return {"messages": []}, 0.5, True, False, {"outcome": {"reward": 0.5, "success": False}}

    async def aclose(self):
        self.closed = True


class ToolsSeen:
    """Answers 'done' and remembers the tools each call was given."""

    name = "tools-seen"

    def __init__(self):
        self.tools: list[list] = []

    async def act(self, observation, tools):
        self.tools.append(list(tools))
        return {"role": "assistant", "content": "done"}


async def test_an_env_declaring_nothing_gets_the_documented_defaults():
    env = Bare()
    assert env.env_id == "Bare" and env.tools == () and env.suite is None and env.options_help == {}
    assert env.action_space is None and env.observation_space is None
    assert env.task_axis("any") is None
    with pytest.raises(NoTaskSuiteError, match="Bare has no task suite"):
        await env.aload_suite()


def test_env_id_comes_from_the_class_then_an_assignment_then_the_gymnasium_spec():
    assert CorridorEnv().env_id == "agentgym/corridor-v0"
    env = Bare()
    env.spec = gymnasium.envs.registration.EnvSpec("test/bare-v0")  # what agentgym.make attaches
    assert env.env_id == "test/bare-v0"
    env.env_id = "test/renamed-v0"
    assert env.env_id == "test/renamed-v0"


def test_a_tool_env_without_an_env_id_is_named_by_its_spec_or_class_not_a_placeholder():
    class Unnamed(ToolEnv):
        """A plug-in that forgot `env_id`: its records must still say which env they came from."""

        @tool("Say you are done.")
        async def done(self) -> str:
            return "ok"

    assert Unnamed().env_id == "Unnamed"


async def test_task_axis_reads_the_suite_and_the_rollout_records_it():
    env = GuessEnv(split="test")
    suite = await env.aload_suite()
    ood, iid = suite.tasks("test", "ood")[0], suite.tasks("test", "iid")[0]
    assert env.task_axis(ood.id) == "ood" and env.task_axis(iid.id) == "iid"
    assert env.task_axis(suite.tasks("train")[0].id) is None
    records = await RolloutEngine(lambda: GuessEnv(split="test"), OraclePolicy()).run(make_jobs([ood.id, iid.id]))
    assert {r.task_id: r.task_info.get("axis") for r in records} == {ood.id: "ood", iid.id: "iid"}


async def test_a_duck_typed_env_runs_with_the_contract_defaults():
    policy = ToolsSeen()
    made: list[DuckEnv] = []

    def factory() -> DuckEnv:
        made.append(DuckEnv())
        return made[-1]

    [record] = await RolloutEngine(factory, policy).run(make_jobs(["t1"]))  # type: ignore[arg-type]
    assert record.env_id == "DuckEnv" and record.termination == "terminated" and record.reward == 0.5
    assert policy.tools == [list(DuckEnv.tools)] and "axis" not in record.task_info
    assert made[0].closed  # the engine closed the env it made, through the adapter


async def test_benchmarking_an_env_without_a_suite_says_so(tmp_path):
    config = BenchConfig(env_id="test/bare-v0", policy="oracle", split="test")
    with pytest.raises(NoTaskSuiteError, match="no task suite"):
        await run_benchmark(config, OraclePolicy(), tmp_path, env_factory=Bare)


async def test_every_info_key_a_tool_env_returns_is_declared_in_step_info():
    declared = set(StepInfo.__annotations__)
    env = CorridorEnv(horizon=3, slack=1)
    extra = set(env.extra_info()) | {"invalid_action"}  # the corridor's own keys (documented in its module)
    task = env.suite.tasks("train")[0]
    _, info = await env.areset(options={"task_id": task.id})
    seen = set(info)
    scripted = ["no call here", move_call("up")]  # no call, then an unknown door: both invalid actions
    for turn in range(env.max_turns):
        action = scripted[turn] if turn < len(scripted) else move_call(env.good_direction())
        _, _, terminated, truncated, info = await env.astep(action)
        assert type(info) is dict  # a plain dict at runtime: records store it as JSON
        json.dumps(info)
        seen |= set(info)
        if terminated or truncated:
            break
    assert truncated and info["termination"] == "turn_budget" and info["outcome"]["success"] is False
    assert seen - extra <= declared
    assert {"task_id", "split", "turn", "turns_left", "invalid_actions", "tool_errors", "tool_calls", "calls",
            "outcome", "reward_components", "termination", "format"} <= seen


def test_random_tool_call_draws_every_format_and_each_parses_to_the_same_call():
    parsers = resolve_parsers(("openai", "hermes", TagToolCalls("t", {"sql": ("execute_sql", "query")})))
    rng = np.random.default_rng(0)
    formats = set()
    for _ in range(30):
        action = random_tool_call(rng, "execute_sql", {"query": "SELECT 1"}, tag="sql")
        parsed = parse_action(action, parsers)
        assert parsed is not None and not parsed.errors
        [call] = parsed.calls
        assert (call.name, call.arguments) == ("execute_sql", {"query": "SELECT 1"})
        formats.add(parsed.format)
    assert formats == {"openai", "hermes", "t"}
    untagged = {parse_action(random_tool_call(rng, "f", {"x": 1}), parsers).format for _ in range(20)}
    assert untagged == {"openai", "hermes"}  # no tag given: the tag format is never drawn


async def test_the_sql_envs_random_actions_are_read_as_tool_calls():
    from agentgym.envs.sql.env import SqlEnv

    env = SqlEnv(split="train")
    try:
        rng = np.random.default_rng(1)
        for i in range(8):
            await env.areset(seed=i)
            _, _, _, _, info = await env.astep(env.sample_action(rng))
            assert info["format"] is not None and info["invalid_actions"] == 0, info
    finally:
        await env.aclose()
