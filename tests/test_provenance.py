"""The leak guard works end to end: a trained model carries what it saw, and bench refuses those splits."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

import agentgym
from agentgym.errors import SplitLeakError
from agentgym.provenance import (PROVENANCE_FILE, check_benchmark_split, read_provenance, task_ids_hash,
                                 write_model_provenance)
from agentgym.records import EpisodeWriter
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs

ENV = "agentgym/corridor-v0"
TINY = dict(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64, vocab_size=600)


@pytest.fixture(scope="module")
def trained_on_dev(tmp_path_factory):
    """A tiny model fine-tuned (SFT, 2 steps) on oracle episodes of four dev-split tasks."""
    from agentgym.policies.tiny_model import build_tiny_model
    from agentgym.policy import make_policy
    from agentgym.trainers.config import SFTConfig
    from agentgym.trainers.sft import train_sft

    root = tmp_path_factory.mktemp("prov")
    dev_ids = [t.id for t in asyncio.run(agentgym.make(ENV).aload_suite()).tasks("dev")[:4]]

    async def rollouts():
        engine = RolloutEngine(lambda: agentgym.make(ENV, split="dev"), make_policy("oracle"), RolloutConfig(concurrency=2))
        return await engine.run(make_jobs(dev_ids))

    records = asyncio.run(rollouts())
    assert all(r.success and r.split == "dev" for r in records)
    with EpisodeWriter(root / "dev.jsonl") as writer:
        for r in records:
            writer.write(r)
    texts = [m.get("content") or "" for r in records for t in r.turns for m in t.observation]
    base = build_tiny_model(root / "base", texts, **TINY)
    cfg = SFTConfig(model=str(base), train_data=[str(root / "dev.jsonl")], dev_data=[str(root / "dev.jsonl")],
                    run_dir=str(root / "sft"), env_id=ENV, steps=2, batch_size=2, micro_batch_size=2,
                    checkpoint_every=2, max_seq_len=256)
    result = train_sft(cfg)
    return {"model": result.model_dir, "task_ids": dev_ids}


def test_sft_writes_what_the_model_was_trained_on(trained_on_dev):
    prov = json.loads((trained_on_dev["model"] / PROVENANCE_FILE).read_text())
    [entry] = prov["trained_on"]
    assert entry["env_id"] == ENV and entry["splits"] == ["dev"] and entry["trainer"] == "sft"
    assert entry["num_tasks"] == 4 and entry["task_ids_sha256"] == task_ids_hash(trained_on_dev["task_ids"])
    suite = agentgym.make(ENV).suite
    assert entry["manifest_checksums"] == {"dev": suite.manifest("dev").checksum} and entry["suite"] == suite.name


def test_bench_refuses_the_trained_split_and_names_the_override(trained_on_dev, tmp_path):
    model = str(trained_on_dev["model"])
    run = subprocess.run([sys.executable, "-m", "agentgym.cli", "bench", ENV, "--policy", "hf", "--model", model,
                          "--split", "dev", "--out", str(tmp_path / "b"), "--no-progress"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert run.returncode == 2 and "trained on it" in run.stderr and "--allow-trained-split" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "b").exists()  # refused before any server started
    prov = read_provenance(model)
    check_benchmark_split(ENV, "test", prov)  # the split it never saw is fine
    check_benchmark_split(ENV, "dev", prov, allow_trained_split=True)


def test_a_model_inherits_the_provenance_of_the_model_it_started_from(trained_on_dev, tmp_path):
    write_model_provenance(tmp_path / "rl", [{"env_id": "other/env-v0", "splits": ["train"]}],
                           base_model=trained_on_dev["model"])
    prov = read_provenance(tmp_path / "rl")
    assert [e["env_id"] for e in prov["trained_on"]] == [ENV, "other/env-v0"]
    with pytest.raises(SplitLeakError, match="--allow-trained-split"):
        check_benchmark_split(ENV, "dev", prov)


def test_an_rl_step_without_reward_variance_explains_itself():
    from agentgym.records import EpisodeRecord
    from agentgym.trainers.config import RLConfig
    from agentgym.trainers.rl import no_update_reason

    def rec(success):
        return EpisodeRecord(episode_id="e", env_id=ENV, task_id="t", split="train", seed=0,
                             success=success, reward=float(bool(success)))

    assert "every episode failed" in no_update_reason([rec(False)] * 4) and "--sft oracle" in no_update_reason([rec(False)])
    assert "--group-size" in no_update_reason([rec(True), rec(False)])
    assert "infrastructure" in no_update_reason([rec(None)])
    assert RLConfig().max_steps_without_update == 10
