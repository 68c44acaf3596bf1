"""CLI wiring for acting with a critic or with search: best-of-N over a learned Q, and MCTS at test time.

``agentgym bench ENV --policy P --best-of-n N --critic DIR`` wraps the policy; ``--search mcts
--simulations K`` runs a tree search per held-out task instead of one episode; ``agentgym train ENV --algo
qvalue --records FILE`` fits the critic offline. Part of the command line (it joins envs, policies, trainers
and planning).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from agentgym.policy import Policy
from agentgym.stats import wilson_interval


def with_best_of_n(policy: Policy, n: int, critic_dir: Path | None, margin: float = 0.0) -> Policy:
    """The policy wrapped to sample `n` candidates and act with the one the critic values most."""
    if critic_dir is None:
        raise ValueError("--best-of-n needs --critic DIR (fit one with `agentgym train ENV --algo qvalue`)")
    from agentgym.planning.best_of_n import BestOfNPolicy
    from agentgym.trainers.qvalue import load_critic

    return BestOfNPolicy(policy, load_critic(critic_dir), n=n, margin=margin)


def fit_critic(records: list[Path], out: Path, cql_alpha: float, featurizer: str) -> Path:
    """Offline twin-Q/V critic from recorded episodes (train split only)."""
    from agentgym.trainers.qvalue import QValueConfig, fit_critic_from_records

    return fit_critic_from_records(records, out, QValueConfig(cql_alpha=cql_alpha, featurizer=featurizer))


async def bench_with_search(env_id: str, policy: Policy, *, split: str, episodes: int | None, simulations: int,
                            critic_dir: Path | None, out: Path, seed: int, env_kwargs: dict[str, Any],
                            concurrency: int = 2) -> dict[str, Any]:
    """MCTS on each held-out task; success = the best trajectory found succeeds. Writes results.json and trees."""
    from agentgym.planning.mcts import MCTSConfig, search
    from agentgym.registry import asuite, make

    critic = None
    if critic_dir is not None:
        from agentgym.trainers.qvalue import load_critic

        critic = load_critic(critic_dir)
    tasks = (await asuite(env_id, **{**env_kwargs, "split": split})).tasks(split)
    tasks = tasks[:episodes] if episodes else tasks
    config = MCTSConfig(simulations=simulations, evaluator="value" if critic else "terminal", seed=seed)
    (out / "trees").mkdir(parents=True, exist_ok=True)
    gate = asyncio.Semaphore(concurrency)

    async def one(task_id: str) -> dict[str, Any]:
        async with gate:
            task_env = make(env_id, split=split, **env_kwargs)
            try:
                result = await search(task_env, policy, config, seed=seed, options={"task_id": task_id},
                                      value_fn=critic.value if critic else None)
            finally:
                await task_env.aclose()
        (out / "trees" / f"{task_id}.json").write_text(json.dumps(result.to_json()))
        return {"task_id": task_id, "success": bool(result.success), "best_return": result.best_return,
                "policy_calls": result.policy_calls, "env_steps": result.env_steps, "seconds": result.seconds}

    started = time.perf_counter()
    rows = await asyncio.gather(*(one(t.id) for t in tasks))
    solved = sum(r["success"] for r in rows)
    results = {"env": env_id, "split": split, "policy": f"mcts({policy.name})", "tasks": len(rows),
               "simulations": simulations, "leaf_values": "critic" if critic else "env terminal reward",
               "success_rate": solved / len(rows) if rows else 0.0,
               "success_ci95": list(wilson_interval(solved, len(rows))),
               "policy_calls_per_task": sum(r["policy_calls"] for r in rows) / max(len(rows), 1),
               "env_steps_per_task": sum(r["env_steps"] for r in rows) / max(len(rows), 1),
               "policy_calls_per_solved": sum(r["policy_calls"] for r in rows) / max(solved, 1),
               "wall_s": time.perf_counter() - started, "per_task": rows}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return results
