"""Benchmarks: held-out splits only, the results.json contract, reports, and resume without loss or double count."""

from __future__ import annotations

import json

import pytest
from guess_env import GuessEnv

from agentgym.benchmark import BenchConfig, RunMismatchError, run_benchmark
from agentgym.errors import SplitLeakError
from agentgym.policies.oracle import OraclePolicy
from agentgym.policies.random_policy import RandomPolicy
from agentgym.provenance import write_provenance
from agentgym.records import iter_episodes

REQUIRED = {"env", "split", "manifest_checksum", "policy", "episodes", "success_rate", "success_ci95", "mean_reward",
            "mean_turns", "infra_errors", "latency_ms"}


def config(**kw) -> BenchConfig:
    return BenchConfig(**{"env_id": "example/guess-v0", "policy": "oracle", "split": "test", "episodes": 30,
                          "concurrency": 4, **kw})


def factory():
    return GuessEnv(split="test")


async def test_results_json_report_and_plot(tmp_path):
    results = await run_benchmark(config(samples=3), OraclePolicy(), tmp_path, env_factory=factory)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert REQUIRED <= set(on_disk) and on_disk == json.loads(json.dumps(results))
    assert results["episodes"] == 90 and results["tasks"] == 30 and results["success_rate"] == 1.0
    assert results["pass_at_k"] == {"1": 1.0, "2": 1.0, "3": 1.0}
    assert results["success_ci95"][1] == 1.0 and results["success_ci95"][0] > 0.95
    assert set(results["latency_ms"]) == {"policy", "env"} and results["latency_ms"]["env"]["p99"] is not None
    report = (tmp_path / "report.md").read_text()
    assert "success rate" in report and "![success by family" in report and "### a success" in report
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_random_policy_scores_near_zero_with_pass_at_k(tmp_path):
    results = await run_benchmark(config(samples=2, policy="random"), RandomPolicy(seed=3), tmp_path,
                                  env_factory=factory)
    assert results["success_rate"] < 0.2
    assert results["pass_at_k"]["2"] >= results["pass_at_k"]["1"]


async def test_train_split_and_trained_splits_are_refused(tmp_path):
    with pytest.raises(SplitLeakError, match="held-out splits only"):
        await run_benchmark(config(split="train"), OraclePolicy(), tmp_path / "a", env_factory=factory)
    prov_dir = tmp_path / "ckpt"
    write_provenance(prov_dir, "example/guess-v0", ["train", "dev"])
    from agentgym.provenance import read_provenance

    prov = read_provenance(prov_dir)
    with pytest.raises(SplitLeakError, match="trained on it"):
        await run_benchmark(config(split="dev"), OraclePolicy(), tmp_path / "b", provenance=prov, env_factory=factory)
    await run_benchmark(config(split="test", episodes=2), OraclePolicy(), tmp_path / "c", provenance=prov,
                        env_factory=factory)


async def test_resume_finishes_a_torn_run_with_no_loss_or_double_count(tmp_path):
    full = await run_benchmark(config(), OraclePolicy(), tmp_path / "full", env_factory=factory)
    out = tmp_path / "crashed"
    await run_benchmark(config(), OraclePolicy(), out, env_factory=factory)
    # simulate a kill -9: keep 11 whole lines plus half of the 12th
    lines = (out / "episodes.jsonl").read_bytes().split(b"\n")
    (out / "episodes.jsonl").write_bytes(b"\n".join(lines[:11]) + b"\n" + lines[11][:50])
    with pytest.raises(RunMismatchError, match="--resume"):
        await run_benchmark(config(), OraclePolicy(), out, env_factory=factory)
    resumed = await run_benchmark(config(), OraclePolicy(), out, resume=True, env_factory=factory)
    keys = [r.key for r in iter_episodes(out / "episodes.jsonl")]
    assert len(keys) == len(set(keys)) == full["episodes"] == resumed["episodes"] == 30
    assert resumed["success_rate"] == full["success_rate"] and resumed["manifest_checksum"] == full["manifest_checksum"]


async def test_resume_refuses_a_different_run(tmp_path):
    await run_benchmark(config(episodes=3), OraclePolicy(), tmp_path, env_factory=factory)
    with pytest.raises(RunMismatchError, match="different run"):
        await run_benchmark(config(episodes=4), OraclePolicy(), tmp_path, resume=True, env_factory=factory)


async def test_axis_filter_selects_only_that_held_out_axis(tmp_path):
    results = await run_benchmark(config(axis="iid", episodes=None), OraclePolicy(), tmp_path, env_factory=factory)
    assert set(results["by_axis"]) == {"iid"}
    assert set(results["by_family"]) <= {"range-10", "range-50"}


async def test_resume_reruns_infrastructure_failures_and_torn_tails(tmp_path):
    class Flaky(GuessEnv):
        broken = True

        async def begin_episode(self, task):
            if Flaky.broken and task.params["secret"] % 3 == 0:
                raise ConnectionError("service down")
            return await super().begin_episode(task)

    cfg = config(episodes=12, env_kwargs={"tool_parsers": ("openai", "hermes")})  # tuples survive resume
    first = await run_benchmark(cfg, OraclePolicy(), tmp_path, env_factory=lambda: Flaky(split="test"))
    assert first["infra_errors"] > 0
    # a crash right before the final newline of a complete record
    data = (tmp_path / "episodes.jsonl").read_bytes()
    (tmp_path / "episodes.jsonl").write_bytes(data[:-1])
    Flaky.broken = False
    again = await run_benchmark(cfg, OraclePolicy(), tmp_path, resume=True, env_factory=lambda: Flaky(split="test"))
    assert again["infra_errors"] == 0 and again["episodes"] == 12 and again["success_rate"] == 1.0
    assert again["missing_episodes"] == 0


async def test_tool_error_rate_is_a_rate(tmp_path):
    class Unknown:
        name = "unknown-tool"

        async def act(self, observation, tools):
            return '<tool_call>{"name": "shout", "arguments": {}}</tool_call>'

    results = await run_benchmark(config(episodes=5, policy="unknown-tool"), Unknown(), tmp_path, env_factory=factory)
    assert results["tool_error_rate"] == 1.0 and results["invalid_action_rate"] == 1.0
