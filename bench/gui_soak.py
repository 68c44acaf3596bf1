"""GUI soak: 300 oracle episodes over every task of the suite (train, dev, test) on two envs sharing one browser.

Reports success, infrastructure errors, the slowest step against its deadline, peak browser PSS, this process's
RSS growth, browser restarts and the browser processes left at the end (must be 0).
Run: python bench/gui_soak.py -> bench/results/gui_soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import browser_hygiene, write_results  # noqa: E402

from agentgym.envs.browser.watch import HostSampler  # noqa: E402
from agentgym.envs.gui.env import PhoneEnv  # noqa: E402
from agentgym.registry import asuite  # noqa: E402
from agentgym.stats import percentile  # noqa: E402

EPISODES = 300
CONCURRENCY = 2


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(episodes: int) -> None:
    envs = [PhoneEnv(split="train") for _ in range(CONCURRENCY)]
    suite = await asuite(PhoneEnv.env_id, split="train")
    tasks = suite.tasks()
    queue = [tasks[i % len(tasks)] for i in range(episodes)]
    results = {"success": 0, "infra": 0, "episodes": 0}
    steps: list[float] = []
    rss_start = rss_mb()
    rss_after_warmup = None

    async def worker(env: PhoneEnv) -> None:
        nonlocal rss_after_warmup
        while queue:
            task = queue.pop(0)
            await env.areset(seed=0, options={"task_id": task.id})
            while True:
                action = await env.oracle_action()
                if action is None:
                    break
                t0 = time.perf_counter()
                _, reward, term, trunc, info = await env.astep(action)
                steps.append(time.perf_counter() - t0)
                if term or trunc:
                    results["success"] += reward == 1.0
                    results["infra"] += "infra_error" in info
                    break
            results["episodes"] += 1
            if results["episodes"] == 50:
                rss_after_warmup = rss_mb()

    t0 = time.perf_counter()
    async with HostSampler(interval_s=2.0) as sampler:
        try:
            await asyncio.gather(*(worker(e) for e in envs))
        finally:
            for env in envs:
                await env.aclose()
    wall = time.perf_counter() - t0
    await asyncio.sleep(0.5)
    write_results("gui_soak", {
        "episodes": results["episodes"], "concurrency": CONCURRENCY, "success_rate": results["success"] / results["episodes"],
        "infra_errors": results["infra"], "steps": len(steps), "wall_s": wall,
        "step_latency_s": {"p50": percentile(steps, 50), "p99": percentile(steps, 99), "max": max(steps)},
        "step_deadline_s": envs[0].tool_timeout_s, "every_step_within_deadline": max(steps) < envs[0].tool_timeout_s,
        "python_rss_mb": {"start": rss_start, "after_50_episodes": rss_after_warmup, "end": rss_mb(),
                          "max": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
        **browser_hygiene(sampler)})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=EPISODES, help="episodes to run (tasks repeat in turn)")
    asyncio.run(main(parser.parse_args().episodes))
