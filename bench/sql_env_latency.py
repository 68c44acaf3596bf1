"""SQL env latency: reset, execute_sql step and submit_sql step (test-suite grading), p50 / p99.

Steps run one at a time on one env (warm SQL workers), with the gold queries of held-out tasks as the
executed SQL, which is what a competent agent sends. Target: step p50 <= 20 ms on 2 cores.
Also times the data generator: every family's databases built from scratch, and 250 questions generated
per family (measured once outside this script: 0.2 s and about 0.2 s per family on 2 cores).

Run: python bench/sql_env_latency.py  -> bench/results/sql_env_latency.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

import agentgym  # noqa: E402
from agentgym.envs.sql.database import ensure_databases  # noqa: E402
from agentgym.envs.sql.questions import generate_questions  # noqa: E402
from agentgym.stats import percentile  # noqa: E402

EPISODES = 300


def call(name: str, query: str) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "b", "type": "function", "function": {"name": name, "arguments": json.dumps({"query": query})}}]}


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
            "mean_ms": sum(values) / len(values)}


def generator_timings() -> dict[str, object]:
    """Seconds to build every family's databases in an empty folder, and to generate 250 questions per family."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        dbs = ensure_databases(Path(tmp))
        build_s = time.perf_counter() - t
        questions_s = {}
        for name, paths in dbs.items():
            t = time.perf_counter()
            generate_questions(name, paths, seed=7, count=250)
            questions_s[name] = time.perf_counter() - t
    return {"database_build_s": build_s, "questions_250_s": questions_s}


async def main() -> None:
    env = agentgym.make("agentgym/sql-v0", split="test")
    t0 = time.perf_counter()
    suite = await agentgym.asuite("agentgym/sql-v0", split="test")
    first_build_s = time.perf_counter() - t0
    tasks = suite.tasks("test")[:EPISODES]
    await env.areset(seed=0, options={"task_id": tasks[0].id})
    await env.astep(call("execute_sql", "SELECT 1"))  # warm the workers
    reset_ms, execute_ms, submit_ms = [], [], []
    for task in tasks:
        t = time.perf_counter()
        await env.areset(options={"task_id": task.id})
        reset_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        await env.astep(call("execute_sql", task.data["gold_sql"]))
        execute_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        _, reward, *_ = await env.astep(call("submit_sql", task.data["gold_sql"]))
        submit_ms.append((time.perf_counter() - t) * 1000)
        assert reward == 1.0
    await env.aclose()
    steps = execute_ms + submit_ms
    result = {"episodes": len(tasks), "suite_load_s": first_build_s, "reset": summary(reset_ms),
              "execute_step": summary(execute_ms), "submit_step": summary(submit_ms), "all_steps": summary(steps),
              "generator": generator_timings(),
              "target": "step p50 <= 20 ms on 2 cores",
              "met": percentile(steps, 50) <= 20.0}
    for name in ("reset", "execute_step", "submit_step", "all_steps"):
        print(f"{name:>12}: p50 {result[name]['p50_ms']:6.2f} ms  p99 {result[name]['p99_ms']:6.2f} ms")
    gen = result["generator"]
    print(f"   generator: databases {gen['database_build_s']:.2f} s, 250 questions max "
          f"{max(gen['questions_250_s'].values()):.2f} s per family")
    write_results("sql_env_latency", result)


if __name__ == "__main__":
    asyncio.run(main())
