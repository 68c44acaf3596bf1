"""Experiment 1: an offline critic (train-split behaviour episodes) + best-of-N on held-out tasks, N = 1..16, ± CQL.

The critic never sees the env's reward at test time: each turn, BestOfNPolicy samples N actions from the behaviour
policy and executes the highest-Q one (one submission per episode). N = 1 is the behaviour policy itself.

Policies (``--policy``): ``scripted`` (a stochastic SQL stand-in, bench/_scripted_sql.py; SQL only) or ``model``
(a tiny Llama SFT'd on oracle train episodes, served by HFServer, sampled by TokenPolicy at T=1). Each (policy,
env) run is its own section of bench/results/qvalue_best_of_n.json (earlier sections are kept) and is drawn in
qvalue_best_of_n.png.

Usage: python bench/qvalue_best_of_n.py [--policy scripted|model] [--env sql|search|corridor]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scripted_sql import ScriptedSqlPolicy  # noqa: E402
from _search_common import (ENV_IDS, add_policy_arguments, env_factory, experiment_parser,  # noqa: E402
                            parse_policy_arguments, prepare_model, rate, run_section, save_figure, served,
                            split_tasks)

from agentgym.planning.best_of_n import BestOfNPolicy  # noqa: E402
from agentgym.records import EpisodeWriter  # noqa: E402
from agentgym.registry import asuite  # noqa: E402
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs  # noqa: E402
from agentgym.trainers.qvalue import QValueConfig, fit_critic_from_records, load_critic  # noqa: E402

NAME = "qvalue_best_of_n"


async def run(make_env: Any, policy: Any, tasks: list[str], samples: int = 1, concurrency: int = 2):
    recs = await RolloutEngine(make_env, policy, RolloutConfig(concurrency=concurrency)).run(make_jobs(tasks, samples))
    scored = [r for r in recs if r.scored]
    return recs, rate(sum(bool(r.success) for r in scored), len(scored))


async def experiment(kind: str, behaviour: Any, sampler: Any, train: list[str], test: list[str], ns: list[int],
                     args: Any, opts: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """Behaviour episodes on train -> critic (± CQL) -> best-of-N success on test for each N."""
    tmp = Path(tempfile.mkdtemp(prefix="qbon-"))
    t0 = time.perf_counter()
    recs, behaviour_train = await run(env_factory(kind, "train", **opts), behaviour, train, 4, concurrency)
    with EpisodeWriter(tmp / "train.jsonl", fsync=False) as w:
        for r in recs:
            w.write(r)
    out = {"behaviour_train_success": behaviour_train["rate"], "train_episodes": len(recs),
           "collect_seconds": time.perf_counter() - t0, "results": {}}
    for label, alpha in (("no_cql", 0.0), ("cql", 1.0)):
        t1 = time.perf_counter()
        path = fit_critic_from_records([tmp / "train.jsonl"], tmp / label, QValueConfig(
            epochs=args.epochs, hidden=(128,), lr=1e-3, cql_alpha=alpha, featurizer=args.featurizer, gamma=0.95))
        critic = load_critic(path)
        row: dict[str, Any] = {"fit_seconds": time.perf_counter() - t1, "ci95": {}, "eval_seconds": {}}
        for n in ns:
            t2 = time.perf_counter()
            _, r = await run(env_factory(kind, "test", **opts), BestOfNPolicy(sampler(1000 + n), critic, n=n), test,
                             1, concurrency)
            row[f"N={n}"], row["ci95"][f"N={n}"] = r["rate"], r["ci95"]
            row["eval_seconds"][f"N={n}"] = time.perf_counter() - t2
        out["results"][label] = row
        print(label, row, flush=True)
    return out


async def run_scripted(args: Any) -> dict[str, Any]:
    suite = await asuite(ENV_IDS["sql"], split="train")
    gold = lambda tid: suite.get(tid).data["gold_sql"]  # noqa: E731
    train = [t.id for t in suite.tasks("train")[:args.train_tasks]]
    test = [t.id for t in suite.tasks("test")[:args.test_tasks]]
    res = await experiment("sql", ScriptedSqlPolicy(gold, seed=0), lambda seed: ScriptedSqlPolicy(gold, seed=seed),
                           train, test, [1, 2, 4, 8, 16], args, {}, 2)
    return {"env": "agentgym/sql-v0 (critic: train split; eval: test split)", "featurizer": args.featurizer,
            "policy": "scripted stochastic SQL policy (NOT a model), see bench/_scripted_sql.py", **res}


async def run_model(args: Any) -> dict[str, Any]:
    prepared = await prepare_model(args, NAME)
    opts, model_dir, sft_seconds, sft_reused = (prepared.opts, prepared.model_dir, prepared.sft_seconds,
                                                prepared.sft_reused)
    train = (await split_tasks(args.env, "train", 10_000, **opts))[-args.train_tasks:]  # disjoint from SFT's
    test = await split_tasks(args.env, "test", args.test_tasks, **opts)
    async with served(model_dir, max_model_len=args.max_model_len, max_tokens=args.max_tokens) as s:
        res = await experiment(args.env, s.sample, lambda seed: s.sample, train, test, [1, 2, 4, 8], args, opts, 8)
    return {"env": f"{ENV_IDS[args.env]} (critic: train split; eval: test split)"
                   + (f" horizon={args.horizon}" if args.env == "corridor" else ""),
            "featurizer": args.featurizer,
            "policy": f"tiny Llama hidden={args.hidden} layers={args.layers}, SFT {args.sft_steps} steps on "
                      f"{prepared.sft_episodes} oracle train episodes; HFServer + TokenPolicy (T=1)",
            "sft_seconds": sft_seconds, "sft_reused": sft_reused, **res}


def plot(sections: dict[str, Any], path: Path) -> None:
    """Success vs N (log2 axis) per section, no-CQL and CQL critics; Wilson 95% CIs where recorded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sections), figsize=(4.5 * len(sections), 3.8), squeeze=False)
    for ax, (key, sec) in zip(axes[0], sections.items()):
        for label, row in sec["results"].items():
            ns = sorted(int(k[2:]) for k in row if k.startswith("N="))
            ys = [row[f"N={n}"] for n in ns]
            ci = row.get("ci95") or {}
            err = None
            if all(f"N={n}" in ci for n in ns):
                err = [[y - ci[f"N={n}"][0] for y, n in zip(ys, ns)], [ci[f"N={n}"][1] - y for y, n in zip(ys, ns)]]
            ax.errorbar(ns, ys, yerr=err, marker="o", capsize=3, label=label)
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("N (candidates per turn, critic picks)")
        ax.set_ylabel("held-out success")
        ax.set_title(key, fontsize=9)
        ax.legend()
    save_figure(fig, path)


if __name__ == "__main__":
    ap = experiment_parser(__doc__)
    add_policy_arguments(ap)
    ap.add_argument("--train-tasks", type=int, default=None, help="behaviour tasks (x4 episodes); default 60 / 16")
    ap.add_argument("--test-tasks", type=int, default=None, help="held-out tasks; default 40 / 25")
    ap.add_argument("--featurizer", default="bow", help="bow | minilm (frozen encoder of the critic)")
    ap.add_argument("--epochs", type=int, default=60, help="critic epochs")
    a = parse_policy_arguments(ap)
    a.train_tasks = a.train_tasks or (60 if a.policy == "scripted" else 16)
    a.test_tasks = a.test_tasks or (40 if a.policy == "scripted" else 25)
    run_section(NAME, a, run_scripted, run_model, plot,
                note="each section is one (policy, env) run; 'scripted' is NOT a model")
