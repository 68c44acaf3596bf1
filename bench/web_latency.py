"""Web env latency: step (action + settle + observation) p50/p99, reset on a reused page, memory per context,
episodes/minute at concurrency 1/4/8, and the ratio to BrowserGym's fixed delays (0.5 s settle per step and a
browser launch per reset). Targets on 2 cores: step p50 <= 250 ms, reset <= 50 ms.

Run: python bench/web_latency.py  -> bench/results/web_latency.json
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

import agentgym  # noqa: E402
from agentgym.benchmark import BenchConfig, run_benchmark  # noqa: E402
from agentgym.envs.browser.host import BrowserConfig, BrowserHost  # noqa: E402
from agentgym.envs.web.miniwob import SOLVERS, html_root  # noqa: E402
from agentgym.policies.oracle import OraclePolicy  # noqa: E402
from agentgym.stats import percentile  # noqa: E402

BROWSERGYM_SETTLE_MS = 500.0  # BrowserGym's pre_observation_delay per step


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
            "mean_ms": sum(values) / len(values)}


async def steps_and_resets(env_id: str, episodes: int, **kwargs) -> tuple[list[float], list[float], list[float]]:
    """Oracle episodes on one env: per-step and per-reset wall times, and same-task (reused page) resets."""
    env = agentgym.make(env_id, split="test", **kwargs)
    suite = await agentgym.asuite(env_id, split="test", **kwargs)
    tasks = suite.tasks("test")[:episodes]
    await env.areset(seed=0, options={"task_id": tasks[0].id})  # launch + first load, not measured
    step_ms, reset_ms, same_page_ms = [], [], []
    for task in tasks:
        t = time.perf_counter()
        await env.areset(seed=0, options={"task_id": task.id})
        reset_ms.append((time.perf_counter() - t) * 1000)
        done = False
        while not done:
            action = await env.oracle_action()
            t = time.perf_counter()
            _, _, term, trunc, _ = await env.astep(action)
            step_ms.append((time.perf_counter() - t) * 1000)
            done = term or trunc
        if env_id.endswith("miniwob-v0"):
            t = time.perf_counter()
            await env.areset(seed=1, options={"task_id": task.id})  # same task: re-seed on the same page
            same_page_ms.append((time.perf_counter() - t) * 1000)
    await env.aclose()
    return step_ms, reset_ms, same_page_ms


async def memory_per_context(n: int = 4) -> dict[str, float]:
    """PSS of the browser with 1 and with n open contexts (each with a MiniWoB page)."""
    host = BrowserHost(BrowserConfig())
    url = (html_root() / "miniwob" / "click-test.html").as_uri()
    leases = []
    try:
        readings = {}
        for k in range(1, n + 1):
            lease = await host.lease()
            await lease.page.goto(url)
            leases.append(lease)
            await asyncio.sleep(0.5)
            readings[k] = host.memory_mb()
        return {"pss_mb_1_context": readings[1], f"pss_mb_{n}_contexts": readings[n],
                "pss_mb_per_extra_context": (readings[n] - readings[1]) / (n - 1)}
    finally:
        for lease in leases:
            await lease.release()
        await host.close()


async def launch_per_reset(repeats: int = 3) -> list[float]:
    """What BrowserGym pays per reset: launch a browser, open a context and page, load the task."""
    url = (html_root() / "miniwob" / "click-test.html").as_uri()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        host = BrowserHost(BrowserConfig())
        lease = await host.lease()
        await lease.page.goto(url)
        out.append((time.perf_counter() - t) * 1000)
        await lease.release()
        await host.close()
    return out


async def throughput(concurrency: int, episodes: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = BenchConfig("agentgym/web-miniwob-v0", "oracle", "test", episodes=episodes, samples=1,
                             concurrency=concurrency, env_kwargs={"tasks": sorted(SOLVERS)})
        t = time.perf_counter()
        result = await run_benchmark(config, OraclePolicy(), tmp)
        wall = time.perf_counter() - t
    assert result["infra_errors"] == 0
    return result["episodes"] / wall * 60


async def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    mw_steps, mw_resets, mw_same = await steps_and_resets("agentgym/web-miniwob-v0", 60, tasks=sorted(SOLVERS))
    shop_steps, shop_resets, _ = await steps_and_resets("agentgym/web-shop-v0", 30)
    memory = await memory_per_context()
    launches = await launch_per_reset()
    rates = {f"concurrency_{c}": await throughput(c, 48) for c in (1, 4, 8)}
    step_p50 = percentile(mw_steps, 50)
    same_p50 = percentile(mw_same, 50)
    launch_p50 = percentile(launches, 50)
    steps_per_episode = len(mw_steps) / 60
    ours = same_p50 + steps_per_episode * step_p50
    browsergym = launch_p50 + steps_per_episode * (step_p50 + BROWSERGYM_SETTLE_MS)
    write_results("web_latency", {
        "miniwob": {"step": summary(mw_steps), "reset_task_switch": summary(mw_resets),
                    "reset_same_page": summary(mw_same)},
        "shop": {"step": summary(shop_steps), "reset": summary(shop_resets)},
        "memory": memory,
        "browser_launch_context_and_load_ms": summary(launches),
        "episodes_per_minute_oracle_miniwob": rates,
        "browsergym_fixed_delay_comparison": {
            "model": "BrowserGym: browser launch per reset + (action + observation + 0.5 s settle) per step",
            "steps_per_episode": steps_per_episode, "ours_episode_ms": ours, "browsergym_episode_ms": browsergym,
            "speedup": browsergym / ours},
        "targets": {"step_p50_ms": 250, "reset_same_page_ms": 50,
                    "step_p50_met": step_p50 <= 250, "reset_met": same_p50 <= 50},
    })


if __name__ == "__main__":
    asyncio.run(main())
