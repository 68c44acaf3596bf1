"""The rollout engine: many episodes at once against one policy, without blocking the event loop.

Each of ``concurrency`` workers owns one env (reused across episodes, replaced after an infrastructure
failure) and runs jobs from a shared queue. Every await has a timeout; an episode has a deadline;
infrastructure failures (env or policy machinery) are retried and, when retries run out, recorded as
such (``success=None``) rather than scored 0. Groups of k episodes per task (``make_jobs(ids, k)``) give
group-relative trainers their groups.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agentgym.env import AsyncEnv, SupportsOracle
from agentgym.errors import ContextOverflowError
from agentgym.jsonutil import sha256_hex, to_jsonable
from agentgym.messages import message_text
from agentgym.policy import Policy, PolicyAction, PolicyObservation, is_privileged
from agentgym.records import EpisodeRecord, TurnRecord
from agentgym.wrappers import as_async_env

INFRA_TERMINATIONS = frozenset({"infra_error", "deadline", "policy_error"})


@dataclass(frozen=True)
class RolloutConfig:
    """Concurrency, group size, and the timeout of every await."""

    concurrency: int = 8                 # episodes in flight
    reset_timeout_s: float = 120.0       # env.areset (first use may build caches)
    step_timeout_s: float = 600.0        # env.astep (a turn may run several tool calls)
    policy_timeout_s: float = 300.0      # policy.act
    close_timeout_s: float = 30.0        # env.aclose
    episode_deadline_s: float = 3600.0   # whole episode
    max_infra_retries: int = 2           # extra attempts after an infrastructure failure
    reuse_envs: bool = True              # keep an env across episodes (reset only)
    progress: bool = False               # rich progress bar


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run: a task, which sample of its group, and the seed passed to reset."""

    task_id: str
    sample: int = 0
    seed: int | None = None

    @property
    def key(self) -> str:
        return f"{self.task_id}#{self.sample}"


def episode_seed(base_seed: int, task_id: str, sample: int) -> int:
    """A seed derived from (base seed, task, sample): independent of job order and worker count."""
    return int(sha256_hex(f"{base_seed}:{task_id}:{sample}")[:8], 16)


def make_jobs(task_ids: Iterable[str], samples_per_task: int = 1, base_seed: int = 0) -> list[EpisodeJob]:
    """Jobs for every task x sample, in a stable order."""
    return [EpisodeJob(t, s, episode_seed(base_seed, t, s)) for t in task_ids for s in range(samples_per_task)]


EnvFactory = Callable[[], AsyncEnv | Awaitable[AsyncEnv]]
RecordCallback = Callable[[EpisodeRecord], Awaitable[None] | None]


class _EpisodeFailed(Exception):
    def __init__(self, termination: str, error: dict[str, Any]):
        super().__init__(error.get("message", termination))
        self.termination = termination
        self.error = error


