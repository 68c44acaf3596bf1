"""Grading throughput, old vs new, side by side: the in-process assert harness against record/answer/replay.

The baseline is the grader as it was before assert-style tests moved out of the submission's process (its two
files read from git at ``--baseline-rev`` and imported from a temporary folder), run interleaved with today's on
the same tasks, same machine, same moment: the generated ``code-v0`` test split (the figure code_sandbox.py
reports, call/stdio tests) and HumanEval's 164 problems (assert-style). Reference solutions, a fresh sandbox per
task, 2 at a time on 2 cores. New-grader rounds run with the recordings already made (they are made once per
task and cached); the one-off cost of recording all 164 problems is reported on its own.
Target: new throughput >= old / 1.5 on both suites.

Run: python bench/code_grading.py [--rounds 3] [--baseline-rev db30177]  -> bench/results/code_grading.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from agentgym.envs.code.grading import grade  # noqa: E402
from agentgym.envs.code.harness import HARNESS  # noqa: E402
from agentgym.envs.code.suite import grading_spec, task_tests  # noqa: E402
from agentgym.registry import suite as registered_suite  # noqa: E402
from agentgym.tasks import Task  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 2


def load_baseline(rev: str) -> ModuleType:
    """The grading module at git revision `rev`, importable beside today's (it only needs the sandbox package)."""
    with tempfile.TemporaryDirectory(prefix="agentgym-bench-grading-") as tmp:
        folder = Path(tmp)
        for name in ("grading.py", "_grader.py"):
            text = subprocess.run(["git", "show", f"{rev}:envs/code/{name}"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout
            (folder / name).write_text(text)
        spec = importlib.util.spec_from_file_location("baseline_grading", folder / "grading.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)  # it reads its _grader.py here, so the folder can go afterwards
    return module


def baseline_grader(old: ModuleType):
    async def run(task: Task):
        d = task.data
        spec = old.GradingSpec(mode=d["mode"], entry=d["entry"], float_tol=d.get("float_tol"),
                               per_test_timeout_s=d.get("per_test_timeout_s", 2.0), prelude=d.get("prelude", ""),
                               candidate=d.get("candidate", "candidate"))
        tests = [old.TestCase.from_json(t) for t in d["hidden"]]
        return await old.grade(d["reference"], spec, tests)
    return run


async def new_grader(task: Task):
    return await grade(task.data["reference"], grading_spec(task), task_tests(task, "hidden"))


async def throughput(grader, tasks: list[Task]) -> dict[str, Any]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(task: Task):
        async with gate:
            return await grader(task)

    t0 = time.perf_counter()
    reports = await asyncio.gather(*(one(t) for t in tasks))
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "passed": sum(r.all_passed for r in reports), "tasks": len(tasks)}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = sorted(r["wall_s"] for r in runs)
    median = walls[len(walls) // 2]
    tasks = runs[0]["tasks"]
    return {"tasks": tasks, "rounds": len(runs), "median_wall_s": round(median, 3),
            "tasks_per_s": round(tasks / median, 2), "all_passed": all(r["passed"] == tasks for r in runs)}


async def main(rounds: int, rev: str) -> None:
    old = baseline_grader(load_baseline(rev))
    suites = {"code-v0-test": registered_suite("agentgym/code-v0").tasks("test"),
              "humaneval": registered_suite("agentgym/code-humaneval-v0").tasks()}
    t0 = time.perf_counter()
    await throughput(new_grader, suites["humaneval"])  # warm-up; makes the recordings (unless cached on disk)
    first_pass_s = time.perf_counter() - t0
    load_before = os.getloadavg()[0]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {"old": [], "new": []} for s in suites}
    for _ in range(rounds):  # interleaved, so load changes on the shared machine hit both sides alike
        for suite, tasks in suites.items():
            runs[suite]["old"].append(await throughput(old, tasks))
            runs[suite]["new"].append(await throughput(new_grader, tasks))
    await HARNESS.aclose()
    result: dict[str, Any] = {"baseline_rev": rev, "concurrency": CONCURRENCY,
                              "humaneval_first_pass_s_with_recording": round(first_pass_s, 2)}
    ok = True
    for suite in suites:
        old_s, new_s = summary(runs[suite]["old"]), summary(runs[suite]["new"])
        ratio = round(old_s["tasks_per_s"] / new_s["tasks_per_s"], 2)
        ok = ok and ratio <= 1.5 and new_s["all_passed"]
        result[suite] = {"old": old_s, "new": new_s, "slowdown_old_over_new": ratio}
    result["target"] = "new tasks/s >= old tasks/s / 1.5 on each suite"
    result["meets_target"] = ok
    result["load_average_1min"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    write_results("code_grading", result)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-rev", default="db30177", help="the git revision of the old grader")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.baseline_rev))
