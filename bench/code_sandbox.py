"""Code sandbox latency: run_code on a warm sandbox, fresh sandbox start, grading throughput, bwrap overhead.

Targets: warm run_code p50 <= 5 ms; fresh sandbox start p50 <= 150 ms. Grading throughput = held-out tasks
graded per second with the reference solutions (fresh sandbox per task, 2 at a time on 2 cores). The overhead
ratio compares, side by side in one run, the same persistent interpreter started and driven (a) under the
bubblewrap backend and (b) as a plain unsandboxed subprocess of /usr/bin/python3. The isolation ratio compares,
interleaved in the same run, the bubblewrap backend with per-sandbox isolation (its own cgroup and uid, as
detected here) against the same backend with isolation switched off (``AGENTGYM_SANDBOX_ISOLATION=none``: one
shared uid and per-process rlimits, as before per-sandbox isolation existed); target <= 1.5x for each.

Run: python bench/code_sandbox.py  -> bench/results/code_sandbox.json
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from agentgym.envs.code.grading import grade  # noqa: E402
from agentgym.envs.code.sandbox import confinement  # noqa: E402
from agentgym.envs.code.sandbox.base import SandboxLimits  # noqa: E402
from agentgym.envs.code.sandbox.local import LocalSandbox  # noqa: E402
from agentgym.envs.code.sandbox.process import PYTHON, ProcessSandbox  # noqa: E402
from agentgym.envs.code.suite import grading_spec, task_tests  # noqa: E402
from agentgym.registry import suite  # noqa: E402
from agentgym.stats import percentile  # noqa: E402

CALLS = 500
STARTS = 40
ROUNDS = 3


class PlainLauncher:
    """No sandbox at all: the same interpreter server as a plain child process (the baseline)."""

    name = "plain"
    own_pid_namespace = False
    confinement = None

    def __init__(self, limits: SandboxLimits):
        self.limits = limits
        self.workdir = tempfile.mkdtemp(prefix="agentgym-bench-")  # empty, like the sandbox's fresh work dir

    def argv(self, python_args: list[str]) -> list[str]:
        return [PYTHON, *python_args]

    def popen_kwargs(self) -> dict[str, Any]:
        return {"cwd": self.workdir}

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class PlainSandbox(ProcessSandbox):
    backend = "plain"

    @classmethod
    def make_launcher(cls, limits: SandboxLimits) -> PlainLauncher:
        return PlainLauncher(limits)


def ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50) * 1000, 3), "p99_ms": round(percentile(values, 99) * 1000, 3),
            "n": len(values)}


async def warm_calls(cls: type[ProcessSandbox]) -> list[float]:
    out = []
    async with await cls.create() as sandbox:
        await sandbox.run_code("x = 0")
        for i in range(CALLS):
            t0 = time.perf_counter()
            await sandbox.run_code(f"x += {i}\nx")
            out.append(time.perf_counter() - t0)
    return out


async def starts(cls: type[ProcessSandbox]) -> list[float]:
    out = []
    for _ in range(STARTS):
        t0 = time.perf_counter()
        sandbox = await cls.create()
        await sandbox.run_code("1")
        out.append(time.perf_counter() - t0)
        await sandbox.kill()
    return out


async def grading_throughput() -> dict[str, float]:
    tasks = suite("agentgym/code-v0").tasks("test")
    gate = asyncio.Semaphore(2)

    async def one(task):
        async with gate:
            return await grade(task.data["reference"], grading_spec(task), task_tests(task, "hidden"))

    t0 = time.perf_counter()
    reports = await asyncio.gather(*(one(t) for t in tasks))
    wall = time.perf_counter() - t0
    assert all(r.all_passed for r in reports)
    tests = sum(r.total for r in reports)
    return {"tasks": len(tasks), "tests": tests, "wall_s": round(wall, 3), "tasks_per_s": round(len(tasks) / wall, 2),
            "tests_per_s": round(tests / wall, 1), "concurrency": 2}


def use_isolation(mode: str) -> str:
    """Switch this process's sandbox isolation ('auto' detects; 'none' is the shared-uid, rlimits-only baseline)."""
    os.environ[confinement.ISOLATION_ENV] = mode
    confinement.isolation.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", confinement.SandboxIsolationWarning)
        return confinement.isolation().kind


async def main() -> None:
    load_before = os.getloadavg()[0]
    sides = {"bwrap": (LocalSandbox, "auto"), "bwrap_unisolated": (LocalSandbox, "none"),
             "plain": (PlainSandbox, "none")}
    warm: dict[str, list[float]] = {k: [] for k in sides}
    start: dict[str, list[float]] = {k: [] for k in sides}
    graded: dict[str, dict[str, float]] = {}
    kinds = {}
    for _ in range(ROUNDS):  # interleaved, so load changes on the shared machine hit all sides alike
        for name, (cls, mode) in sides.items():
            kinds[name] = use_isolation(mode)
            warm[name] += await warm_calls(cls)
            start[name] += await starts(cls)
    rounds: dict[str, list[dict[str, float]]] = {"bwrap_unisolated": [], "bwrap": []}
    for _ in range(ROUNDS):  # interleaved too; the median round (by wall time) is reported
        for name in rounds:
            use_isolation(sides[name][1])
            rounds[name].append(await grading_throughput())
    for name, runs in rounds.items():
        graded[name] = {**sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2], "rounds": len(runs),
                        "wall_s_all": [r["wall_s"] for r in runs]}
    use_isolation("auto")
    result = {
        "isolation": {k: kinds[k] for k in ("bwrap", "bwrap_unisolated")},
        "run_code_warm": {k: ms(v) for k, v in warm.items()},
        "sandbox_start": {k: ms(v) for k, v in start.items()},
        "grading": graded["bwrap"],
        "grading_unisolated": graded["bwrap_unisolated"],
        "overhead_ratio_bwrap_vs_plain": {
            "run_code_p50": round(percentile(warm["bwrap"], 50) / percentile(warm["plain"], 50), 2),
            "start_p50": round(percentile(start["bwrap"], 50) / percentile(start["plain"], 50), 2)},
        "isolation_ratio_isolated_vs_unisolated": {
            "run_code_p50": round(percentile(warm["bwrap"], 50) / percentile(warm["bwrap_unisolated"], 50), 2),
            "start_p50": round(percentile(start["bwrap"], 50) / percentile(start["bwrap_unisolated"], 50), 2),
            "grading_wall": round(graded["bwrap"]["wall_s"] / graded["bwrap_unisolated"]["wall_s"], 2)},
        "targets": {"run_code_warm_p50_ms": 5, "sandbox_start_p50_ms": 150, "isolation_ratio_max": 1.5},
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
    result["meets_targets"] = (result["run_code_warm"]["bwrap"]["p50_ms"] <= 5
                               and result["sandbox_start"]["bwrap"]["p50_ms"] <= 150
                               and max(result["isolation_ratio_isolated_vs_unisolated"].values()) <= 1.5)
    write_results("code_sandbox", result)


if __name__ == "__main__":
    asyncio.run(main())
