"""Benchmark numbers count every scheduled episode: infrastructure failures fail the run instead of vanishing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flaky_env import FlakyGuessEnv
from guess_env import GuessEnv

from agentgym.benchmark import BenchConfig, RunMismatchError, run_benchmark
from agentgym.compare import compare_runs
from agentgym.policies.oracle import OraclePolicy

EXAMPLE = Path(__file__).parent / "plugin_example"
CLI = [sys.executable, "-m", "agentgym.cli"]


def _install_flaky_plugin(site: Path) -> dict[str, str]:
    """A plug-in distribution registering example/flaky-guess-v0 by entry point; returns the environment to use it."""
    site.mkdir()
    for module in ("guess_env.py", "flaky_env.py"):
        (site / module).write_text((EXAMPLE / module).read_text())
    dist = site / "agentgym_flaky_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: agentgym-flaky-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[agentgym.envs]\nflaky = flaky_env:register\n")
    return {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}


def test_a_plugin_whose_tool_breaks_fails_the_benchmark_with_honest_numbers(tmp_path):
    env = _install_flaky_plugin(tmp_path / "site")
    out = tmp_path / "run"
    run = subprocess.run([*CLI, "bench", "example/flaky-guess-v0", "--policy", "oracle", "--episodes", "30",
                          "--out", str(out), "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "WARNING: infrastructure failures" in run.stderr and "--max-infra-error-rate" in run.stderr
    results = json.loads((out / "results.json").read_text())
    secrets = [FlakyGuessEnv(split="test").suite.get(t).params["secret"]
               for t in FlakyGuessEnv(split="test").suite.manifest("test").task_ids[:30]]
    broken = sum(s % 3 == 0 for s in secrets)
    assert 0 < broken < 30 and results["infra_errors"] == broken
    assert results["success_rate"] == (30 - broken) / 30          # failures count as failures
    assert results["success_rate_scored"] == 1.0                   # the survivors alone look perfect
    assert results["success_ci95"][1] < 1.0 and results["success_ci95_scored"][1] == 1.0
    assert results["retried_episodes"] == broken and results["attempts"] == 30 + 2 * broken  # 3 tries each
    report = (out / "report.md").read_text()
    assert report.index("success rate (all episodes)") < report.index("success rate (scored episodes only)")
    assert "failed its infrastructure check" in report
    # a resume that changes a field says which one
    again = subprocess.run([*CLI, "bench", "example/flaky-guess-v0", "--policy", "oracle", "--episodes", "31",
                            "--out", str(out), "--resume", "--no-progress"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 2 and "episodes: 30 -> 31" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr
    # a higher limit accepts the run
    lenient = subprocess.run([*CLI, "bench", "example/flaky-guess-v0", "--policy", "oracle", "--episodes", "30",
                              "--out", str(tmp_path / "lenient"), "--max-infra-error-rate", "0.5", "--no-progress"],
                             env=env, capture_output=True, text=True, timeout=300)
    assert lenient.returncode == 0, lenient.stderr


async def test_retries_of_earlier_invocations_are_counted_after_a_resume(tmp_path):
    class Flaky(GuessEnv):
        broken = True

        async def begin_episode(self, task):
            if Flaky.broken and task.params["secret"] % 2 == 0:
                raise ConnectionError("service down")
            return await super().begin_episode(task)

    cfg = BenchConfig(env_id="example/guess-v0", policy="oracle", split="test", episodes=10, concurrency=2)
    first = await run_benchmark(cfg, OraclePolicy(), tmp_path, env_factory=lambda: Flaky(split="test"))
    failed = first["infra_errors"]
    assert failed > 0 and first["infra_error_warning"] and first["attempts"] == 10 + 2 * failed
    Flaky.broken = False
    again = await run_benchmark(cfg, OraclePolicy(), tmp_path, resume=True, env_factory=lambda: Flaky(split="test"))
    assert again["success_rate"] == 1.0 and again["infra_error_warning"] is None
    assert again["retried_episodes"] == failed and again["attempts"] == 10 + 3 * failed  # 3 failed tries + 1


async def test_compare_pairs_scored_episodes_only_and_says_how_many_it_dropped(tmp_path):
    cfg = BenchConfig(env_id="example/flaky-guess-v0", policy="oracle", split="test", episodes=12, concurrency=2)
    await run_benchmark(cfg, OraclePolicy(), tmp_path / "flaky", env_factory=lambda: FlakyGuessEnv(split="test"))
    clean = BenchConfig(env_id="example/flaky-guess-v0", policy="oracle", split="test", episodes=12, concurrency=2)
    await run_benchmark(clean, OraclePolicy(), tmp_path / "clean", env_factory=lambda: GuessEnv(split="test"))
    paired = compare_runs([tmp_path / "clean", tmp_path / "flaky"])["runs"][1]["vs_baseline"]
    flaky = json.loads((tmp_path / "flaky" / "results.json").read_text())
    assert paired["dropped_episodes"] == paired["dropped_unscored"] == flaky["infra_errors"] > 0
    assert paired["paired_episodes"] == 12 - flaky["infra_errors"] and paired["losses"] == 0


def test_identity_diff_names_the_field():
    from agentgym.benchmark import identity_diff

    assert identity_diff({"split": "dev", "seed": 0}, {"split": "test", "seed": 0}) == "split: 'dev' -> 'test'"
    assert issubclass(RunMismatchError, Exception)
