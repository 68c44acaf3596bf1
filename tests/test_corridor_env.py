"""The corridor env: decisive-turn dynamics, invalid actions, splits by seed, recurring anchor states."""

from __future__ import annotations

import json

import numpy as np
import pytest

import agentgym
from agentgym.envs.corridor.env import DIRECTIONS, INVALID_PENALTY, CorridorEnv, make_task, move_call, room_text
from agentgym.policies.oracle import OraclePolicy
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs
from agentgym.trainers.credit import CreditBatch


async def play(env, task, directions):
    obs, info = await env.areset(seed=0, options={"task_id": task.id})
    seen, rewards = [obs["messages"][-1]["content"]], []
    for d in directions:
        obs, r, term, trunc, info = await env.astep(move_call(d))
        rewards.append(r)
        if term or trunc:
            return seen, rewards, term, trunc, info
        seen.append(obs["messages"][-1]["content"])
    return seen, rewards, False, False, info


def good_path(task):
    return [task.params["good"] if t == task.params["decisive"] else "north" for t in range(task.params["horizon"])]


async def test_good_path_succeeds_and_a_wrong_decisive_door_is_absorbing():
    env = CorridorEnv(horizon=5)
    task = env.suite.tasks("train")[0]
    k, good = task.params["decisive"], task.params["good"]
    seen, rewards, term, trunc, info = await play(env, task, good_path(task))
    assert term and not trunc and rewards == [0.0] * 4 + [1.0] and info["outcome"]["success"] is True
    bad = next(d for d in DIRECTIONS if d != good)
    path = good_path(task)
    path[k] = bad
    seen, rewards, term, trunc, info = await play(env, task, path)
    assert len(rewards) == 5 and term  # the episode goes on to the end ...
    assert rewards[-1] == 0.0 and info["outcome"]["success"] is False  # ... but cannot succeed
    assert all("flooded" in s for s in seen[k + 1:]) and not any("flooded" in s for s in seen[:k + 1])


async def test_non_decisive_doors_are_all_equivalent():
    env = CorridorEnv(horizon=4)
    task = env.suite.tasks("train")[3]
    for d in DIRECTIONS:
        path = good_path(task)
        for t in range(4):
            if t != task.params["decisive"]:
                path[t] = d
        *_, info = await play(env, task, path)
        assert info["outcome"]["success"] is True


async def test_invalid_action_costs_and_does_not_move():
    env = CorridorEnv(horizon=3, slack=1)
    task = env.suite.tasks("train")[1]
    await env.areset(options={"task_id": task.id})
    obs, r, term, trunc, info = await env.astep(move_call("up"))
    assert r == pytest.approx(INVALID_PENALTY) and info["invalid_action"] and info["room"] == 0
    obs, r, term, trunc, info = await env.astep("I would like to go left")  # no tool call at all
    assert r == pytest.approx(INVALID_PENALTY) and info["room"] == 0
    obs, r, term, trunc, info = await env.astep(move_call("north"))
    assert r == 0.0 and info["room"] == 1 and not info.get("invalid_action")
    obs, r, term, trunc, info = await env.astep(move_call("north"))
    assert trunc and not term and info["outcome"]["success"] is False  # turn budget spent (3 + 1)


def test_splits_by_seed_and_deterministic_generator():
    env = CorridorEnv(horizon=6)
    split_seeds = {s: {t.params["seed"] for t in env.suite.tasks(s)} for s in ("train", "dev", "test")}
    assert split_seeds["train"] == set(range(200)) and split_seeds["test"] == set(range(225, 250))
    assert not split_seeds["train"] & split_seeds["test"]
    assert make_task(6, 11) == make_task(6, 11) and make_task(6, 11).id == make_task(6, 11).id
    decisive = [t.params["decisive"] for t in env.suite.tasks("train")]
    assert set(decisive) == set(range(6))  # the decisive room varies over tasks
    assert {t.params["good"] for t in env.suite.tasks("train")} == set(DIRECTIONS)


async def test_anchor_states_recur_across_a_group_through_the_engine():
    env = agentgym.make("agentgym/corridor-v0", horizon=4)
    task_ids = [t.id for t in env.suite.tasks("test")[:3]]
    engine = RolloutEngine(lambda: CorridorEnv(horizon=4), OraclePolicy(), RolloutConfig(concurrency=2))
    records = await engine.run(make_jobs(task_ids, 2))
    assert len(records) == 6 and all(r.success and r.reward == 1.0 for r in records)
    batch = CreditBatch.from_records(records)
    by_group: dict[str, list[list[str]]] = {}
    for g, keys in zip(batch.group_ids, batch.anchor_keys):
        by_group.setdefault(g, []).append(keys)
    for keys in by_group.values():
        assert keys[0] == keys[1] and len(set(keys[0])) == 4  # same states in the group, distinct per turn


async def test_snapshot_restore_and_random_actions():
    env = CorridorEnv(horizon=4)
    task = env.suite.tasks("dev")[0]
    await env.areset(options={"task_id": task.id})
    await env.astep(move_call("east"))
    snap = await env.snapshot()
    json.dumps(snap.payload)
    a = await env.astep(move_call("south"))
    await env.restore(snap)
    b = await env.astep(move_call("south"))
    assert a[0] == b[0] and a[1:4] == b[1:4]
    rng = np.random.default_rng(0)
    actions = [env.sample_action(rng) for _ in range(200)]
    assert any('"up"' in a for a in actions) and sum('"up"' not in a for a in actions) > 150
    assert room_text(1, 4, True) != room_text(1, 4, False)
