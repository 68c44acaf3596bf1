"""Benchmarking on held-out splits: run, record, resume after a crash, summarize, report.

A run directory holds ``run.json`` (the configuration and manifest checksum), ``episodes.jsonl`` (one
record per finished episode, append-only), ``results.json``, ``report.md`` and ``plot.png``. ``resume``
reads the finished episodes back and runs only the missing (task, sample) jobs, so a kill -9 loses the
episodes in flight and nothing else, and none is counted twice. Lines of ``episodes.jsonl`` that are not
records (a damaged disk, a hand edit) are set aside into ``episodes.jsonl.damaged``, counted in
results.json and named in a warning, and their jobs run again.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentgym import __version__
from agentgym.env import AsyncEnv
from agentgym.errors import AgentGymError
from agentgym.policy import Policy
from agentgym.provenance import check_benchmark_split
from agentgym.records import EpisodeRecord, EpisodeWriter, damaged_path, iter_episodes, set_aside_damaged
from agentgym.registry import asuite, make
from agentgym.report import write_report
from agentgym.rollout import EpisodeJob, RolloutConfig, RolloutEngine, make_jobs
from agentgym.tasks import TaskSuite
from agentgym.summary import DEFAULT_MAX_INFRA_ERROR_RATE, earlier_attempts, infra_verdict, summarize


@dataclass
class BenchConfig:
    """One benchmark run; saved as run.json and checked again on resume."""

    env_id: str
    policy: str
    split: str = "test"
    episodes: int | None = None          # number of tasks (from the manifest, in order); None = all
    samples: int = 1                     # episodes per task (pass@k needs k <= samples)
    concurrency: int = 8
    seed: int = 0
    axis: str | None = None              # only 'ood' or 'iid' held-out tasks
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    policy_config: dict[str, Any] = field(default_factory=dict)  # recorded, not secrets

    def identity(self) -> dict[str, Any]:
        """The fields that must match for a resume to continue the same run."""
        d = asdict(self)
        d.pop("concurrency")
        return d


class RunMismatchError(AgentGymError):
    """--resume was asked for a directory that holds a different run."""


class DamagedRecordsWarning(UserWarning):
    """Lines of a run's records file were not records; they were set aside and their episodes run again."""


def _set_aside(episodes_file: Path) -> int:
    """Move damaged lines out of the records file, warn naming them, and return how many there were."""
    damaged = set_aside_damaged(episodes_file)
    if damaged:
        named = "; ".join(f"line {d.line}: {d.reason}" for d in damaged[:5]) + ("; ..." if len(damaged) > 5 else "")
        warnings.warn(f"{episodes_file}: {len(damaged)} damaged line(s) set aside into "
                      f"{damaged_path(episodes_file)} ({named}); their episodes run again",
                      DamagedRecordsWarning, stacklevel=3)
    return len(damaged)


def identity_diff(saved: dict[str, Any], current: dict[str, Any]) -> str:
    """Which identity fields differ between a saved run and this configuration, as 'field: saved -> now'."""
    fields = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    return "; ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in fields) or "no field differs"


async def _benchmark_suite(config: BenchConfig, env_factory: Callable[[], AsyncEnv] | None) -> TaskSuite:
    """The suite to draw tasks from: the registry's (no env built), or a caller's factory's env's own."""
    if env_factory is None:
        return await asuite(config.env_id, **{**config.env_kwargs, "split": config.split})
    probe = env_factory()
    try:
        return await probe.aload_suite()  # an env without a suite raises AgentGymError saying so
    finally:
        await probe.aclose()


def _select_tasks(suite: TaskSuite, config: BenchConfig) -> tuple[list[str], str, bool | None]:
    """Task ids to run (manifest order), the manifest checksum, and whether it matches the committed one."""
    manifest = suite.manifest(config.split)
    pinned_ok = suite.matches_pinned(config.split)
    if pinned_ok is False:
        warnings.warn(f"the {config.split} manifest of {suite.name} differs from the committed one: "
                      "results are not comparable with published numbers", stacklevel=2)
    ids = list(manifest.task_ids)
    if config.axis is not None:
        ids = [t for t in ids if suite.axis_of(t) == config.axis]
    if config.episodes is not None:
        ids = ids[: config.episodes]
    return ids, manifest.checksum, pinned_ok


