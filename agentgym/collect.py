"""Rollout collection behind one interface: a trainer asks for groups of episodes, wherever they are played.

A trainer step needs ``group_size`` episodes of each of a few tasks, streamed to a JSONL file as they finish.
``LocalCollector`` plays them in this process (one ``RolloutEngine``); ``agentgym.distributed.RayCollector``
plays the same jobs on Ray worker processes. Both build the jobs with ``make_jobs(task_ids, group_size,
base_seed=seed)``, so a step draws the same episodes (task, sample, seed) whichever collector runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from agentgym.policy import Policy
from agentgym.records import EpisodeRecord, EpisodeWriter
from agentgym.rollout import EnvFactory, RolloutConfig, RolloutEngine, make_jobs


@runtime_checkable
class Collector(Protocol):
    """Plays ``group_size`` episodes of each task and returns one record per episode (infra failures included)."""

    async def collect(self, task_ids: Sequence[str], group_size: int, *, seed: int,
                      out: Path | None = None) -> list[EpisodeRecord]:
        """Episodes of ``make_jobs(task_ids, group_size, base_seed=seed)``; ``out`` (replaced) gets each record."""
        ...


@dataclass
class LocalCollector:
    """Rollouts in this process: ``concurrency`` episodes in flight through one policy."""

    env_factory: EnvFactory
    policy: Policy
    concurrency: int = 8

    async def collect(self, task_ids: Sequence[str], group_size: int, *, seed: int,
                      out: Path | None = None) -> list[EpisodeRecord]:
        """See ``Collector.collect``; a resumed step rewrites its file rather than appending to it."""
        engine = RolloutEngine(self.env_factory, self.policy, RolloutConfig(concurrency=self.concurrency))
        jobs = make_jobs(task_ids, group_size, base_seed=seed)
        if out is None:
            return await engine.run(jobs)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        with EpisodeWriter(out) as writer:
            return await engine.run(jobs, on_record=writer.write)


__all__ = ["Collector", "LocalCollector"]
