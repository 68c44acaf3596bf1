"""GUI latency: step latency (action + stabilisation + element list + PNG screenshot), reset latency and
screenshot size on PhoneOS, driven by the oracle over the held-out test tasks in one env (sequential).

Compared with the per-step waits of AndroidWorld's harness: a stable observation needs >= 1.0 s (3 checks
0.5 s apart) and M3A waits 2.0 s after each action, so >= 3.0 s per step before the model runs.
Run: python bench/gui_latency.py -> bench/results/gui_latency.json
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from agentgym.envs.gui.env import PhoneEnv  # noqa: E402
from agentgym.registry import asuite  # noqa: E402
from agentgym.stats import percentile  # noqa: E402

ANDROIDWORLD_STEP_WAIT_S = 1.0 + 2.0   # get_state(wait_to_stabilize) >= 1.0 s + M3A wait_after_action_seconds 2.0


async def main() -> None:
    env = PhoneEnv(split="test")
    suite = await asuite(PhoneEnv.env_id, split="test")
    steps: list[float] = []
    by_type: dict[str, list[float]] = defaultdict(list)
    resets: list[float] = []
    shots: list[int] = []
    successes = 0
    tasks = suite.tasks("test")
    try:
        await env.areset(seed=0, options={"task_id": tasks[0].id})   # launch the browser outside the timings
        for task in tasks:
            t0 = time.perf_counter()
            obs, _ = await env.areset(seed=0, options={"task_id": task.id})
            resets.append(time.perf_counter() - t0)
            shots.append(len(base64.b64decode(obs["messages"][1]["content"][1]["image_url"]["url"].split(",", 1)[1])))
            while True:
                action = await env.oracle_action()
                kind = action.split('"action_type": "', 1)[1].split('"', 1)[0]
                t0 = time.perf_counter()
                _, reward, term, trunc, _ = await env.astep(action)
                dt = time.perf_counter() - t0
                if not (term or trunc):
                    steps.append(dt)
                    by_type[kind].append(dt)
                if term or trunc:
                    successes += reward == 1.0
                    break
    finally:
        await env.aclose()
    p50 = percentile(steps, 50)
    write_results("gui_latency", {
        "episodes": len(tasks), "oracle_success_rate": successes / len(tasks), "steps": len(steps),
        "step_latency_s": {"p50": p50, "p90": percentile(steps, 90), "p99": percentile(steps, 99), "max": max(steps)},
        "step_latency_p50_by_action_s": {k: percentile(v, 50) for k, v in sorted(by_type.items())},
        "reset_latency_s": {"p50": percentile(resets, 50), "p99": percentile(resets, 99)},
        "screenshot_png_bytes": {"p50": percentile(shots, 50), "max": max(shots)},
        "screenshot_pixels": list(env.screen.pixel_size),
        "androidworld_step_wait_s": ANDROIDWORLD_STEP_WAIT_S,
        "speedup_vs_androidworld_waits_p50": ANDROIDWORLD_STEP_WAIT_S / p50,
        "target_p50_s": 0.3, "meets_target": p50 <= 0.3,
        "note": "includes the 0.6 s hold of long_press steps; 2 shared CPU cores, timings are noisy"})


if __name__ == "__main__":
    asyncio.run(main())
