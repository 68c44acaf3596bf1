"""Ray scale-out of rollouts: one record per job, resume, and no job lost when a worker dies mid-run."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter

import pytest

from agentgym.distributed import EnvSpec, _Coordinator, run_distributed, worker_name
from agentgym.records import iter_episodes
from agentgym.rollout import EpisodeJob, make_jobs

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ray = pytest.importorskip("ray")

from agentgym.policies.oracle import OraclePolicy  # noqa: E402

ENV = EnvSpec("agentgym/sql-v0", {"split": "train"})


def slow_oracle_factory(delay_s: float = 0.15):
    """The oracle, slowed down so that workers hold leased jobs when one is killed (pickled by value)."""
    from agentgym.policies.oracle import OraclePolicy

    class SlowOracle(OraclePolicy):
        async def act(self, observation, tools):
            await asyncio.sleep(delay_s)
            return await super().act(observation, tools)

    return SlowOracle()


def failing_factory():
    raise RuntimeError("this policy cannot be built")


@pytest.fixture(scope="module")
def local_ray():
    # the factories below live in this test module, which Ray workers cannot import: ship them by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def train_ids():
    from agentgym.registry import make

    async def ids():
        env = make("agentgym/sql-v0", split="train")
        try:
            return list((await env.aload_suite()).manifest("train").task_ids)
        finally:
            await env.aclose()

    return asyncio.run(ids())


def test_coordinator_requeues_a_dead_workers_jobs_then_gives_up_after_max_attempts():
    jobs = [EpisodeJob("a"), EpisodeJob("b"), EpisodeJob("c")]
    c = _Coordinator(jobs, max_job_attempts=2, policy_name="p")
    assert c.lease("w1").task_id == "a" and c.lease("w1").task_id == "b"
    assert c.complete("w1", "a#0", {"done": "a"}) is True
    assert c.complete("w2", "b#0", {"forged": True}) is False   # w2 never leased b
    assert c.requeue("w1") == 1                                   # b goes back to the queue, first in line
    assert c.lease("w2").task_id == "b"
    c.requeue("w2")                                               # b's second lease died too: out of attempts
    out, remaining = c.drain()
    assert out[0] == {"done": "a"}
    assert out[1]["task_id"] == "b" and out[1]["termination"] == "infra_error" and out[1]["success"] is None
    assert out[1]["attempts"] == 2
    assert remaining == 1 and c.lease("w3").task_id == "c" and c.lease("w3") is None
    assert c.stats()["requeued"] == 1


def test_every_job_gets_exactly_one_record_and_resume_skips_finished_ones(local_ray, train_ids, tmp_path):
    jobs = make_jobs(train_ids[:12], samples_per_task=2, base_seed=3)
    out = tmp_path / "episodes.jsonl"
    result = run_distributed(jobs, ENV, OraclePolicy, workers=2, concurrency_per_worker=4, out_path=out,
                             worker_num_cpus=1)
    assert result.worker_deaths == 0 and result.skipped == 0
    keys = Counter(r.key for r in iter_episodes(out))
    assert keys == Counter(j.key for j in jobs)
    assert all(r.success is True and r.reward is not None for r in result.records)
    assert {r.seed for r in result.records} == {j.seed for j in jobs}

    again = run_distributed(jobs, ENV, OraclePolicy, workers=2, concurrency_per_worker=4, out_path=out)
    assert again.skipped == len(jobs) and again.records == []
    assert len(list(iter_episodes(out))) == len(jobs)


def test_a_worker_killed_mid_run_loses_no_job(local_ray, train_ids, tmp_path):
    jobs = make_jobs(train_ids[:16], samples_per_task=1, base_seed=5)
    out = tmp_path / "episodes.jsonl"
    killed: list[str] = []

    def kill_first_worker(record):
        if not killed:  # after the first finished episode: the other lanes hold leased jobs right now
            killed.append(worker_name("killtest", 0))
            ray.kill(ray.get_actor(killed[0]))

    result = run_distributed(jobs, ENV, slow_oracle_factory, workers=2, concurrency_per_worker=3, out_path=out,
                             run_id="killtest", on_record=kill_first_worker)
    assert killed and result.worker_deaths == 1
    assert result.requeued >= 1                       # the dead worker's leased jobs went back to the queue
    assert len(result.worker_names) == 3              # a replacement worker was started
    keys = Counter(r.key for r in iter_episodes(out))
    assert keys == Counter(j.key for j in jobs)       # exactly one record per job
    assert all(r.success is True for r in iter_episodes(out))


def test_workers_that_cannot_start_end_the_run_with_infra_failure_records(local_ray, train_ids, tmp_path):
    jobs = make_jobs(train_ids[:3])
    out = tmp_path / "episodes.jsonl"
    result = run_distributed(jobs, ENV, failing_factory, workers=1, concurrency_per_worker=2, out_path=out,
                             max_worker_restarts=1)
    assert result.worker_deaths == 2
    records = list(iter_episodes(out))
    assert sorted(r.key for r in records) == sorted(j.key for j in jobs)
    assert all(r.termination == "infra_error" and r.success is None and not r.scored for r in records)
    assert "cannot be built" in records[0].infra_errors[0]["message"]


def test_bench_cli_with_ray_backend_plays_every_held_out_task_on_workers(local_ray, tmp_path):
    import json

    from typer.testing import CliRunner

    from agentgym.cli import app

    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["bench", "agentgym/sql-v0", "--policy", "oracle", "--split", "test",
                                      "--episodes", "6", "--backend", "ray", "--workers", "2",
                                      "--concurrency", "4", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["episodes"] == 6 and results["success_rate"] == 1.0 and results["missing_episodes"] == 0
    records = list(iter_episodes(out / "episodes.jsonl"))
    assert sorted(r.split for r in records) == ["test"] * 6  # workers built held-out envs, not the train split
    assert len({r.key for r in records}) == 6
