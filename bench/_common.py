"""Shared helpers for bench scripts: machine facts and writing results to bench/results/."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentgym.envs.browser.watch import HostSampler

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Where the numbers were taken."""
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(), "device": "cpu"}


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Write bench/results/<name>.json with a timestamp and the machine, and print it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    return path


def browser_hygiene(sampler: HostSampler) -> dict[str, Any]:
    """The browser fields every soak reports: peak PSS, restarts, processes seen, and processes left (sampled
    ones still alive plus any marked browser still running; a clean run has 0)."""
    from agentgym.envs.browser.host import marked_browser_pids   # imported here: most benches drive no browser

    left = set(sampler.survivors()) | set(marked_browser_pids())
    return {"peak_browser_pss_mb": sampler.peak_pss_mb, "browser_restarts": sampler.restarts,
            "browser_processes_seen": len(sampler.pids), "browser_processes_left": len(left)}
