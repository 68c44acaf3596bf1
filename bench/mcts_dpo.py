"""Experiment 3: iterated MCTS -> step-level preference pairs -> step-DPO on a tiny model, scored on held-out tasks.

Pipeline (MCTS-DPO / Agent Q style, all real pieces): a tiny Llama (tokenizer trained on the env's texts) is SFT'd
briefly on oracle train-split episodes (a weak-but-nonzero policy); it is served by HFServer and sampled through
TokenPolicy at temperature 1 as the MCTS candidate generator. Each iteration: MCTS over train tasks (PUCT, k
candidates per expansion, terminal reward, mean backup) -> ``step_preference_pairs`` (best vs worst sibling by
Q) -> ``StepDPOTrainer`` (reference = the model at the start of the iteration) -> ``save_pretrained`` ->
``server.load_weights``. Before and after each iteration: greedy success on the test split (Wilson 95% CI), plus
sampled (T=1) success and the invalid-action rate. Cost per iteration: policy calls, env steps, seconds.

Default env: ``agentgym/corridor-v0`` with horizon 2 (a tiny model reaches nonzero success there in minutes;
SQL does not). Note that corridor's observation is the position only: the decisive door of a task is not
visible, so no policy beats ~1/4 on the decisive turn of held-out tasks; what search + DPO can fix is the
format (invalid calls) and the door prior. Runs in ~10 min on 2 busy cores with the defaults.

    .venv/bin/python bench/mcts_dpo.py [--train-tasks 64 --simulations 12 --k 4 --iterations 2]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, write_results  # noqa: E402
from _search_common import (add_model_arguments, env_factory, experiment_parser, oracle_records, rate,  # noqa: E402
                            save_figure, served, sft_tiny_model, split_tasks)

from agentgym.planning.mcts import MCTSConfig, search  # noqa: E402
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs  # noqa: E402
from agentgym.trainers.preferences import step_preference_pairs  # noqa: E402


async def evaluate(policy: Any, make_env: Any, tasks: list[str], samples: int) -> dict[str, Any]:
    """Success over `samples` episodes per held-out task, and the share of turns with an invalid action."""
    t0 = time.perf_counter()
    recs = await RolloutEngine(make_env, policy, RolloutConfig(concurrency=8)).run(make_jobs(tasks, samples, 7))
    scored = [r for r in recs if r.scored]
    turns = [t for r in scored for t in r.turns]
    invalid = sum(bool(t.info.get("invalid_action")) for t in turns)
    return {**rate(sum(bool(r.success) for r in scored), len(scored)),
            "invalid_action_rate": invalid / max(len(turns), 1), "seconds": time.perf_counter() - t0}


async def search_tasks(policy: Any, make_env: Any, tasks: list[str], cfg: MCTSConfig, margin: float,
                       iteration: int) -> tuple[list[Any], dict[str, Any]]:
    """MCTS on each train task (seeded per task); returns all step pairs and the cost of the searches."""
    pairs, solved, calls, steps = [], 0, 0, 0
    t0 = time.perf_counter()
    env = make_env()
    try:
        for i, tid in enumerate(tasks):
            res = await search(env, policy, MCTSConfig(**{**cfg.__dict__, "seed": i}),
                               seed=10_000 * iteration + i, options={"task_id": tid})
            pairs += step_preference_pairs(res.root, margin=margin)
            solved, calls, steps = solved + res.success, calls + res.policy_calls, steps + res.env_steps
    finally:
        await env.aclose()
    return pairs, {"tasks": len(tasks), "solved_by_search": rate(solved, len(tasks)), "policy_calls": calls,
                   "env_steps": steps, "seconds": time.perf_counter() - t0, "pairs": len(pairs),
                   # format pairs (the rejected action is not a tool call) vs pairs between two tool calls
                   "pairs_rejecting_a_non_call": sum(not p.rejected.get("tool_calls") for p in pairs),
                   "pairs_both_calls": sum(bool(p.rejected.get("tool_calls") and p.chosen.get("tool_calls"))
                                           for p in pairs)}


def dpo_iteration(model_dir: Path, out_dir: Path, pairs: list[Any], tools: list[dict], args: Any) -> dict[str, Any]:
    """Step-DPO on the pairs from `model_dir` (also the reference); saves the updated model to `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agentgym.trainers.step_dpo import StepDPOConfig, StepDPOTrainer, examples_from_pairs

    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    examples = examples_from_pairs(pairs, tokenizer, tools)
    history: list[dict[str, float]] = []
    if examples:
        trainer = StepDPOTrainer(model, StepDPOConfig(beta=args.beta, lr=args.dpo_lr, epochs=args.dpo_epochs,
                                                      batch_size=8, nll_weight=args.nll_weight,
                                                      pad_id=tokenizer.pad_token_id or 0, seed=args.seed))
        history = trainer.train(examples)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    first, last = (history[0], history[-1]) if history else ({}, {})
    return {"examples": len(examples), "steps": len(history), "first": first, "last": last,
            "seconds": time.perf_counter() - t0}


async def main(args: Any) -> dict[str, Any]:
    opts = {"horizon": args.horizon}
    work = Path(args.work or tempfile.mkdtemp(prefix="mcts-dpo-"))
    t_all = time.perf_counter()
    sft_tasks = await split_tasks(args.env, "train", args.sft_episodes, **opts)
    train = (await split_tasks(args.env, "train", 10_000, **opts))[-args.train_tasks:]  # disjoint from SFT's
    test = await split_tasks(args.env, "test", args.test_tasks, **opts)
    tools = list(env_factory(args.env, "train", **opts)().tools)
    sft_reused = (work / "model" / "sft" / "final" / "config.json").exists()  # --work with a trained model
    t0 = time.perf_counter()
    records = await oracle_records(args.env, sft_tasks, **opts)
    model_dir = await asyncio.to_thread(sft_tiny_model, work / "model", args.env, records, tools,
                                        hidden=args.hidden, layers=args.layers, steps=args.sft_steps,
                                        lr=args.sft_lr, seed=args.seed)
    sft_seconds = time.perf_counter() - t0
    cfg = MCTSConfig(simulations=args.simulations, k=args.k, select="puct", c=1.0, backup="mean",
                     max_depth=args.horizon, evaluator="terminal", policy_timeout_s=600.0)
    make_test = env_factory(args.env, "test", **opts)
    make_train = env_factory(args.env, "train", **opts)
    rows = []
    async with served(model_dir, max_model_len=args.max_model_len, max_tokens=args.max_tokens) as s:
        row = {"iteration": 0, "model_version": s.server.version,
               "greedy": await evaluate(s.greedy, make_test, test, 1),
               "sampled": await evaluate(s.sample, make_test, test, args.eval_samples)}
        rows.append(row)
        print(row, flush=True)
        current = model_dir
        for it in range(1, args.iterations + 1):
            pairs, search_cost = await search_tasks(s.sample, make_train, train, cfg, args.margin, it)
            nxt = work / f"dpo-{it}"
            dpo = await asyncio.to_thread(dpo_iteration, current, nxt, pairs, tools, args)
            t_load = time.perf_counter()
            version = await s.server.load_weights(nxt)
            current = nxt
            row = {"iteration": it, "model_version": version, "search": search_cost, "dpo": dpo,
                   "load_weights_seconds": time.perf_counter() - t_load,
                   "pair_depths": sorted({p.depth for p in pairs}),
                   "greedy": await evaluate(s.greedy, make_test, test, 1),
                   "sampled": await evaluate(s.sample, make_test, test, args.eval_samples)}
            rows.append(row)
            print(row, flush=True)
    return {"sft": {"episodes": len(records), "steps": args.sft_steps, "lr": args.sft_lr, "seconds": sft_seconds,
                    "reused": sft_reused},
            "iterations": rows, "total_seconds": time.perf_counter() - t_all}


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Greedy and sampled held-out success (Wilson 95% CI) and the sampled invalid-action rate per iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, marker in (("greedy", "o"), ("sampled", "s")):
        xs = [r["iteration"] for r in rows]
        ys = [r[key]["rate"] for r in rows]
        err = [[y - r[key]["ci95"][0] for y, r in zip(ys, rows)], [r[key]["ci95"][1] - y for y, r in zip(ys, rows)]]
        ax.errorbar(xs, ys, yerr=err, marker=marker, capsize=4, label=f"{key} (test split)")
    ax.plot([r["iteration"] for r in rows], [r["sampled"]["invalid_action_rate"] for r in rows], "k--", marker="x",
            label="invalid-action rate (sampled)")
    ax.set_xlabel("MCTS -> step-DPO iteration (0 = SFT model)")
    ax.set_ylabel("rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks([r["iteration"] for r in rows])
    ax.set_title(title, fontsize=9)
    ax.legend()
    save_figure(fig, path)


if __name__ == "__main__":
    ap = experiment_parser(__doc__)
    add_model_arguments(ap, env="corridor", max_tokens=24, max_model_len=1024)
    ap.add_argument("--train-tasks", type=int, default=64, help="train tasks searched per iteration")
    ap.add_argument("--test-tasks", type=int, default=25)
    ap.add_argument("--eval-samples", type=int, default=4, help="sampled (T=1) episodes per test task")
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--simulations", type=int, default=12)
    ap.add_argument("--k", type=int, default=4, help="candidates per expansion")
    ap.add_argument("--margin", type=float, default=0.0, help="min Q gap of a step pair")
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--dpo-lr", type=float, default=1e-3)
    ap.add_argument("--dpo-epochs", type=int, default=3)
    ap.add_argument("--nll-weight", type=float, default=1.0, help="chosen-action NLL term (RPO; 0 = plain DPO)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="mcts_dpo")
    a = ap.parse_args()
    res = asyncio.run(main(a))
    png = RESULTS / f"{a.name}.png"
    plot(res["iterations"], png,
         f"MCTS -> step-DPO (lr {a.dpo_lr:g}), tiny model (h{a.hidden}x{a.layers}), {a.env} T={a.horizon}")
    write_results(a.name, {
        "env": f"agentgym/{a.env}-v0" + (f" horizon={a.horizon}" if a.env == "corridor" else "")
               + " (SFT + search: train split; eval: test split)",
        "policy": f"tiny Llama hidden={a.hidden} layers={a.layers}, SFT on oracle episodes, HFServer + TokenPolicy",
        "budgets": {k: getattr(a, k) for k in ("sft_episodes", "sft_steps", "train_tasks", "test_tasks",
                                               "eval_samples", "iterations", "simulations", "k", "margin", "beta",
                                               "dpo_lr", "dpo_epochs", "nll_weight", "max_tokens")},
        "mcts": {"select": "puct", "c": 1.0, "backup": "mean", "evaluator": "terminal", "max_depth": a.horizon},
        "plot": str(png.relative_to(RESULTS.parent.parent)), **res})
