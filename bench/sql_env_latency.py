"""SQL env latency: reset, execute_sql step and submit_sql step (test-suite grading), p50 / p99.

Steps run one at a time on one env (warm SQL workers), with the gold queries of held-out tasks as the
executed SQL, which is what a competent agent sends. Target: step p50 <= 20 ms on 2 cores.

Run: python bench/sql_env_latency.py  -> bench/results/sql_env_latency.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

import agentgym  # noqa: E402
from agentgym.stats import percentile  # noqa: E402

EPISODES = 300


def call(name: str, query: str) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "b", "type": "function", "function": {"name": name, "arguments": json.dumps({"query": query})}}]}


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
            "mean_ms": sum(values) / len(values)}


async def main() -> None:
    env = agentgym.make("agentgym/sql-v0", split="test")
    t0 = time.perf_counter()
    suite = await env.aload_suite()
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
              "target": "step p50 <= 20 ms on 2 cores",
              "met": percentile(steps, 50) <= 20.0}
    for name in ("reset", "execute_step", "submit_step", "all_steps"):
        print(f"{name:>12}: p50 {result[name]['p50_ms']:6.2f} ms  p99 {result[name]['p99_ms']:6.2f} ms")
    write_results("sql_env_latency", result)


if __name__ == "__main__":
    asyncio.run(main())
