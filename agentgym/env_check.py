"""``agentgym envs check``: the env contract turned into checks any env (built-in or plug-in) can run.

Beyond gymnasium's ``check_env`` (run on the unwrapped env, so its wrappers' warnings do not drown the
real ones) it plays the env's oracle over every task of every split (a task the oracle fails is a data
bug), sends random and malformed actions (they must come back as observations, never as exceptions or
infrastructure failures), watches for tool handlers that block the event loop, checks the pinned
manifests, and round-trips snapshot/restore where the env supports it.
"""

from __future__ import annotations

import asyncio
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentgym.env import AsyncEnv, SupportsOracle, SupportsSnapshot
from agentgym.jsonutil import to_jsonable
from agentgym.tasks import SPLITS, TaskSuite
from agentgym.tool_env import ToolEnv

STEP_TIMEOUT_S = 120.0


@dataclass
class CheckResult:
    """One named check: passed or not, with the lines that explain it (warnings do not fail a check)."""

    name: str
    ok: bool = True
    details: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fail(self, line: str) -> None:
        """Record a failure."""
        self.ok = False
        self.details.append(line)


@dataclass
class CheckReport:
    """All checks of one env; ``ok`` only when every check passed."""

    env_id: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def _fuzzed_actions() -> list[Any]:
    """Malformed actions an agent (or a broken policy) can send; each must become an observation."""
    def calls(*entries: Any) -> dict[str, Any]:
        return {"role": "assistant", "content": "", "tool_calls": list(entries)}

    return [
        "", "   ", "no tool call at all", "<tool_call>{not json</tool_call>", "<tool_call>[1, 2]</tool_call>",
        '<tool_call>{"name": 7, "arguments": "x"}</tool_call>', "\x00\ufffd" * 50, "x" * 200_000,
        {"role": "assistant", "content": None}, {"role": "assistant"}, {"content": ["a", {"b": 1}]},
        calls({"type": "function", "function": {"name": "no_such_tool", "arguments": "{}"}}),
        calls({"type": "function", "function": {"name": None, "arguments": None}}),
        calls({"type": "function"}), calls("not a dict"), calls(None),
        {"role": "assistant", "content": "", "tool_calls": "not a list"},
    ]


def _bad_argument_actions(tools: Sequence[dict[str, Any]]) -> list[Any]:
    """For every tool: wrong argument types, unknown arguments, missing arguments, non-JSON argument text."""
    out: list[Any] = []
    for t in tools:
        fn = t.get("function", {})
        name = fn.get("name")
        props = fn.get("parameters", {}).get("properties", {})
        wrong = {k: ([{"deep": [None]}] if v.get("type") != "array" else "not an array") for k, v in props.items()}
        for arguments in (wrong, {"__unknown__": 1}, "{not json", [], {k: None for k in props}):
            out.append({"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": name, "arguments": arguments}}]})
    return out


def _probe_action(rng: Any, tool_schema: dict[str, Any]) -> dict[str, Any]:
    """A call of one tool with schema-typed random arguments: every handler runs once under the blocking probe."""
    from agentgym.actions import tool_call_message
    from agentgym.spaces import _sample_value

    fn = tool_schema["function"]
    return tool_call_message(fn["name"], _sample_value(rng, fn.get("parameters", {"type": "object"})))


def _check_step_result(result: Any, env: AsyncEnv, what: str, check: CheckResult) -> bool:
    """Whether a step result is well formed (and not an infrastructure failure); records problems."""
    try:
        obs, reward, terminated, truncated, info = result
    except (TypeError, ValueError):
        check.fail(f"{what}: step returned {type(result).__name__}, not a 5-tuple")
        return False
    if not isinstance(reward, (int, float)) or not math.isfinite(float(reward)):
        check.fail(f"{what}: reward {reward!r} is not a finite number")
    if not env.observation_space.contains(obs):
        check.fail(f"{what}: observation is outside observation_space: {str(obs)[:200]}")
    if not isinstance(info, dict):
        check.fail(f"{what}: info is {type(info).__name__}, not a dict")
        return False
    if info.get("infra_error"):
        check.fail(f"{what}: a malformed action became an infrastructure failure: {info['infra_error']}")
    try:
        json.dumps(to_jsonable(info))
    except (TypeError, ValueError) as exc:
        check.fail(f"{what}: info is not JSON-serialisable: {exc}")
    return bool(terminated or truncated)


