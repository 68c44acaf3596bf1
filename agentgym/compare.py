"""Side-by-side comparison of benchmark runs on the same held-out tasks (``agentgym compare DIR DIR ...``).

Each run directory is what ``agentgym bench`` wrote (``results.json`` + ``episodes.jsonl``). Runs are only
comparable on the same env, split and manifest; the comparison says so when they are not. Against the
first run (the baseline) every other run gets a paired count over the tasks both played: tasks it
solves that the baseline does not, and the reverse, with an exact two-sided sign-test p-value
(McNemar's exact test), which is the right test when both runs see the same tasks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentgym.errors import AgentGymError
from agentgym.records import iter_episodes

SUMMARY_KEYS = ("success_rate", "success_ci95", "success_rate_scored", "mean_reward", "mean_turns",
                "invalid_action_rate", "tool_error_rate", "infra_errors", "episodes")


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided binomial (McNemar) p-value for `wins` vs `losses` discordant pairs under p = 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _solved_by_job(run_dir: Path) -> tuple[dict[str, bool], set[str]]:
    """Scored episodes of one run as job key -> success, and the keys of jobs that were never scored."""
    out: dict[str, bool] = {}
    seen: set[str] = set()
    for record in iter_episodes(run_dir / "episodes.jsonl"):
        seen.add(record.key)
        if record.scored and record.key not in out:
            out[record.key] = bool(record.success)
    return out, seen - set(out)


def compare_runs(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Summaries of each run plus paired wins/losses of every run against the first one."""
    dirs = [Path(d) for d in run_dirs]
    if len(dirs) < 2:
        raise AgentGymError("compare needs at least two benchmark run directories")
    labels = list(labels) if labels else [d.name for d in dirs]
    if len(labels) != len(dirs):
        raise AgentGymError(f"{len(labels)} labels for {len(dirs)} runs")
    runs = []
    for label, d in zip(labels, dirs):
        path = d / "results.json"
        if not path.exists():
            raise AgentGymError(f"{d} has no results.json: run `agentgym bench ... --out {d}` first")
        results = json.loads(path.read_text())
        runs.append({"label": label, "dir": str(d), "policy": results.get("policy"),
                     **{k: results.get(k) for k in SUMMARY_KEYS}, "_results": results})
    identity = {(r["_results"].get("env"), r["_results"].get("split"), r["_results"].get("manifest_checksum"))
                for r in runs}
    baseline, baseline_unscored = _solved_by_job(dirs[0])
    for run, d in zip(runs[1:], dirs[1:]):
        solved, unscored = _solved_by_job(d)
        shared = sorted(set(solved) & set(baseline))
        wins = sum(solved[k] and not baseline[k] for k in shared)
        losses = sum(baseline[k] and not solved[k] for k in shared)
        # only episodes scored in both runs are paired; say how many that leaves out and why
        dropped = (set(solved) | set(baseline) | unscored | baseline_unscored) - set(shared)
        run["vs_baseline"] = {"paired_episodes": len(shared), "dropped_episodes": len(dropped),
                              "dropped_unscored": len(dropped & (unscored | baseline_unscored)),
                              "wins": wins, "losses": losses,
                              "success_delta": (sum(solved[k] for k in shared) - sum(baseline[k] for k in shared))
                              / len(shared) if shared else None,
                              "sign_test_p": sign_test_p(wins, losses)}
    first = runs[0]["_results"]
    for run in runs:
        del run["_results"]
    return {"env": first.get("env"), "split": first.get("split"), "comparable": len(identity) == 1,
            "baseline": labels[0], "runs": runs}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def comparison_markdown(comparison: dict[str, Any]) -> str:
    """The comparison as a Markdown table (one row per run) with the paired test against the baseline."""
    lines = [f"# {comparison['env']} [{comparison['split']}]: {len(comparison['runs'])} runs", ""]
    if not comparison["comparable"]:
        lines += ["**Warning:** these runs differ in env, split or task manifest; the numbers are not comparable.", ""]
    lines += ["| run | policy | success | 95% CI | reward | turns | invalid actions / turn | tool-error rate | "
              f"episodes | vs {comparison['baseline']}: wins / losses (p) |", "|---" * 10 + "|"]
    for run in comparison["runs"]:
        paired = run.get("vs_baseline")
        vs = (f"{paired['wins']} / {paired['losses']} (p={paired['sign_test_p']:.3g}; "
              f"{paired['paired_episodes']} paired, {paired.get('dropped_episodes', 0)} dropped)"
              if paired else "baseline")
        lines.append(f"| {run['label']} | {run['policy']} | {_fmt(run['success_rate'])} | {_fmt(run['success_ci95'])}"
                     f" | {_fmt(run['mean_reward'])} | {_fmt(run['mean_turns'])} | {_fmt(run['invalid_action_rate'])}"
                     f" | {_fmt(run['tool_error_rate'])}"
                     f" | {run['episodes']} | {vs} |")
    lines += ["", "Success counts every scheduled episode (an infrastructure failure is a failure). Wins/losses "
              "count tasks one run solves and the other does not, over the episodes scored in both runs (the "
              "dropped ones failed in either run or ran in only one); p is McNemar's exact test.", ""]
    return "\n".join(lines)


def plot_comparison(comparison: dict[str, Any], path: str | Path) -> Path:
    """Bar chart of success with Wilson 95% intervals and of mean reward, one bar per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = comparison["runs"]
    labels = [r["label"] for r in runs]
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.2 * len(runs), 3.5))
    succ = [r["success_rate"] or 0.0 for r in runs]
    lo = [s - (r["success_ci95"] or [s, s])[0] for s, r in zip(succ, runs)]
    hi = [(r["success_ci95"] or [s, s])[1] - s for s, r in zip(succ, runs)]
    axes[0].bar(labels, succ, yerr=[lo, hi], capsize=4, color="tab:blue")
    axes[0].set_ylim(0, 1)
    axes[0].set_title("success (95% CI)")
    axes[1].bar(labels, [r["mean_reward"] or 0.0 for r in runs], color="tab:green")
    axes[1].set_title("mean reward")
    for ax in axes:
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle(f"{comparison['env']} [{comparison['split']}]")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_comparison(comparison: dict[str, Any], out_dir: str | Path) -> Path:
    """Write compare.json, compare.md and compare.png into `out_dir`; returns the Markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(comparison, indent=2))
    plot_comparison(comparison, out / "compare.png")
    md = out / "compare.md"
    md.write_text(comparison_markdown(comparison) + "\n![success and reward](compare.png)\n")
    return md
