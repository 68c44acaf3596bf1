"""Web soak: 500 MiniWoB episodes (scripted solvers on held-out seeds) at concurrency 4 in one process.

Reports success, infrastructure errors, the slowest step, peak browser PSS, browser restarts, and the browser
processes left at the end (must be 0). Run: python bench/web_soak.py -> bench/results/web_soak.json
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from agentgym.benchmark import BenchConfig, run_benchmark  # noqa: E402
from agentgym.envs.web.browser import _alive, _proc_table, descendants, live_hosts  # noqa: E402
from agentgym.envs.web.miniwob import SOLVERS, load_suite  # noqa: E402
from agentgym.policies.oracle import OraclePolicy  # noqa: E402
from agentgym.records import iter_episodes  # noqa: E402
from agentgym.stats import percentile  # noqa: E402

EPISODES = 500
CONCURRENCY = 4


def browser_pids() -> list[int]:
    table = _proc_table()
    return [p for p in descendants(os.getpid(), table) if "--agentgym-host=" in table[p][1]]


async def main() -> None:
    tasks = len(load_suite(sorted(SOLVERS)).tasks("test"))
    samples = math.ceil(EPISODES / tasks)
    seen: set[int] = set()
    peak = {"pss_mb": 0.0, "restarts": 0}

    async def sample() -> None:
        while True:
            for host in live_hosts():
                seen.update(host.process_tree())
                peak["pss_mb"] = max(peak["pss_mb"], await asyncio.to_thread(host.memory_mb))
                peak["restarts"] = max(peak["restarts"], host.restarts)
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample())
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = await run_benchmark(BenchConfig("agentgym/web-miniwob-v0", "oracle", "test", samples=samples,
                                                 concurrency=CONCURRENCY, env_kwargs={"tasks": sorted(SOLVERS)}),
                                     OraclePolicy(), tmp)
        wall = time.perf_counter() - t
        sampler.cancel()
        steps = [turn.env_ms for r in iter_episodes(Path(tmp) / "episodes.jsonl") for turn in r.turns]
    await asyncio.sleep(0.5)
    write_results("web_soak", {
        "episodes": result["episodes"], "concurrency": CONCURRENCY, "success_rate": result["success_rate"],
        "infra_errors": result["infra_errors"], "wall_s": wall, "episodes_per_minute": result["episodes"] / wall * 60,
        "step_p50_ms": percentile(steps, 50), "step_p99_ms": percentile(steps, 99), "step_max_ms": max(steps),
        "peak_browser_pss_mb": peak["pss_mb"], "browser_restarts": peak["restarts"],
        "browser_processes_seen": len(seen), "browser_processes_left": len([p for p in seen if _alive(p)]),
        "marked_browser_processes_left": len(browser_pids()),
    })


if __name__ == "__main__":
    asyncio.run(main())
