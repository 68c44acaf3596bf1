"""Benchmark summary: turn episode records into the numbers of results.json.

Success is reported twice, and never only over the survivors: ``success_rate`` counts every scheduled
episode (an infrastructure failure is a failure), ``success_rate_scored`` only the episodes that could
be scored. When they differ the first is the headline; a high ``infra_error_rate`` makes the run fail.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agentgym.records import EpisodeRecord
from agentgym.stats import pass_at_k, percentile, wilson_interval


DEFAULT_MAX_INFRA_ERROR_RATE = 0.01  # above this share of failed episodes a benchmark run fails


def _rate(records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """Success over all episodes (infrastructure failures count as failures) and over the scored ones."""
    scored = [r for r in records if r.scored]
    wins = sum(bool(r.success) for r in scored)
    lo, hi = wilson_interval(wins, len(records))
    slo, shi = wilson_interval(wins, len(scored))
    return {"episodes": len(records), "scored_episodes": len(scored),
            "success_rate": wins / len(records) if records else None, "success_ci95": [lo, hi],
            "success_rate_scored": wins / len(scored) if scored else None, "success_ci95_scored": [slo, shi]}


def _latency(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "mean": sum(values) / len(values) if values else None}


def _final_count(records: Sequence[EpisodeRecord], counter: str) -> int:
    """Sum over episodes of a cumulative per-episode counter read from the last turn's info."""
    return sum(int(r.turns[-1].info.get(counter, 0) or 0) for r in records if r.turns)


def summarize(records: Sequence[EpisodeRecord], *, samples: int = 1,
              earlier_attempts: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Success over all episodes and over the scored ones (Wilson 95% CIs), reward, pass@k, turns, errors, latencies.

    `records` holds one record per scheduled episode; `earlier_attempts` counts, per job key, attempts
    made by earlier invocations of a resumed run (their failed records), so retries are counted truly.
    """
    scored = [r for r in records if r.scored]
    overall = _rate(records)
    turns = [t for r in scored for t in r.turns]
    earlier = earlier_attempts or {}
    attempts = {r.key: max(1, r.attempts) + earlier.get(r.key, 0) for r in records}
    infra = sum(1 for r in records if not r.scored)
    out: dict[str, Any] = {
        "episodes": len(records),
        "scored_episodes": len(scored),
        "success_rate": overall["success_rate"],          # every scheduled episode; failures count as failures
        "success_ci95": overall["success_ci95"],
        "success_rate_scored": overall["success_rate_scored"],  # the survivors only: read beside the above
        "success_ci95_scored": overall["success_ci95_scored"],
        "mean_reward": sum(r.reward or 0.0 for r in scored) / len(scored) if scored else None,
        "mean_turns": sum(r.num_turns for r in scored) / len(scored) if scored else None,
        "infra_errors": infra,
        "infra_error_rate": infra / len(records) if records else 0.0,
        "retried_episodes": sum(1 for n in attempts.values() if n > 1),
        "attempts": sum(attempts.values()),
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


def earlier_attempts(all_records: Iterable[EpisodeRecord], chosen: Sequence[EpisodeRecord]) -> dict[str, int]:
    """Attempts per job key spent in records other than the chosen one (failures of earlier, resumed invocations)."""
    chosen_ids = {r.episode_id for r in chosen}
    keys = {r.key for r in chosen}
    out: Counter[str] = Counter()
    for r in all_records:
        if r.key in keys and r.episode_id not in chosen_ids:
            out[r.key] += max(1, r.attempts)
    return dict(out)


def infra_verdict(results: Mapping[str, Any], max_rate: float = DEFAULT_MAX_INFRA_ERROR_RATE) -> str | None:
    """None when the run's infrastructure failures are within `max_rate`, else the warning that fails the run."""
    episodes = int(results.get("episodes") or 0)
    failed = int(results.get("infra_errors") or 0)
    if not episodes or failed / episodes <= max_rate:
        return None
    return (f"{failed} of {episodes} episodes ({failed / episodes:.1%}) ended in infrastructure failures, above the "
            f"{max_rate:.1%} limit: success counting every episode is {_pct(results.get('success_rate'))}, over the "
            f"{episodes - failed} scored ones {_pct(results.get('success_rate_scored'))}. Fix the env or policy "
            "machinery (see report.md, 'an infrastructure failure'), or raise --max-infra-error-rate.")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


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
