"""Ray scale-out of rollouts: one record per job, resume, and no job lost when a worker dies mid-run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from pathlib import Path

import pytest

from agentgym.distributed import EnvFactorySpec, _Coordinator, coordinator_name, run_distributed
from agentgym.distributed import local_ray as start_local_ray
from agentgym.processes import alive, cmdline, stop_pids_sync
from agentgym.records import iter_episodes
from agentgym.rollout import EpisodeJob, make_jobs

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ray = pytest.importorskip("ray")

from agentgym.policies.oracle import OraclePolicy  # noqa: E402

ENV = EnvFactorySpec("agentgym/sql-v0", {"split": "train"})


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
    with start_local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}}) as r:
        yield r


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


def test_ray_and_local_collectors_play_the_same_episodes(local_ray, train_ids, tmp_path):
    """One Collector interface: the same (task, sample, seed) jobs and outcomes on Ray workers as in this process."""
    from agentgym.collect import LocalCollector
    from agentgym.distributed import RayCollector

    ids = train_ids[:3]
    on_ray = asyncio.run(RayCollector(ENV, OraclePolicy, workers=2, concurrency=4).collect(
        ids, 2, seed=7, out=tmp_path / "ray.jsonl"))
    here = asyncio.run(LocalCollector(ENV, OraclePolicy(), concurrency=4).collect(ids, 2, seed=7))

    def key(r):
        return (r.task_id, r.sample, r.seed, r.group_id, r.success)

    assert len(on_ray) == 6 and sorted(map(key, on_ray)) == sorted(map(key, here))
    assert all(r.success for r in on_ray)
    assert sorted(map(key, iter_episodes(tmp_path / "ray.jsonl"))) == sorted(map(key, on_ray))


def test_a_worker_killed_mid_run_loses_no_job(local_ray, train_ids, tmp_path):
    jobs = make_jobs(train_ids[:16], samples_per_task=1, base_seed=5)
    out = tmp_path / "episodes.jsonl"
    killed: list[str] = []

    def kill_a_worker_holding_jobs(record):
        if killed:
            return
        # a worker that holds leased jobs right now (on a busy machine one may still be starting)
        held = ray.get(ray.get_actor(coordinator_name("killtest")).stats.remote())["leased_by"]
        if held:
            killed.append(max(held, key=held.get))
            ray.kill(ray.get_actor(killed[0]))

    result = run_distributed(jobs, ENV, slow_oracle_factory, workers=2, concurrency_per_worker=3, out_path=out,
                             run_id="killtest", on_record=kill_a_worker_holding_jobs)
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


def marked_processes(marker: str) -> list[int]:
    """Live processes whose environment carries `marker` (Ray's processes inherit the driver's environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                env = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker.encode() in env and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


# A driver that starts its own Ray through run_distributed and, once it returned, lists every process still
# alive that carries its marker: the GCS, the raylet, its workers and helpers must all be gone by then.
OWN_RAY_DRIVER = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from agentgym.distributed import EnvFactorySpec, run_distributed
    from agentgym.policies.oracle import OraclePolicy
    from agentgym.processes import alive, cmdline
    from agentgym.rollout import make_jobs

    out, marker, ids = sys.argv[1], os.environ["RAY_CLEANUP_MARKER"], json.loads(sys.argv[2])
    result = run_distributed(make_jobs(ids), EnvFactorySpec("agentgym/sql-v0", {"split": "train"}), OraclePolicy,
                             workers=1, concurrency_per_worker=2, out_path=out)
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                env = (entry / "environ").read_bytes()
            except OSError:
                continue
            if f"RAY_CLEANUP_MARKER={marker}".encode() in env and alive(int(entry.name)):
                left.append(cmdline(int(entry.name)))
    print(json.dumps({"records": len(result.records), "left": left}), flush=True)
""")


def test_a_ray_started_by_run_distributed_leaves_no_process_when_it_returns(train_ids, tmp_path):
    marker = uuid.uuid4().hex
    env = {**os.environ, "RAY_CLEANUP_MARKER": marker, "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        out = subprocess.run([sys.executable, "-c", OWN_RAY_DRIVER, str(tmp_path / "episodes.jsonl"),
                              json.dumps(train_ids[:2])], env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["records"] == 2
        assert result["left"] == []          # checked before the driver exits: not Ray's atexit doing the work
    finally:
        leftovers = marked_processes(marker)
        assert stop_pids_sync(leftovers).clean, [cmdline(p) for p in leftovers]
