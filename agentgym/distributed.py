"""Ray scale-out of rollouts: many worker processes (or machines) pull episode jobs from one shared queue.

    result = run_distributed(make_jobs(ids, 4), EnvFactorySpec("agentgym/sql-v0", {"split": "train"}),
                             functools.partial(TokenPolicy, model_dir, base_urls=urls),
                             workers=8, concurrency_per_worker=16, out_path="runs/x/episodes.jsonl")

A ``_Coordinator`` actor holds the job queue and which worker runs which job. Each ``_RolloutWorker`` actor
builds its own policy (from a picklable factory) and runs ``concurrency_per_worker`` lanes; every lane leases
one job at a time and plays it with a ``RolloutEngine`` (its env retries and infra-failure accounting), then
hands the finished record back. The driver streams records into an ``EpisodeWriter`` as they arrive (so an
interrupted run resumes like ``agentgym bench --resume``), and when a worker dies (``ray.kill``, OOM, a lost
node) its leased jobs go back to the queue and a replacement worker starts: every job ends with exactly one
record. Ray is imported lazily (``pip install 'agentgym[ray]'``). ``RayCollector`` is the same machinery
behind the ``agentgym.collect.Collector`` interface that a trainer step calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentgym.env import AsyncEnv
from agentgym.extras import require
from agentgym.policy import Policy
from agentgym.processes import descendants, proc_info, snapshot, stop_pids_sync
from agentgym.records import EpisodeRecord, EpisodeWriter, iter_episodes
from agentgym.rollout import EpisodeJob, RolloutConfig, RolloutEngine, make_jobs

PolicyFactory = Callable[[], Policy]


@dataclass(frozen=True)
class EnvFactorySpec:
    """A picklable env factory for Ray workers: ``agentgym.make(env_id, **kwargs)`` inside the worker process.

    (Not ``agentgym.EnvSpec``, the registry's record of how an env id is built.)
    """

    env_id: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self) -> AsyncEnv:
        from agentgym.registry import make

        return make(self.env_id, **dict(self.kwargs))


def as_env_factory(spec: EnvFactorySpec | str | Callable[[], AsyncEnv]) -> Callable[[], AsyncEnv]:
    """An env id string becomes ``EnvFactorySpec(id)``; an EnvFactorySpec or any picklable callable is used as is."""
    return EnvFactorySpec(spec) if isinstance(spec, str) else spec


def infra_failure_record(job: EpisodeJob, policy_name: str, message: str, attempts: int) -> EpisodeRecord:
    """The record of a job that could not be run (its workers kept dying): unscored, retried on resume."""
    return EpisodeRecord(episode_id=uuid.uuid4().hex, env_id="?", task_id=job.task_id, split=None, seed=job.seed,
                         sample=job.sample, group_id=job.task_id, policy=policy_name, termination="infra_error",
                         infra_errors=[{"where": "worker", "type": "WorkerDied", "message": message}],
                         attempts=attempts)


class _Coordinator:
    """The shared job queue (a Ray actor; methods run one at a time): lease, complete, requeue, drain."""

    def __init__(self, jobs: Sequence[EpisodeJob], max_job_attempts: int, policy_name: str):
        self.pending: list[EpisodeJob] = list(reversed(jobs))       # pop() from the end keeps the job order
        self.leased: dict[str, dict[str, EpisodeJob]] = {}           # worker id -> job key -> job
        self.attempts: dict[str, int] = {}
        self.outbox: list[dict[str, Any]] = []                       # finished records (JSON) for the driver
        self.remaining = len(jobs)
        self.requeued = 0
        self.max_job_attempts = max_job_attempts
        self.policy_name = policy_name

    def lease(self, worker_id: str) -> EpisodeJob | None:
        """The next job for `worker_id`, or None when the queue is empty."""
        if not self.pending:
            return None
        job = self.pending.pop()
        self.leased.setdefault(worker_id, {})[job.key] = job
        self.attempts[job.key] = self.attempts.get(job.key, 0) + 1
        return job

    def complete(self, worker_id: str, job_key: str, record: dict[str, Any]) -> bool:
        """Accept a finished record; ignored (False) unless `worker_id` still holds the job."""
        if self.leased.get(worker_id, {}).pop(job_key, None) is None:
            return False
        self.outbox.append(record)
        self.remaining -= 1
        return True

    def requeue(self, worker_id: str) -> int:
        """A worker died: put its leased jobs back (or fail those out of attempts); returns how many it held."""
        held = self.leased.pop(worker_id, {})
        for key, job in held.items():
            if self.attempts[key] < self.max_job_attempts:
                self.pending.append(job)  # to the front of the queue: retried next
                self.requeued += 1
            else:
                record = infra_failure_record(job, self.policy_name, f"worker {worker_id} died while running it",
                                              self.attempts[key])
                self.outbox.append(record.to_json())
                self.remaining -= 1
        return len(held)

    def fail_pending(self, message: str) -> int:
        """No worker is left: record every job still queued as an infrastructure failure."""
        n = len(self.pending)
        while self.pending:
            job = self.pending.pop()
            record = infra_failure_record(job, self.policy_name, message, self.attempts.get(job.key, 0))
            self.outbox.append(record.to_json())
            self.remaining -= 1
        return n

    def drain(self) -> tuple[list[dict[str, Any]], int]:
        """Finished records since the last call, and how many jobs are not finished yet."""
        out, self.outbox = self.outbox, []
        return out, self.remaining

    def stats(self) -> dict[str, Any]:
        """Queue counters, and the number of jobs each worker holds right now (``leased_by``)."""
        return {"pending": len(self.pending), "leased": sum(map(len, self.leased.values())),
                "remaining": self.remaining, "requeued": self.requeued,
                "leased_by": {worker: len(held) for worker, held in self.leased.items() if held}}


class _RolloutWorker:
    """One rollout process (a Ray actor): its own policy and `concurrency` lanes leasing jobs one at a time."""

    def __init__(self, worker_id: str, coordinator: Any, env_factory: Callable[[], AsyncEnv],
                 policy_factory: PolicyFactory, concurrency: int, config: RolloutConfig | None):
        self.worker_id = worker_id
        self.coordinator = coordinator
        self.concurrency = max(1, concurrency)
        self.policy = policy_factory()
        self.engine = RolloutEngine(env_factory, self.policy, config or RolloutConfig(concurrency=1))

    async def run(self, lease_timeout_s: float = 60.0) -> int:
        """Play leased jobs until the queue is empty; returns the number of episodes played here."""
        counts = await asyncio.gather(*(self._lane(lease_timeout_s) for _ in range(self.concurrency)))
        close = getattr(self.policy, "aclose", None)
        if close is not None:
            await asyncio.wait_for(close(), 30.0)
        return sum(counts)

    async def _lane(self, lease_timeout_s: float) -> int:
        played = 0
        while True:
            job = await asyncio.wait_for(self.coordinator.lease.remote(self.worker_id), lease_timeout_s)
            if job is None:
                return played
            # one job per engine.run: the engine's retries and infra-failure records apply unchanged
            (record,) = await self.engine.run([job])
            await asyncio.wait_for(self.coordinator.complete.remote(self.worker_id, job.key, record.to_json()),
                                   lease_timeout_s)
            played += 1


@dataclass
class DistributedResult:
    """What a distributed run produced: this invocation's records (completion order) and its incidents."""

    records: list[EpisodeRecord]
    skipped: int                 # jobs already finished in `out_path` (resume)
    worker_deaths: int
    requeued: int                # leased jobs put back in the queue after a worker death
    wall_s: float
    worker_names: list[str] = field(default_factory=list)


@contextlib.contextmanager
def local_ray(**init_kwargs: Any) -> Iterator[Any]:
    """``ray.init(**init_kwargs)`` for the block, then ``ray.shutdown()`` and no process it started left behind.

    ``ray.shutdown`` kills the GCS and the raylet but does not wait for them, nor for the raylet's workers,
    log monitor or dashboard agent: every process this ``ray.init`` started here (our new children and all
    their descendants, looked up again at shutdown) is stopped and waited for. Connecting to an existing
    cluster (``address=...``) starts no process here, so nothing of that cluster is touched.
    """
    ray = require("ray", "ray")
    me = os.getpid()
    children_before = {(p, i.start) for p, i in snapshot().items() if i.ppid == me}
    ray.init(**init_kwargs)
    started = {(p, i.start) for p, i in snapshot().items() if i.ppid == me and (p, i.start) not in children_before}
    try:
        yield ray
    finally:
        table = snapshot()
        roots = [p for p, start in started if p in table and table[p].start == start]
        ours = {(p, table[p].start) for root in roots for p in [root, *descendants(root, table)]}
        ray.shutdown()
        pids = [p for p, start in ours if (info := proc_info(p)) is not None and info.start == start]
        report = stop_pids_sync(pids, grace_s=5.0)
        if not report.clean:
            print(f"[agentgym] local Ray processes survived {'+'.join(report.signals)}: {report.survivors}",
                  file=sys.stderr)


def coordinator_name(run_id: str) -> str:
    """The Ray actor name of a run's job queue (``stats()`` on it shows who holds which leases)."""
    return f"agentgym-coordinator-{run_id}"


def worker_name(run_id: str, index: int) -> str:
    """The Ray actor name of a run's `index`-th worker (replacements get new indices)."""
    return f"agentgym-rollout-{run_id}-{index}"


def run_distributed(jobs: Iterable[EpisodeJob], env_factory_spec: EnvFactorySpec | str | Callable[[], AsyncEnv],
                    policy_factory: PolicyFactory, *, workers: int, concurrency_per_worker: int,
                    out_path: str | Path, ray_address: str | None = None, config: RolloutConfig | None = None,
                    resume: bool = True, max_job_attempts: int = 3, max_worker_restarts: int | None = None,
                    worker_num_cpus: float = 1.0, run_id: str | None = None,
                    on_record: Callable[[EpisodeRecord], None] | None = None,
                    poll_interval_s: float = 0.05) -> DistributedResult:
    """Run `jobs` on `workers` Ray actors and append one record per job to `out_path` (JSONL).

    Connects to `ray_address` ("auto" or "ray://host:10001" for a cluster started with ``ray start --head``)
    or starts a local Ray when none is running. With `resume`, jobs that already have a scored record in
    `out_path` are skipped. A dead worker's leased jobs are retried (up to `max_job_attempts` leases per job,
    then recorded as infra failures) and a replacement worker starts (up to `max_worker_restarts`, default
    `workers`). Blocking; call it from a thread (``asyncio.to_thread``) inside async code. A Ray started
    here (no `ray_address`, none running) is shut down when the run ends.
    """
    ray = require("ray", "ray")
    from ray.exceptions import RayError

    started = time.perf_counter()
    out_path = Path(out_path)
    all_jobs = list(jobs)
    done = {r.key for r in iter_episodes(out_path) if r.scored} if resume else set()
    todo = [j for j in all_jobs if j.key not in done]
    owns_ray = not ray.is_initialized()
    # a Ray started here is shut down at the end, with no process of it left; a caller's Ray is left running
    with local_ray(address=ray_address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
                   configure_logging=False) if owns_ray else contextlib.nullcontext(ray):
        run_id = run_id or uuid.uuid4().hex[:8]
        env_factory = as_env_factory(env_factory_spec)
        policy_name = getattr(policy_factory, "name", None) or "distributed"

        coordinator_cls = ray.remote(num_cpus=0, max_concurrency=1)(_Coordinator)
        worker_cls = ray.remote(num_cpus=worker_num_cpus, max_restarts=0)(_RolloutWorker)
        coordinator = coordinator_cls.options(name=coordinator_name(run_id)).remote(todo, max_job_attempts, policy_name)
        restarts_left = workers if max_worker_restarts is None else max_worker_restarts
        names: list[str] = []
        running: dict[Any, tuple[str, Any]] = {}   # run() ObjectRef -> (worker id, actor handle)

        def spawn() -> None:
            name = worker_name(run_id, len(names))
            names.append(name)
            actor = worker_cls.options(name=name).remote(name, coordinator, env_factory, policy_factory,
                                                         concurrency_per_worker, config)
            running[actor.run.remote()] = (name, actor)

        records: list[EpisodeRecord] = []
        deaths = 0
        last_error = ""
        try:
            with EpisodeWriter(out_path) as writer:
                if todo:
                    for _ in range(max(1, workers)):
                        spawn()
                remaining = len(todo)
                while remaining > 0 or running:
                    finished, _ = ray.wait(list(running), num_returns=len(running), timeout=poll_interval_s) \
                        if running else ([], [])
                    for ref in finished:
                        name, actor = running.pop(ref)
                        try:
                            ray.get(ref)
                        except RayError as exc:  # the process died (or could not start): its leases go back
                            deaths += 1
                            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
                            last_error = f"{type(exc).__name__}: {lines[-1].strip()[:300] if lines else ''}"
                            ray.get(coordinator.requeue.remote(name))
                            if restarts_left > 0:
                                restarts_left -= 1
                                spawn()
                    batch, remaining = ray.get(coordinator.drain.remote())
                    for data in batch:
                        record = EpisodeRecord.from_json(data)
                        writer.write(record)
                        records.append(record)
                        if on_record is not None:
                            on_record(record)
                    if not running and remaining > 0:  # every worker is gone and none may be started
                        message = f"no rollout worker left after {deaths} deaths; last: {last_error}"
                        ray.get(coordinator.fail_pending.remote(message))
                stats = ray.get(coordinator.stats.remote())
        finally:
            for _, actor in running.values():
                ray.kill(actor)
            ray.kill(coordinator)
        return DistributedResult(records=records, skipped=len(all_jobs) - len(todo), worker_deaths=deaths,
                                 requeued=stats["requeued"], wall_s=time.perf_counter() - started, worker_names=names)


async def run_distributed_async(jobs: Iterable[EpisodeJob], env_factory_spec: EnvFactorySpec | str,
                                policy_factory: PolicyFactory, *, workers: int, concurrency: int,
                                out_path: str | Path, **kwargs: Any) -> DistributedResult:
    """``run_distributed`` from async code (in a thread), with `concurrency` episodes in flight over all workers."""
    return await asyncio.to_thread(run_distributed, list(jobs), env_factory_spec, policy_factory, workers=workers,
                                   concurrency_per_worker=max(1, concurrency // workers), out_path=out_path, **kwargs)


@dataclass
class RayCollector:
    """``agentgym.collect.Collector`` on Ray: each call runs its jobs on ``workers`` actors (see ``run_distributed``).

    Ray must already be running (``local_ray`` or a cluster) when a trainer owns it for the whole run;
    otherwise each call starts and stops a local Ray of its own.
    """

    env_factory_spec: EnvFactorySpec | str
    policy_factory: PolicyFactory
    workers: int
    concurrency: int = 8

    async def collect(self, task_ids: Sequence[str], group_size: int, *, seed: int,
                      out: Path | None = None) -> list[EpisodeRecord]:
        """See ``Collector.collect``; without ``out`` the records pass through a temporary file."""
        import tempfile

        with contextlib.ExitStack() as stack:
            path = out or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agentgym-"))) / "episodes.jsonl"
            path.unlink(missing_ok=True)  # a resumed step replays its jobs from scratch
            await run_distributed_async(make_jobs(task_ids, group_size, base_seed=seed), self.env_factory_spec,
                                        self.policy_factory, workers=self.workers, concurrency=self.concurrency,
                                        out_path=path, resume=False)
            return list(iter_episodes(path))
