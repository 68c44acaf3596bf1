"""ReplayEnvAdapter: snapshot/restore by reset + replay, its cost in env steps, and the determinism check."""

from __future__ import annotations

import itertools
import json

import pytest

from agentgym.env import AsyncEnv, SupportsSnapshot
from agentgym.replay import NotReplaySafeError, ReplayEnvAdapter


class CounterEnv(AsyncEnv):
    """Deterministic unless `noisy`: observations are the running sum of the numbers sent (plus a clock if noisy)."""

    env_id = "test/counter-v0"
    _calls = itertools.count()

    def __init__(self, noisy: bool = False):
        self.noisy = noisy
        self.total = 0

    async def areset(self, *, seed=None, options=None):
        await super().areset(seed=seed)
        self.total = int(self.np_random.integers(100))
        return {"messages": [{"role": "user", "content": f"start {self.total}"}]}, {"task_id": "c"}

    async def astep(self, action):
        self.total += int(action["content"])
        extra = f" t={next(self._calls)}" if self.noisy else ""
        return {"messages": [{"role": "user", "content": f"sum {self.total}{extra}"}]}, 0.0, self.total > 1000, False, {}


def act(x: int) -> dict:
    return {"role": "assistant", "content": str(x)}


async def test_restore_returns_to_the_snapshot_state_and_costs_depth_steps():
    env = ReplayEnvAdapter(CounterEnv())
    assert isinstance(env, SupportsSnapshot)
    await env.areset(seed=3)
    for x in (1, 2, 3):
        await env.astep(act(x))
    snap = await env.snapshot()
    json.dumps(snap.payload)  # JSON-able: (seed, options, actions, fingerprints)
    want = await env.astep(act(10))
    await env.astep(act(50))
    steps = env.env_steps
    await env.restore(snap)
    assert env.env_steps - steps == 3 and env.replay_steps == 3  # depth 3 -> 3 replayed steps
    assert await env.astep(act(10)) == want


async def test_a_non_deterministic_env_raises_not_replay_safe():
    env = ReplayEnvAdapter(CounterEnv(noisy=True))
    await env.areset(seed=0)
    await env.astep(act(1))
    snap = await env.snapshot()
    with pytest.raises(NotReplaySafeError, match="not deterministic"):
        await env.restore(snap)
    with pytest.raises(NotReplaySafeError):
        await env.check_replay_safe()


async def test_check_replay_safe_passes_on_the_sql_env_and_matches_native_restore():
    from agentgym.envs.sql.env import SqlEnv

    query = {"role": "assistant", "content": None, "tool_calls": [{"id": "a", "type": "function", "function": {
        "name": "execute_sql", "arguments": json.dumps({"query": "SELECT COUNT(*) FROM sqlite_master"})}}]}
    async with ReplayEnvAdapter(SqlEnv(split="train")) as env:
        _, info = await env.areset(seed=1, options={"split": "train"})
        await env.astep(query)
        await env.check_replay_safe()
        snap = await env.snapshot()
        oracle = await env.oracle_action()  # the wrapped env's capabilities pass through
        obs, reward, done, _, _ = await env.astep(oracle)
        assert reward == 1.0 and done
        await env.restore(snap)
        assert (await env.astep(oracle))[0] == obs