class RolloutEngine:
    """Runs episode jobs concurrently: ``records = await RolloutEngine(make_env, policy, config).run(jobs)``."""

    def __init__(self, env_factory: EnvFactory, policy: Policy, config: RolloutConfig | None = None):
        self.env_factory = env_factory
        self.policy = policy
        self.config = config or RolloutConfig()

    async def run(self, jobs: Sequence[EpisodeJob], *, on_record: RecordCallback | None = None) -> list[EpisodeRecord]:
        """Run all jobs; returns records in completion order and hands each to `on_record` as it finishes."""
        queue: asyncio.Queue[EpisodeJob] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        records: list[EpisodeRecord] = []
        progress = self._progress(len(jobs))
        try:
            workers = [asyncio.create_task(self._worker(queue, records, on_record, progress))
                       for _ in range(max(1, min(self.config.concurrency, len(jobs))))]
            try:
                await asyncio.gather(*workers)
            except BaseException:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
        finally:
            if progress is not None:
                progress[0].stop()
        return records

    def _progress(self, total: int) -> tuple[Any, Any] | None:
        if not self.config.progress:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]episodes"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("success {task.fields[rate]}"), TimeRemainingColumn())
        task = bar.add_task("episodes", total=total, rate="-")
        bar.start()
        return bar, task

    async def _make_env(self) -> AsyncEnv:
        made = self.env_factory()
        if inspect.isawaitable(made):
            made = await asyncio.wait_for(made, self.config.reset_timeout_s)
        return as_async_env(made)

    async def _close_env(self, env: AsyncEnv) -> None:
        try:
            await asyncio.wait_for(env.aclose(), self.config.close_timeout_s)
        except Exception:  # closing a broken env must not hide the original failure
            pass

    async def _worker(self, queue: asyncio.Queue[EpisodeJob], records: list[EpisodeRecord],
                      on_record: RecordCallback | None, progress: tuple[Any, Any] | None) -> None:
        env: AsyncEnv | None = None
        try:
            while True:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                failures: list[dict[str, Any]] = []
                record: EpisodeRecord | None = None
                for attempt in range(1 + self.config.max_infra_retries):
                    if env is None:
                        try:
                            env = await self._make_env()
                        except Exception as exc:
                            failures.append({"attempt": attempt, "where": "make_env", "type": type(exc).__name__,
                                             "message": str(exc)[:500]})
                            continue
                    record = await self.run_episode(env, job)
                    if record.termination not in INFRA_TERMINATIONS:
                        break
                    failures.extend({"attempt": attempt, **e} for e in record.infra_errors)
                    await self._close_env(env)  # a failed env is never reused
                    env = None
                if record is None:  # the env could not even be created
                    record = EpisodeRecord(episode_id=uuid.uuid4().hex, env_id="?", task_id=job.task_id, split=None,
                                           seed=job.seed, sample=job.sample, group_id=job.task_id,
                                           policy=self.policy.name, termination="infra_error")
                record.infra_errors = failures
                record.attempts = min(attempt + 1, 1 + self.config.max_infra_retries)
                records.append(record)
                if on_record is not None:
                    res = on_record(record)
                    if inspect.isawaitable(res):
                        await res
                if progress is not None:
                    scored = [r for r in records if r.scored]
                    rate = f"{sum(bool(r.success) for r in scored) / len(scored):.2f}" if scored else "-"
                    progress[0].update(progress[1], advance=1, rate=rate)
                if not self.config.reuse_envs and env is not None:
                    await self._close_env(env)
                    env = None
        finally:
            if env is not None:
                await asyncio.shield(self._close_env(env))

    async def run_episode(self, env: AsyncEnv, job: EpisodeJob) -> EpisodeRecord:
        """Run one episode on `env`; never raises for env or policy failures (they end up in the record)."""
        cfg = self.config
        env = as_async_env(env)  # an env that is not an AsyncEnv still reads through the declared contract
        record = EpisodeRecord(episode_id=uuid.uuid4().hex, env_id=env.env_id, task_id=job.task_id, split=None,
                               seed=job.seed, sample=job.sample, group_id=job.task_id, policy=self.policy.name,
                               started_at=time.time())
        start = time.perf_counter()
        try:
            async with asyncio.timeout(cfg.episode_deadline_s):
                await self._play(env, job, record)
        except TimeoutError:
            record.termination = "deadline"
            record.infra_errors.append({"where": "episode", "type": "DeadlineExceeded",
                                        "message": f"episode exceeded its {cfg.episode_deadline_s} s deadline"})
        except _EpisodeFailed as failure:
            record.termination = failure.termination
            record.infra_errors.append(failure.error)
        except Exception as exc:  # a bug anywhere in the episode must cost this episode only, never the run
            record.termination = "infra_error"
            record.infra_errors.append({"where": "engine", "type": type(exc).__name__, "message": str(exc)[:500]})
        if record.termination in INFRA_TERMINATIONS:
            record.success = None
            record.reward = None
            record.outcome_reward = None
        record.wall_ms = (time.perf_counter() - start) * 1000
        return record

    async def _play(self, env: AsyncEnv, job: EpisodeJob, record: EpisodeRecord) -> None:
        cfg = self.config
        try:
            obs, info = await asyncio.wait_for(env.areset(seed=job.seed, options={"task_id": job.task_id}),
                                               cfg.reset_timeout_s)
        except Exception as exc:
            raise _EpisodeFailed("infra_error", {"where": "reset", "type": type(exc).__name__,
                                                 "message": str(exc)[:500]}) from exc
        record.split = info.get("split")
        record.env_id = info.get("env_id") or record.env_id
        record.task_info = {k: info.get(k) for k in ("family", "template", "difficulty") if info.get(k) is not None}
        axis = env.task_axis(job.task_id)
        if axis is not None:
            record.task_info["axis"] = axis
        messages: list[dict[str, Any]] = list(obs["messages"])
        record.first_observation = list(obs["messages"])
        new_messages = list(obs["messages"])
        oracle_env = env if is_privileged(self.policy) and isinstance(env, SupportsOracle) else None
        total = 0.0
        turn = 0
        context: list[int] | None = None        # token-in/token-out: the episode's tokens so far
        context_spans: list[tuple[int, int]] = []  # where the model's own tokens lie in `context`
        while True:
            oracle = None
            if oracle_env is not None:
                try:
                    oracle = await asyncio.wait_for(oracle_env.oracle_action(), cfg.step_timeout_s)
                except Exception as exc:
                    raise _EpisodeFailed("infra_error", {"where": "oracle", "type": type(exc).__name__,
                                                         "message": str(exc)[:500] or type(exc).__name__}) from exc
            observation = PolicyObservation(messages=list(messages), turn=turn, episode_id=record.episode_id,
                                            env_id=record.env_id, task_id=job.task_id,
                                            action_space=env.action_space, seed=job.seed,
                                            oracle_action=oracle, context_token_ids=context)
            t0 = time.perf_counter()
            try:
                raw = await asyncio.wait_for(self.policy.act(observation, list(env.tools)),
                                             cfg.policy_timeout_s)
                action = PolicyAction.of(raw)
            except ContextOverflowError:  # the agent's conversation outgrew the model: a scored failure
                record.reward, record.outcome_reward, record.success = total, 0.0, False
                record.termination = "context_overflow"
                record.final_observation = new_messages
                record.reward_components = {"context_overflow": 1.0}
                return
            except Exception as exc:
                raise _EpisodeFailed("policy_error", {"where": "policy", "type": type(exc).__name__,
                                                      "message": str(exc)[:500] or type(exc).__name__}) from exc
            policy_ms = (time.perf_counter() - t0) * 1000
            t1 = time.perf_counter()
            try:
                obs, reward, terminated, truncated, info = await asyncio.wait_for(env.astep(action.message),
                                                                                  cfg.step_timeout_s)
            except Exception as exc:
                raise _EpisodeFailed("infra_error", {"where": "step", "type": type(exc).__name__,
                                                     "message": str(exc)[:500] or type(exc).__name__}) from exc
            env_ms = (time.perf_counter() - t1) * 1000
            spans = None
            if action.prompt_token_ids is not None and action.token_ids is not None:
                prompt_ids, n = list(action.prompt_token_ids), len(action.prompt_token_ids)
                chained = context is not None and prompt_ids[:len(context)] == context
                spans = (context_spans if chained else []) + [(n, n + len(action.token_ids))]
                context, context_spans = prompt_ids + list(action.token_ids), spans
            else:
                context, context_spans = None, []
            record.turns.append(TurnRecord(
                turn=turn, observation=new_messages, action=dict(action.message),
                action_text=message_text(action.message), reward=float(reward), terminated=bool(terminated),
                truncated=bool(truncated), info=to_jsonable(info), prompt_token_ids=action.prompt_token_ids,
                token_ids=action.token_ids, logprobs=action.logprobs, loss_mask_spans=spans,
                finish_reason=action.finish_reason, model_version=action.model_version,
                policy_ms=policy_ms, env_ms=env_ms))
            if info.get("infra_error"):
                raise _EpisodeFailed("infra_error", {"where": "env", **to_jsonable(info["infra_error"])})
            total += float(reward)
            messages.append(dict(action.message))
            new_messages = list(obs["messages"])
            messages.extend(new_messages)
            turn += 1
            if terminated or truncated:
                outcome = info.get("outcome") or {}
                record.final_observation = new_messages
                record.reward = total
                record.outcome_reward = outcome.get("reward")
                record.success = bool(outcome.get("success", False))
                record.termination = info.get("termination") or ("terminated" if terminated else "truncated")
                record.reward_components = to_jsonable(info.get("reward_components") or {})
                return
