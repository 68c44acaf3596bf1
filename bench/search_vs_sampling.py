"""Experiment 2: at an equal budget of policy calls, greedy vs best-of-N episodes vs MCTS on held-out tasks.

All three use the env's terminal reward to pick (best-of-N keeps the best of N sampled episodes; MCTS backs rewards
up the tree), as LATS does: read them as search upper bounds, not single-submission accuracy. Cost per solved task:
policy calls, env steps (MCTS counts snapshot restores as free; replay would cost Σ depth), seconds.

Policies (``--policy``): ``scripted`` (a stochastic SQL stand-in, bench/_scripted_sql.py; SQL only) or ``model``
(a tiny Llama SFT'd on oracle train episodes of the env, served by HFServer, sampled by TokenPolicy at T=1,
greedy at T=0). Each (policy, env) run is stored as its own section of bench/results/search_vs_sampling.json
(earlier sections are kept) and drawn in search_vs_sampling.png.

Usage: python bench/search_vs_sampling.py [--policy scripted|model] [--env sql|search|corridor] [--tasks 30]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scripted_sql import ScriptedSqlPolicy  # noqa: E402
from _search_common import (ENV_IDS, add_policy_arguments, env_factory, experiment_parser,  # noqa: E402
                            parse_policy_arguments, prepare_model, rate, run_section, save_figure, served,
                            split_tasks)

from agentgym.planning.mcts import MCTSConfig, search  # noqa: E402
from agentgym.registry import asuite  # noqa: E402
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs  # noqa: E402

NAME = "search_vs_sampling"


async def compare(make_env: Any, tasks: list[str], greedy: Any, sampler: Any, budget: int, max_depth: int,
                  concurrency: int = 4) -> dict[str, Any]:
    """Greedy (1 episode), best-of-N (budget // 3 sampled episodes) and MCTS (budget policy calls) per task."""
    out: dict[str, Any] = {}
    n_best = max(1, budget // 3)  # each sampled episode costs >= 1 call; keep N episodes within the call budget
    for name, policy, n in (("greedy", greedy, 1), ("best_of_n", sampler(0), n_best)):
        t0 = time.perf_counter()
        recs = await RolloutEngine(make_env, policy, RolloutConfig(concurrency=concurrency)).run(make_jobs(tasks, n))
        by_task: dict[str, list] = {}
        for r in recs:
            by_task.setdefault(r.task_id, []).append(r)
        solved = sum(any(r.success for r in rs) for rs in by_task.values())
        calls = sum(r.num_turns for r in recs)
        out[name] = {**rate(solved, len(tasks)), "solved": solved, "tasks": len(tasks), "success": solved / len(tasks),
                     "policy_calls": calls, "env_steps": calls, "seconds": time.perf_counter() - t0,
                     "episodes_per_task": n}
    t0 = time.perf_counter()
    solved = calls = steps = 0
    env = make_env()
    try:
        for i, tid in enumerate(tasks):
            res = await search(env, sampler(100 + i), MCTSConfig(simulations=10_000, max_policy_calls=budget, k=3,
                                                                 max_depth=max_depth, stop_on_success=True, seed=i),
                               seed=i, options={"task_id": tid})
            solved += res.success
            calls += res.policy_calls
            steps += res.env_steps
    finally:
        await env.aclose()
    out["mcts"] = {**rate(solved, len(tasks)), "solved": solved, "tasks": len(tasks), "success": solved / len(tasks),
                   "policy_calls": calls, "env_steps": steps, "seconds": time.perf_counter() - t0, "k": 3}
    for v in out.values():  # cost per solved task (None when nothing was solved)
        s = v["solved"]
        v["per_solved"] = {"policy_calls": v["policy_calls"] / s, "env_steps": v["env_steps"] / s,
                           "seconds": v["seconds"] / s} if s else None
    return out


async def run_scripted(args: Any) -> dict[str, Any]:
    make_env = env_factory("sql", "test")
    suite = await asuite(ENV_IDS["sql"], split="test")
    tasks = [t.id for t in suite.tasks("test")[:args.tasks]]
    gold = lambda tid: suite.get(tid).data["gold_sql"]  # noqa: E731
    results = await compare(make_env, tasks, ScriptedSqlPolicy(gold, greedy=True),
                            lambda seed: ScriptedSqlPolicy(gold, seed=1 + seed), args.budget, max_depth=4,
                            concurrency=2)
    return {"env": "agentgym/sql-v0 (test split)", "policy": "scripted stochastic SQL policy (NOT a model): gold 0.2, "
            "LIMIT-1 0.3, truncated 0.15, explore 0.2, junk 0.15", "budget_policy_calls_per_task": args.budget,
            "results": results}


async def run_model(args: Any) -> dict[str, Any]:
    prepared = await prepare_model(args, NAME)
    opts, model_dir, sft_seconds, sft_reused = (prepared.opts, prepared.model_dir, prepared.sft_seconds,
                                                prepared.sft_reused)
    tasks = await split_tasks(args.env, "test", args.tasks, **opts)
    max_depth = args.horizon if args.env == "corridor" else args.max_depth
    async with served(model_dir, max_model_len=args.max_model_len, max_tokens=args.max_tokens) as s:
        results = await compare(env_factory(args.env, "test", **opts), tasks, s.greedy, lambda seed: s.sample,
                                args.budget, max_depth, concurrency=8)
    return {"env": f"{ENV_IDS[args.env]} (test split)" + (f" horizon={args.horizon}" if args.env == "corridor" else ""),
            "policy": f"tiny Llama hidden={args.hidden} layers={args.layers}, SFT {args.sft_steps} steps on "
                      f"{prepared.sft_episodes} oracle train episodes; HFServer + TokenPolicy (T=1 sampling, T=0 greedy)",
            "sft_seconds": sft_seconds, "sft_reused": sft_reused, "budget_policy_calls_per_task": args.budget,
            "results": results}


def plot(sections: dict[str, Any], path: Path) -> None:
    """One panel per (policy, env) section: success (Wilson 95% CI) of each method, policy calls per solved task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agentgym.stats import wilson_interval

    fig, axes = plt.subplots(1, len(sections), figsize=(4.2 * len(sections), 3.8), squeeze=False)
    for ax, (key, sec) in zip(axes[0], sections.items()):
        res = sec["results"]
        names = list(res)
        ys = [res[m]["success"] for m in names]
        cis = [wilson_interval(res[m]["solved"], res[m]["tasks"]) for m in names]
        ax.bar(names, ys, yerr=[[y - c[0] for y, c in zip(ys, cis)], [c[1] - y for y, c in zip(ys, cis)]],
               capsize=4, color=["#999999", "#4c72b0", "#dd8452"][:len(names)])
        for i, m in enumerate(names):
            per = res[m]["per_solved"] if res[m]["solved"] else None
            label = f"{per['policy_calls']:.1f}\ncalls/solved" if per else f"0 solved\n{res[m]['policy_calls']} calls"
            ax.text(i, 0.02, label, ha="center", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{key} (budget {sec.get('budget_policy_calls_per_task')} calls/task)", fontsize=9)
        ax.set_ylabel("held-out tasks solved")
    save_figure(fig, path)


if __name__ == "__main__":
    ap = experiment_parser(__doc__)
    add_policy_arguments(ap)
    ap.add_argument("--tasks", type=int, default=None, help="held-out tasks (default 30 scripted, 12 model)")
    ap.add_argument("--budget", type=int, default=12, help="policy calls per task")
    ap.add_argument("--max-depth", type=int, default=4, help="MCTS depth on sql/search")
    a = parse_policy_arguments(ap)
    a.tasks = a.tasks or (30 if a.policy == "scripted" else 12)
    run_section(NAME, a, run_scripted, run_model, plot,
                note="success = held-out tasks solved using the env's reward to pick (search upper bound); "
                     "each section is one (policy, env) run; 'scripted' is NOT a model")
