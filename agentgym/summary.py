"""Benchmark summary: turn episode records into the numbers of results.json."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from agentgym.records import EpisodeRecord
from agentgym.stats import pass_at_k, percentile, wilson_interval


def _rate(records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    scored = [r for r in records if r.scored]
    wins = sum(bool(r.success) for r in scored)
    lo, hi = wilson_interval(wins, len(scored))
    return {"episodes": len(scored), "success_rate": wins / len(scored) if scored else None,
            "success_ci95": [lo, hi]}


def _latency(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "mean": sum(values) / len(values) if values else None}


def _final_count(records: Sequence[EpisodeRecord], counter: str) -> int:
    """Sum over episodes of a cumulative per-episode counter read from the last turn's info."""
    return sum(int(r.turns[-1].info.get(counter, 0) or 0) for r in records if r.turns)


def summarize(records: Sequence[EpisodeRecord], *, samples: int = 1) -> dict[str, Any]:
    """Success (Wilson 95% CI), reward, pass@k, turns, errors and latencies over the scored episodes."""
    scored = [r for r in records if r.scored]
    overall = _rate(records)
    turns = [t for r in scored for t in r.turns]
    out: dict[str, Any] = {
        "episodes": len(records),
        "scored_episodes": len(scored),
        "success_rate": overall["success_rate"],
        "success_ci95": overall["success_ci95"],
        "mean_reward": sum(r.reward or 0.0 for r in scored) / len(scored) if scored else None,
        "mean_turns": sum(r.num_turns for r in scored) / len(scored) if scored else None,
        "infra_errors": sum(1 for r in records if not r.scored),
        "retried_episodes": sum(1 for r in records if r.scored and r.infra_errors),
        "invalid_action_rate": _final_count(scored, "invalid_actions") / len(turns) if turns else None,
        "tool_error_rate": (_final_count(scored, "tool_errors") / _final_count(scored, "tool_calls")
                            if _final_count(scored, "tool_calls") else None),
        "terminations": dict(Counter(r.termination for r in records)),
        "latency_ms": {"policy": _latency([t.policy_ms for t in turns]), "env": _latency([t.env_ms for t in turns])},
    }
    components: dict[str, list[float]] = defaultdict(list)
    for r in scored:
        for name, value in r.reward_components.items():
            if isinstance(value, (int, float)):
                components[name].append(float(value))
    out["reward_components"] = {k: sum(v) / len(v) for k, v in sorted(components.items())}
    if samples > 1:
        by_task: dict[str, list[bool]] = defaultdict(list)
        for r in scored:
            by_task[r.task_id].append(bool(r.success))
        ks = sorted({1, samples} | {k for k in (2, 4, 8, 16, 32, 64) if k < samples})
        out["pass_at_k"] = {}
        out["pass_at_k_tasks"] = {}
        for k in ks:
            eligible = [v for v in by_task.values() if len(v) >= k]  # tasks with k scored samples
            out["pass_at_k"][str(k)] = (sum(pass_at_k(len(v), sum(v), k) for v in eligible) / len(eligible)
                                        if eligible else None)
            out["pass_at_k_tasks"][str(k)] = len(eligible)
        # samples of one task are correlated: also give an interval with the task as the unit
        out["success_ci95_by_task"] = task_bootstrap_interval(list(by_task.values()))
    for field in ("family", "difficulty", "axis"):
        if not any(r.task_info.get(field) is not None for r in records):
            continue
        groups: dict[str, list[EpisodeRecord]] = defaultdict(list)
        for r in records:
            groups[str(r.task_info.get(field))].append(r)
        out[f"by_{field}"] = {k: _rate(v) for k, v in sorted(groups.items())}
    return out


def task_bootstrap_interval(outcomes_by_task: Sequence[Sequence[bool]], *, resamples: int = 2000,
                            seed: int = 0) -> list[float] | None:
    """95% percentile-bootstrap interval of the success rate, resampling whole tasks (a cluster bootstrap)."""
    import numpy as np

    groups = [list(v) for v in outcomes_by_task if v]
    if not groups:
        return None
    wins = np.array([sum(v) for v in groups], dtype=float)
    sizes = np.array([len(v) for v in groups], dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(groups), size=(resamples, len(groups)))
    rates = wins[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    return [float(np.percentile(rates, 2.5)), float(np.percentile(rates, 97.5))]
