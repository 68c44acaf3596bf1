"""Web soak: 500 MiniWoB episodes (scripted solvers on held-out seeds) at concurrency 4 in one process.

Reports success, infrastructure errors, the slowest step, peak browser PSS, browser restarts, and the browser
processes left at the end (must be 0). Run: python bench/web_soak.py -> bench/results/web_soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import browser_hygiene, write_results  # noqa: E402

from agentgym.benchmark import BenchConfig, run_benchmark  # noqa: E402
from agentgym.envs.browser.watch import HostSampler  # noqa: E402
from agentgym.envs.web.miniwob import SOLVERS, load_suite  # noqa: E402
from agentgym.policies.oracle import OraclePolicy  # noqa: E402
from agentgym.records import iter_episodes  # noqa: E402
from agentgym.stats import percentile  # noqa: E402

EPISODES = 500
CONCURRENCY = 4


async def main(episodes: int) -> None:
    tasks = len(load_suite(sorted(SOLVERS)).tasks("test"))
    samples = math.ceil(episodes / tasks)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        async with HostSampler(interval_s=1.0) as sampler:
            result = await run_benchmark(BenchConfig("agentgym/web-miniwob-v0", "oracle", "test", samples=samples,
                                                     concurrency=CONCURRENCY, env_kwargs={"tasks": sorted(SOLVERS)}),
                                         OraclePolicy(), tmp)
        wall = time.perf_counter() - t
        steps = [turn.env_ms for r in iter_episodes(Path(tmp) / "episodes.jsonl") for turn in r.turns]
    await asyncio.sleep(0.5)
    write_results("web_soak", {
        "episodes": result["episodes"], "concurrency": CONCURRENCY, "success_rate": result["success_rate"],
        "infra_errors": result["infra_errors"], "wall_s": wall, "episodes_per_minute": result["episodes"] / wall * 60,
        "step_p50_ms": percentile(steps, 50), "step_p99_ms": percentile(steps, 99), "step_max_ms": max(steps),
        **browser_hygiene(sampler),
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=EPISODES, help="about this many episodes (whole seeds)")
    asyncio.run(main(parser.parse_args().episodes))