JobRunner = Callable[[list[EpisodeJob], Path], Awaitable[None]]
"""Plays episode jobs and appends one record per job to the given JSONL file (e.g. Ray workers)."""


async def run_benchmark(config: BenchConfig, policy: Policy, out_dir: str | Path, *, resume: bool = False,
                        provenance: dict[str, Any] | None = None, progress: bool = False,
                        env_factory: Callable[[], AsyncEnv] | None = None,
                        runner: JobRunner | None = None,
                        max_infra_error_rate: float = DEFAULT_MAX_INFRA_ERROR_RATE,
                        allow_trained_split: bool = False) -> dict[str, Any]:
    """Run (or resume) a benchmark into `out_dir` and return the results dict (also written as results.json).

    Episodes run on this process's rollout engine, or through `runner` (``agentgym bench --backend ray``).
    ``results["infra_error_warning"]`` is set when more than `max_infra_error_rate` of the episodes failed.
    """
    check_benchmark_split(config.env_id, config.split, provenance, allow_trained_split=allow_trained_split)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    factory = env_factory or (lambda: make(config.env_id, **{**config.env_kwargs, "split": config.split}))
    task_ids, checksum, pinned_ok = _select_tasks(await _benchmark_suite(config, env_factory), config)
    if not task_ids:
        raise AgentGymError(f"split {config.split!r} of {config.env_id} has no tasks to benchmark")

    run_file = out / "run.json"
    # compared after a JSON round trip, as saved (tuples become lists, keys become strings)
    identity = json.loads(json.dumps({**config.identity(), "manifest_checksum": checksum}))
    if run_file.exists():
        saved = json.loads(run_file.read_text())
        if not resume:
            raise RunMismatchError(f"{out} already holds a run; pass --resume to finish it or choose another --out")
        if saved.get("identity") != identity:
            raise RunMismatchError(f"{out} holds a different run; its run.json does not match this configuration: "
                                   f"{identity_diff(saved.get('identity') or {}, identity)}")
    else:
        run_file.write_text(json.dumps({"identity": identity, "agentgym": __version__, "created_at": time.time()},
                                       indent=2))

    episodes_file = out / "episodes.jsonl"
    damaged = _set_aside(episodes_file)
    # Finished = scored. Episodes that ended in an infrastructure failure are run again on resume.
    done = {r.key for r in iter_episodes(episodes_file) if r.scored}
    jobs = [j for j in make_jobs(task_ids, config.samples, config.seed) if j.key not in done]
    started = time.perf_counter()
    if jobs and runner is not None:
        await runner(jobs, episodes_file)
    elif jobs:
        engine = RolloutEngine(factory, policy, RolloutConfig(concurrency=config.concurrency, progress=progress))
        with EpisodeWriter(episodes_file) as writer:
            await engine.run(jobs, on_record=writer.awrite)

    records: dict[str, EpisodeRecord] = {}
    for r in iter_episodes(episodes_file):
        if r.key not in records or (r.scored and not records[r.key].scored):
            records[r.key] = r  # one record per job: the first scored one, else the first failure
    wanted = {j.key for j in make_jobs(task_ids, config.samples, config.seed)}
    final = [records[k] for k in sorted(records) if k in wanted]
    results = {
        "env": config.env_id, "split": config.split, "axis": config.axis, "manifest_checksum": checksum,
        "policy": policy.name, "tasks": len(task_ids), "samples": config.samples, "seed": config.seed,
        **summarize(final, samples=config.samples,
                    earlier_attempts=earlier_attempts(iter_episodes(episodes_file), final)),
        "missing_episodes": len(wanted) - len(final),
        "damaged_records_set_aside": damaged,
        "manifest_matches_pinned": pinned_ok,
        "wall_s_this_invocation": time.perf_counter() - started,
        "agentgym": __version__,
    }
    results["max_infra_error_rate"] = max_infra_error_rate
    results["infra_error_warning"] = infra_verdict(results, max_infra_error_rate)  # the CLI exits non-zero on it
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_report(results, final, out)
    return results
