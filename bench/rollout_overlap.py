"""Rollout engine overlap: throughput against the ideal, and against a batch-synchronous loop.

1. Fixed latencies: a simulated policy that answers after exactly 100 ms, an env step of ~0 ms.
   Throughput (turns/s) at concurrency 1, 8, 32, 128 against the ideal concurrency / latency.
2. Variable latencies (log-normal policy and env latencies, 1-8 turns per episode), measured side by
   side on identical pre-sampled work: our async engine vs a batch-synchronous loop that steps all envs,
   waits for the slowest, then generates for all (a batched generate finishes with its slowest request).

Run: python bench/rollout_overlap.py  -> bench/results/rollout_overlap.json
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from agentgym.env import AsyncEnv  # noqa: E402
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs  # noqa: E402
from agentgym.spaces import AssistantActionSpace, ChatObservationSpace  # noqa: E402

Plan = dict[str, dict[str, Any]]  # task id -> {"turns": n, "env_s": [...], "policy_s": [...]}


class SimulatedEnv(AsyncEnv):
    """An env whose step latency and episode length come from a pre-sampled plan."""

    tools = ()

    def __init__(self, plan: Plan):
        self.plan = plan
        self.observation_space = ChatObservationSpace()
        self.action_space = AssistantActionSpace()

    async def areset(self, *, seed=None, options=None):
        await super().areset(seed=seed)
        self.task = self.plan[options["task_id"]]
        self.turn = 0
        return {"messages": [{"role": "user", "content": "go"}]}, {"split": "test"}

    async def astep(self, action):
        await asyncio.sleep(self.task["env_s"][self.turn])
        self.turn += 1
        done = self.turn >= self.task["turns"]
        info = {"outcome": {"reward": 1.0, "success": True}} if done else {}
        return {"messages": [{"role": "user", "content": "ok"}]}, 1.0 if done else 0.0, done, False, info


class SimulatedPolicy:
    """Answers after the planned latency of this (task, turn)."""

    name = "simulated"

    def __init__(self, plan: Plan):
        self.plan = plan

    async def act(self, observation, tools):
        await asyncio.sleep(self.plan[observation.task_id]["policy_s"][observation.turn])
        return "next"


def make_plan(n: int, *, rng: np.random.Generator | None, turns: int = 4, policy_s: float = 0.1,
              env_s: float = 0.0) -> Plan:
    plan: Plan = {}
    for i in range(n):
        if rng is None:
            t = turns
            p = [policy_s] * t
            e = [env_s] * t
        else:
            t = int(rng.integers(1, 9))
            p = list(rng.lognormal(np.log(0.1), 0.8, size=t))   # median 100 ms
            e = list(rng.lognormal(np.log(0.02), 1.0, size=t))  # median 20 ms
        plan[f"task{i:05d}"] = {"turns": t, "policy_s": p, "env_s": e}
    return plan


async def engine_throughput(plan: Plan, concurrency: int) -> dict[str, float]:
    jobs = make_jobs(sorted(plan))
    engine = RolloutEngine(lambda: SimulatedEnv(plan), SimulatedPolicy(plan), RolloutConfig(concurrency=concurrency))
    start = time.perf_counter()
    records = await engine.run(jobs)
    wall = time.perf_counter() - start
    turns = sum(r.num_turns for r in records)
    assert turns == sum(p["turns"] for p in plan.values())
    return {"wall_s": wall, "turns": turns, "turns_per_s": turns / wall}


async def batch_synchronous_throughput(plan: Plan, batch: int) -> dict[str, float]:
    """Step all envs of a batch together, then generate for all together; next batch when all are done."""
    ids = sorted(plan)
    start = time.perf_counter()
    turns = 0
    for b in range(0, len(ids), batch):
        active = {tid: 0 for tid in ids[b:b + batch]}
        while active:
            # generate for all active episodes: a batched call returns when its slowest request does
            await asyncio.sleep(max(plan[t]["policy_s"][k] for t, k in active.items()))
            # step all envs concurrently, wait for all
            await asyncio.gather(*(asyncio.sleep(plan[t]["env_s"][k]) for t, k in active.items()))
            turns += len(active)
            active = {t: k + 1 for t, k in active.items() if k + 1 < plan[t]["turns"]}
    wall = time.perf_counter() - start
    return {"wall_s": wall, "turns": turns, "turns_per_s": turns / wall}


async def main() -> None:
    fixed = {}
    for c in (1, 8, 32, 128):
        n = max(4, c * 3)
        got = await engine_throughput(make_plan(n, rng=None), c)
        ideal = c / 0.1
        fixed[str(c)] = {**got, "ideal_turns_per_s": ideal, "fraction_of_ideal": got["turns_per_s"] / ideal}
        print(f"fixed 100 ms policy, concurrency {c:>3}: {got['turns_per_s']:8.1f} turns/s = "
              f"{got['turns_per_s'] / ideal:.1%} of ideal")
    plan = make_plan(256, rng=np.random.default_rng(0))
    ours = await engine_throughput(plan, 32)
    batch = await batch_synchronous_throughput(plan, 32)
    speedup = ours["turns_per_s"] / batch["turns_per_s"]
    print(f"variable latencies, concurrency 32: engine {ours['turns_per_s']:.1f} turns/s, "
          f"batch-synchronous {batch['turns_per_s']:.1f} turns/s, speedup {speedup:.2f}x")
    write_results("rollout_overlap", {
        "fixed_policy_latency_ms": 100,
        "fixed": fixed,
        "variable": {"episodes": len(plan), "concurrency": 32,
                     "policy_latency": "lognormal(median 100 ms, sigma 0.8)",
                     "env_latency": "lognormal(median 20 ms, sigma 1.0)", "turns_per_episode": "uniform 1-8",
                     "engine": ours, "batch_synchronous": batch, "speedup": speedup},
        "targets": {"fraction_of_ideal_at_32": ">= 0.90", "speedup_vs_batch_synchronous": ">= 3x"},
    })


if __name__ == "__main__":
    asyncio.run(main())