class EnvChecker:
    """Runs the checks on envs made by `factory` (a fresh env per check, closed afterwards)."""

    def __init__(self, env_id: str, factory: Callable[[], AsyncEnv], *, limit: int | None = None,
                 concurrency: int = 4, max_block_s: float = 0.5):
        self.env_id = env_id
        self.factory = factory  # makes a fresh env; use _make()
        self.limit = limit                # oracle tasks per split (None: every task)
        self.concurrency = concurrency
        self.max_block_s = max_block_s    # an async handler holding the loop longer than this fails the check
        self.blocks: list[dict[str, Any]] = []

    def _make(self) -> AsyncEnv:
        """A fresh env that reports shorter loop stalls than usual (the blocking probe reads them from info)."""
        env = self.factory()
        target = env.unwrapped
        if isinstance(target, ToolEnv):  # only ToolEnv measures how long its handlers hold the loop
            target.loop_block_warn_s = min(target.loop_block_warn_s, self.max_block_s / 2)
        return env

    def run(self) -> CheckReport:
        """Every check, in order; never raises for an env bug (it becomes a failed check)."""
        report = CheckReport(self.env_id)
        report.results.append(self.check_contract())
        report.results.extend(asyncio.run(self._async_checks()))
        return report

    async def _async_checks(self) -> list[CheckResult]:
        env = self._make()
        try:
            suite: TaskSuite = await env.aload_suite()
        except Exception as exc:
            broken = CheckResult("task suite")
            broken.fail(f"load_suite() failed: {type(exc).__name__}: {exc}")
            return [broken]
        finally:
            await env.aclose()
        results = [self.check_manifests(suite)]
        for check in (self.check_oracle, self.check_malformed_actions, self.check_snapshot):
            try:
                results.append(await check(suite))
            except Exception as exc:  # a crash inside a check is that check's failure
                crashed = CheckResult(check.__name__.removeprefix("check_").replace("_", " "))
                crashed.fail(f"crashed: {type(exc).__name__}: {exc}")
                results.append(crashed)
        results.append(self.check_blocking())
        return results

    # --- the checks -------------------------------------------------------------------------------

    def check_contract(self) -> CheckResult:
        """gymnasium's check_env on the unwrapped env (its own warnings are reported, not failed)."""
        from gymnasium.utils.env_checker import check_env

        result = CheckResult("gymnasium check_env")
        env = self._make()
        try:
            target = env.unwrapped
            if isinstance(target, ToolEnv):
                # how long a handler held the loop depends on the machine's load, so its report in `info` would
                # make two identical steps differ; blocking has a check of its own (check_blocking)
                target.loop_block_warn_s = float("inf")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                check_env(target, skip_render_check=True)
            result.warnings += sorted({str(w.message)[:300] for w in caught})
        except Exception as exc:
            result.fail(f"{type(exc).__name__}: {exc}")
        finally:
            try:
                env.close()
            except Exception as exc:
                result.fail(f"close() failed: {type(exc).__name__}: {exc}")
        return result

    def check_manifests(self, suite: TaskSuite) -> CheckResult:
        """Held-out manifests match the committed (pinned) file; no pinned file is a warning."""
        result = CheckResult("pinned manifests")
        for split in SPLITS:
            if not suite.tasks(split) and split != "train":
                result.fail(f"split {split!r} has no tasks: benchmarks read held-out splits")
            match = suite.matches_pinned(split)
            if match is False:
                result.fail(f"the {split} split differs from the pinned manifest {suite.pinned_path}: if the change "
                            f"is intended, run `agentgym manifest {self.env_id} --write {suite.pinned_path}`")
            elif match is None and split == "test":
                result.warnings.append(f"no pinned manifest: give TaskSuite(..., pinned_path=...) and run "
                                       f"`agentgym manifest {self.env_id} --write PATH`")
        return result

    async def check_oracle(self, suite: TaskSuite) -> CheckResult:
        """The oracle solves every task of every split; the tasks it fails are listed (data bugs)."""
        result = CheckResult("oracle solves every task")
        probe = self._make()
        has_oracle = isinstance(probe, SupportsOracle)
        await probe.aclose()
        if not has_oracle:
            result.warnings.append("the env has no oracle_action(): tasks cannot be checked for solvability")
            return result
        jobs = [(split, t.id) for split in SPLITS for t in suite.tasks(split)[: self.limit]]
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        failures: list[str] = []
        solved = {split: 0 for split in SPLITS}

        async def worker() -> None:
            env = self._make()
            try:
                while not queue.empty():
                    split, task_id = queue.get_nowait()
                    problem = await self._play_oracle(env, task_id)
                    if problem is None:
                        solved[split] += 1
                    else:
                        failures.append(f"{split} task {task_id} ({suite.get(task_id).family}): {problem}")
            finally:
                await env.aclose()

        await asyncio.gather(*[worker() for _ in range(max(1, min(self.concurrency, len(jobs))))])
        for split in SPLITS:
            total = len(suite.tasks(split)[: self.limit])
            result.warnings.append(f"{split}: oracle solved {solved[split]}/{total}")
        for line in sorted(failures)[:50]:
            result.fail(line)
        if len(failures) > 50:
            result.fail(f"... and {len(failures) - 50} more")
        return result

    async def _play_oracle(self, env: AsyncEnv, task_id: str) -> str | None:
        """Play the oracle on one task; None when it succeeds, else what went wrong."""
        try:
            await asyncio.wait_for(env.areset(seed=0, options={"task_id": task_id}), STEP_TIMEOUT_S)
            for turn in range(10_000):
                action = await asyncio.wait_for(env.oracle_action(), STEP_TIMEOUT_S)  # type: ignore[attr-defined]
                if action is None:
                    return f"oracle_action() returned None at turn {turn} (it is called before every turn)"
                _, _, terminated, truncated, info = await asyncio.wait_for(env.astep(action), STEP_TIMEOUT_S)
                self.blocks.extend(info.get("loop_blocked") or [])
                if info.get("infra_error"):
                    return f"infrastructure failure at turn {turn}: {info['infra_error'].get('message')}"
                if terminated or truncated:
                    outcome = info.get("outcome") or {}
                    if not outcome.get("success"):
                        return (f"ended at turn {turn} ({info.get('termination')}) without success, "
                                f"reward {outcome.get('reward')}")
                    return None
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc)[:300]}"
        return "never ended"

    async def check_malformed_actions(self, suite: TaskSuite) -> CheckResult:
        """Random, malformed and badly-typed actions come back as observations, never exceptions or infra errors."""
        import numpy as np

        result = CheckResult("random and malformed actions, a probe of every tool")
        env = self._make()
        rng = np.random.default_rng(0)
        tasks = [t.id for split in SPLITS for t in suite.tasks(split)[:1]]
        try:
            actions: list[tuple[str, Any]] = [(f"random action {i}", env.action_space.sample()) for i in range(8)]
            actions += [(f"fuzzed action {i} {str(a)[:40]!r}", a) for i, a in enumerate(_fuzzed_actions())]
            actions += [(f"bad arguments {str(a)[:60]!r}", a) for a in _bad_argument_actions(env.tools)]
            actions += [(f"probe of tool {t['function']['name']}", _probe_action(rng, t)) for t in env.tools]
            done = True
            for what, action in actions:
                if done:
                    await env.areset(seed=int(rng.integers(1 << 30)), options={"task_id": tasks[len(what) % len(tasks)]})
                try:
                    step = await asyncio.wait_for(env.astep(action), STEP_TIMEOUT_S)
                except Exception as exc:
                    result.fail(f"{what}: astep raised {type(exc).__name__}: {str(exc)[:200]}")
                    done = True
                    continue
                done = _check_step_result(step, env, what, result)
                self.blocks.extend(step[4].get("loop_blocked") or [] if isinstance(step[4], dict) else [])
        finally:
            await env.aclose()
        return result

    async def check_snapshot(self, suite: TaskSuite) -> CheckResult:
        """Where supported: restore(snapshot()) gives the same next observation and reward for the same action."""
        result = CheckResult("snapshot/restore round trip")
        env = self._make()
        try:
            if not isinstance(env, SupportsSnapshot):
                result.warnings.append("not supported (tree search wraps the env in a replay adapter)")
                return result
            task = next((t for split in SPLITS for t in suite.tasks(split)), None)
            if task is None:
                return result
            await env.areset(seed=0, options={"task_id": task.id})
            action = (await env.oracle_action() if isinstance(env, SupportsOracle) else None) or \
                env.action_space.sample()
            snap = await env.snapshot()
            first = await env.astep(action)
            await env.restore(snap)
            second = await env.astep(action)
            for i, name in enumerate(("observation", "reward", "terminated", "truncated")):
                if to_jsonable(first[i]) != to_jsonable(second[i]):
                    result.fail(f"the {name} after restore differs: {str(first[i])[:150]} vs {str(second[i])[:150]}")
        finally:
            await env.aclose()
        return result

    def check_blocking(self) -> CheckResult:
        """No async tool handler held the event loop longer than `max_block_s` during the checks above."""
        result = CheckResult("no tool blocks the event loop")
        worst: dict[str, float] = {}
        for block in self.blocks:
            worst[block["tool"]] = max(worst.get(block["tool"], 0.0), float(block["seconds"]))
        for tool_name, seconds in sorted(worst.items()):
            line = (f"tool {tool_name} blocked the event loop for {seconds:.2f} s: make the handler a plain def "
                    "(worker thread) or use @tool(..., isolate='process')")
            if seconds >= self.max_block_s:
                result.fail(line)
            else:
                result.warnings.append(line)
        return result


def check_env_id(env_id: str, *, env_kwargs: dict[str, Any] | None = None, limit: int | None = None,
                 concurrency: int = 4, max_block_s: float = 0.5) -> CheckReport:
    """Run every check on the env registered as `env_id`."""
    from agentgym.registry import make, spec

    spec(env_id)  # an unknown id fails here, with suggestions
    kwargs = dict(env_kwargs or {})
    return EnvChecker(env_id, lambda: make(env_id, **kwargs), limit=limit, concurrency=concurrency,
                      max_block_s=max_block_s).run()
