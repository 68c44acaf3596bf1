"""The on-policy RL loop end to end: a tiny model served by the built-in server, token-in/token-out rollouts
on a real env, PPO updates, weight sync with versions, and resume from a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import agentgym  # noqa: E402
from agentgym.policies.hf_server import HFServer  # noqa: E402
from agentgym.policies.tiny_model import build_tiny_model  # noqa: E402
from agentgym.policies.token_policy import TokenPolicy  # noqa: E402
from agentgym.records import iter_episodes  # noqa: E402
from agentgym.trainers.config import RLConfig, build_config  # noqa: E402
from agentgym.trainers.rl import TrainTask, train_rl  # noqa: E402

# end-to-end training: minutes on a quiet 2-core machine, far longer on a loaded one; the guard is for hangs only
pytestmark = pytest.mark.timeout(2400)

ENV = "agentgym/corridor-v0"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    texts = ["You walk down a corridor of 6 rooms. call move(direction) north east south west"] * 20
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts, hidden_size=64, num_layers=2,
                            num_heads=2, num_kv_heads=1, intermediate_size=128, vocab_size=600)


@pytest.fixture(scope="module")
def warm(tiny, tmp_path_factory) -> Path:
    """The tiny model after a short SFT on oracle corridor episodes: it makes valid moves (and wrong doors at
    temperature 1), so groups differ in reward and the RL updates below really move the weights."""
    import asyncio

    from agentgym.policy import make_policy
    from agentgym.records import EpisodeWriter
    from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs
    from agentgym.trainers.config import SFTConfig
    from agentgym.trainers.sft import train_sft

    root = tmp_path_factory.mktemp("warm")

    async def record() -> None:
        ids = [t.id for t in await corridor_tasks()][:48]
        with EpisodeWriter(root / "oracle.jsonl") as writer:
            await RolloutEngine(lambda: agentgym.make(ENV, split="train", horizon=3), make_policy("oracle"),
                                RolloutConfig(concurrency=8)).run(make_jobs(ids, 1, 0), on_record=writer.write)

    asyncio.run(record())
    train_sft(build_config(SFTConfig, {"model": str(tiny), "train_data": [str(root / "oracle.jsonl")],
                                       "run_dir": str(root / "sft"), "env_id": ENV, "steps": 200, "lr": 3e-3,
                                       "tensorboard": False, "checkpoint_every": 200}))
    return root / "sft" / "final"


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


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
        async with TokenPolicy(model, server.base_url, temperature=1.0, max_tokens=40,
                               max_model_len=1024) as policy:
            await train_rl(cfg, env_factory=lambda: agentgym.make(ENV, split="train", horizon=3),
                           tasks=await corridor_tasks(), policy=policy, sync_weights=server.load_weights,
                           progress=lambda step, row: seen.append(step))
    return seen


async def test_rl_updates_sync_versioned_weights_and_resume_exactly(warm, tmp_path):
    layer = {"model": str(warm), "env_id": ENV, "run_dir": str(tmp_path / "rl"), "algo": "gigpo", "steps": 2,
             "tasks_per_step": 4, "group_size": 4, "micro_batch_size": 4, "lr": 1e-3, "max_tokens": 40,
             "checkpoint_every": 1, "tensorboard": False, "concurrency": 8,
             "reward_shaping": "invalid_action=-0.2"}
    assert await run(build_config(RLConfig, layer), warm) == [1, 2]

    rows = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert [r["model_version"] for r in rows] == [1, 2]  # every update reached the server
    # step 2 sampled from the weights of update 1, and the trainer's log-probs of those tokens (before its own
    # update) equal the server's: the sync moved exactly the trained weights
    step2 = list(iter_episodes(tmp_path / "rl" / "rollouts" / "step-00000002.jsonl"))
    assert step2 and all(t.model_version == 1 for r in step2 for t in r.turns)
    assert rows[1]["logprob_gap"] < 1e-3
    assert rows[0]["tokens"] > 0 and "adv_turn/0" in rows[0] and rows[0]["kept_episodes"] > 0
    # the updates were real: the weights the server got differ from the SFT model they started from
    start, synced = _weights(warm), _weights(tmp_path / "rl" / "weights" / "step-00000002")
    assert max(float((synced[k] - start[k]).abs().max()) for k in start) > 1e-4

    # resume: the run continues at step 3 from the newest checkpoint; no step is logged twice
    assert await run(build_config(RLConfig, {**layer, "steps": 3}), warm) == [3]
    rows = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[2]["model_version"] == 2  # the fresh server got the restored weights (1), then one update (2)
    assert (tmp_path / "rl" / "final" / "config.json").exists()
