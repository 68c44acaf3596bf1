"""The on-policy RL loop end to end: a tiny model served by the built-in server, token-in/token-out rollouts
on a real env, PPO updates, weight sync with versions, and resume from a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import agentgym  # noqa: E402
from agentgym.policies.server import HFServer  # noqa: E402
from agentgym.policies.tiny_model import build_tiny_model  # noqa: E402
from agentgym.policies.token_policy import TokenPolicy  # noqa: E402
from agentgym.records import iter_episodes  # noqa: E402
from agentgym.trainers.config import RLConfig, build_config  # noqa: E402
from agentgym.trainers.rl import TrainTask, train_rl  # noqa: E402

ENV = "agentgym/corridor-v0"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    texts = ["You walk down a corridor of 6 rooms. call move(direction) north east south west"] * 20
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts, hidden_size=64, num_layers=2,
                            num_heads=2, num_kv_heads=1, intermediate_size=128, vocab_size=600)


async def corridor_tasks() -> list[TrainTask]:
    env = agentgym.make(ENV, split="train", horizon=3)
    try:
        return [TrainTask(t.id, t.family) for t in (await env.aload_suite()).tasks("train")]
    finally:
        await env.aclose()


async def run(cfg: RLConfig, model: Path) -> list[int]:
    """Train with a fresh server (as after a crash); returns the steps the progress callback saw."""
    seen: list[int] = []
    async with HFServer(model, max_model_len=1024) as server:
        async with TokenPolicy(model, server.base_url, temperature=1.0, max_tokens=16,
                               max_model_len=1024) as policy:
            await train_rl(cfg, env_factory=lambda: agentgym.make(ENV, split="train", horizon=3),
                           tasks=await corridor_tasks(), policy=policy, sync_weights=server.load_weights,
                           progress=lambda step, row: seen.append(step))
    return seen


async def test_rl_updates_sync_versioned_weights_and_resume_exactly(tiny, tmp_path):
    layer = {"model": str(tiny), "env_id": ENV, "run_dir": str(tmp_path / "rl"), "algo": "gigpo", "steps": 2,
             "tasks_per_step": 2, "group_size": 2, "micro_batch_size": 2, "lr": 1e-3, "max_tokens": 16,
             "group_filter": "none", "checkpoint_every": 1, "tensorboard": False, "concurrency": 4}
    assert await run(build_config(RLConfig, layer), tiny) == [1, 2]

    rows = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert [r["model_version"] for r in rows] == [1, 2]  # every update reached the server
    # step 2 sampled from the weights of update 1, and the trainer's log-probs of those tokens (before its own
    # update) equal the server's: the sync moved exactly the trained weights
    step2 = list(iter_episodes(tmp_path / "rl" / "rollouts" / "step-00000002.jsonl"))
    assert step2 and all(t.model_version == 1 for r in step2 for t in r.turns)
    assert rows[1]["logprob_gap"] < 1e-3
    assert rows[0]["tokens"] > 0 and "adv_turn/0" in rows[0]

    # resume: the run continues at step 3 from the newest checkpoint; no step is logged twice
    assert await run(build_config(RLConfig, {**layer, "steps": 3}), tiny) == [3]
    rows = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[2]["model_version"] == 2  # the fresh server got the restored weights (1), then one update (2)
    assert (tmp_path / "rl" / "final" / "config.json").exists()
