"""Decisive-turn experiment: how many episodes GRPO, RLOO, GiGPO and turn-level GAE need to reach 90% success.

Env: ``agentgym/corridor-v0`` (T rooms, one hidden decisive door per task), stepped through its real async API.
Policy: a softmax over the 4 doors with one logit row per (task, anchor observation) ("tabular"), optionally
plus one row per task shared by all its rooms ("shared": parameter sharing across turns, as in an LLM).
Trained on-policy with the shared trainer pieces: ``estimate(algo)`` -> per-turn advantages ->
``ppo_clip_loss`` (one epoch, so ρ = 1) -> ``agg_loss`` seq-mean-token-sum (one "token" per turn, so a turn
weighs the same at every horizon) -> SGD with the same step size for every arm. Turn-level GAE (γ=1, λ=0.95,
whitened) uses a tabular critic V(anchor) fitted to Monte-Carlo returns. 8 tasks x group 8 = 64 episodes per
update; 5 seeds; horizons 4 and 8.

Success = the policy's exact success probability averaged over the 8 tasks (π(good door | decisive room)),
against environment episodes; the batch's empirical success is recorded too. Also recorded: mean |A| on the
decisive turn vs the other turns (how much of an estimator's signal lands where the decision is).

    .venv/bin/python bench/decisive_turn.py                      # full run (~5 min on 2 busy cores)
    .venv/bin/python bench/decisive_turn.py --lr 16 --name decisive_turn_lr16 --policies tabular
    .venv/bin/python bench/decisive_turn.py --quick              # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_results  # noqa: E402

from agentgym.envs.corridor.env import DIRECTIONS, CorridorEnv, move_call  # noqa: E402
from agentgym.registry import suite  # noqa: E402
from agentgym.trainers.credit import CreditBatch, CreditConfig, anchor_key, estimate  # noqa: E402
from agentgym.trainers.losses import agg_loss, ppo_clip_loss  # noqa: E402

ARMS = ("grpo", "rloo", "gigpo", "turn_gae")
TASKS, GROUP = 8, 8
TARGET = 0.9
T_CRIT_95 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 8: 2.365, 10: 2.262}


class TabularPolicy:
    """Softmax over the doors, one logit row per state key (rows assigned on first visit, table pre-allocated)."""

    def __init__(self, lr: float, capacity: int, optimizer: str = "sgd", shared: bool = False):
        """``shared=True`` adds one logit row per task used in every room of it (parameter sharing across turns,
        as in an LLM): then the noise that trajectory-level credit puts on non-decisive turns reaches the
        parameters that decide the decisive turn."""
        self.rows: dict[str, int] = {}
        self.tasks: dict[str, int] = {}
        self.row_task = torch.zeros(capacity, dtype=torch.long)
        self.logits = torch.zeros((capacity, len(DIRECTIONS)), requires_grad=True)
        self.task_logits = torch.zeros((capacity, len(DIRECTIONS)), requires_grad=shared)
        self.shared = shared
        opt = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
        self.opt = opt([self.logits, self.task_logits] if shared else [self.logits], lr=lr)
        self._refresh()

    def _all_logits(self, rows: torch.Tensor) -> torch.Tensor:
        return self.logits[rows] + self.task_logits[self.row_task[rows]]

    def _refresh(self) -> None:
        with torch.no_grad():
            self.cum = torch.softmax(self._all_logits(torch.arange(self.logits.shape[0])), -1).cumsum(-1).numpy()

    def row(self, key: str) -> int:
        if key not in self.rows:
            if len(self.rows) == self.logits.shape[0]:
                raise RuntimeError("tabular policy is full")
            self.rows[key] = len(self.rows)
            task = key.split(":", 1)[0]
            self.row_task[self.rows[key]] = self.tasks.setdefault(task, len(self.tasks))
        return self.rows[key]

    def sample(self, key: str, rng: np.random.Generator) -> int:
        return min(int(np.searchsorted(self.cum[self.row(key)], rng.random(), side="right")), len(DIRECTIONS) - 1)

    def prob(self, key: str, action: int) -> float:
        c = self.cum[self.row(key)]
        return float(c[action] - (c[action - 1] if action else 0.0))

    def update(self, rows: list[list[int]], actions: list[list[int]], advantages: list[list[float]]) -> float:
        """One on-policy step on ``[episodes, turns]`` (ρ = 1), seq-mean-token-sum: a turn weighs the same
        whatever the horizon."""
        r, a = torch.tensor(rows), torch.tensor(actions)
        logp = torch.log_softmax(self._all_logits(r), -1).gather(-1, a[..., None]).squeeze(-1)
        adv = torch.tensor(advantages, dtype=torch.float32)
        mask = torch.ones_like(adv)
        loss = agg_loss(ppo_clip_loss(logp, logp.detach(), adv, mask).per_token, mask, "seq-mean-token-sum")
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self._refresh()
        return float(loss.detach())


async def run_arm(arm: str, horizon: int, seed: int, max_episodes: int, lr: float, critic_lr: float,
                  optimizer: str = "sgd", shared: bool = False) -> dict:
    env = CorridorEnv(horizon=horizon)
    rng = np.random.default_rng([seed, 7])
    pool = suite(CorridorEnv.env_id, horizon=horizon).tasks("train")
    tasks = [pool[int(i)] for i in rng.choice(len(pool), size=TASKS, replace=False)]  # same tasks for every arm
    act_rng = np.random.default_rng([seed, horizon, ARMS.index(arm)])
    torch.manual_seed(seed)
    policy = TabularPolicy(lr, TASKS * 2 * horizon + 8, optimizer, shared)
    values: dict[str, float] = {}
    cfg = CreditConfig(gamma=1.0, lam=0.95)
    decisive_key: dict[str, str] = {}
    curve, batch_success, episodes = [], [], 0
    abs_adv = {"decisive": [], "other": []}  # |A| at the decisive turn vs the other turns (signal vs noise)
    reached = None
    while episodes < max_episodes:
        group_ids, rewards, outcomes, anchors, rows, actions = [], [], [], [], [], []
        successes = 0
        for task in tasks:
            for _ in range(GROUP):
                obs, info = await env.areset(options={"task_id": task.id})
                ep_r, ep_k, ep_rows, ep_a, done = [], [], [], [], False
                while not done:
                    key = task.id + ":" + anchor_key(obs["messages"])
                    if info["room"] == task.params["decisive"] and not info["trapped"]:
                        decisive_key[task.id] = key
                    a = policy.sample(key, act_rng)
                    obs, r, term, trunc, info = await env.astep(move_call(DIRECTIONS[a]))
                    ep_r.append(r)
                    ep_k.append(key)
                    ep_rows.append(policy.row(key))
                    ep_a.append(a)
                    done = term or trunc
                successes += bool(info["outcome"]["success"])
                group_ids.append(task.id)
                rewards.append(ep_r)
                outcomes.append(float(info["outcome"]["reward"]))
                anchors.append(ep_k)
                rows.append(ep_rows)
                actions.append(ep_a)
        episodes += TASKS * GROUP
        batch = CreditBatch(group_ids, rewards, outcomes, anchors)
        if arm == "turn_gae":
            batch.turn_values = [[values.get(k, 0.0) for k in keys] for keys in anchors]
        adv = estimate(arm, batch, cfg)
        policy.update(rows, actions, adv)
        for task_id, row in zip(group_ids, adv):
            k = next(t.params["decisive"] for t in tasks if t.id == task_id)
            abs_adv["decisive"].append(abs(row[k]))
            abs_adv["other"].extend(abs(a) for t, a in enumerate(row) if t != k)
        if arm == "turn_gae":  # tabular critic: V(s) <- V(s) + α (G_t − V(s))
            for ep_r, keys in zip(rewards, anchors):
                g = 0.0
                for r, k in zip(reversed(ep_r), reversed(keys)):
                    g = r + cfg.gamma * g
                    values[k] = values.get(k, 0.0) + critic_lr * (g - values.get(k, 0.0))
        exact = float(np.mean([policy.prob(decisive_key[t.id], DIRECTIONS.index(t.params["good"]))
                               if t.id in decisive_key else 0.25 for t in tasks]))
        curve.append(exact)
        batch_success.append(successes / (TASKS * GROUP))
        if reached is None and exact >= TARGET:
            reached = episodes
    return {"arm": arm, "horizon": horizon, "seed": seed, "policy": "shared" if shared else "tabular", "lr": lr, "episodes_to_target": reached, "curve": curve,
            "mean_abs_adv_decisive": float(np.mean(abs_adv["decisive"])),
            "mean_abs_adv_other": float(np.mean(abs_adv["other"])),
            "batch_success": batch_success}


def ci95(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a t-interval."""
    n = len(xs)
    if n < 2:
        return float(xs[0]) if xs else math.nan, math.nan
    return float(np.mean(xs)), T_CRIT_95.get(n, 1.96) * float(np.std(xs, ddof=1)) / math.sqrt(n)


def plot(results: dict, path: Path, step: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    horizons = sorted({r["horizon"] for r in results["runs"]})
    policies = sorted({r["policy"] for r in results["runs"]}, reverse=True)
    fig, axes = plt.subplots(len(policies), len(horizons), figsize=(6 * len(horizons), 4 * len(policies)),
                             squeeze=False)
    for i, pol in enumerate(policies):
        for ax, h in zip(axes[i], horizons):
            for arm in ARMS:
                curves = [r["curve"] for r in results["runs"]
                          if r["arm"] == arm and r["horizon"] == h and r["policy"] == pol]
                if not curves:
                    continue
                n = min(len(c) for c in curves)
                c = np.array([x[:n] for x in curves])
                mean = c.mean(0)
                half = (T_CRIT_95.get(len(c), 1.96) * c.std(0, ddof=1) / math.sqrt(len(c)) if len(c) > 1
                        else 0 * mean)
                x = np.arange(1, n + 1) * step
                ax.plot(x, mean, label=arm)
                ax.fill_between(x, mean - half, mean + half, alpha=0.2)
            ax.axhline(TARGET, color="grey", ls="--", lw=0.8)
            ax.set_title(f"{pol} policy, corridor T={h} (mean, 95% CI, {results['seeds']} seeds)", fontsize=9)
            ax.set_xlabel("environment episodes")
            ax.set_ylabel("success probability")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--horizons", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--max-episodes", type=int, default=3200)
    ap.add_argument("--lr", type=float, default=4.0, help="step size on the logit table (same for every arm)")
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    ap.add_argument("--policies", nargs="+", choices=["tabular", "shared"], default=["tabular", "shared"])
    ap.add_argument("--critic-lr", type=float, default=0.2)
    ap.add_argument("--quick", action="store_true", help="1 seed, T=4, 1280 episodes (smoke test)")
    ap.add_argument("--name", default="decisive_turn")
    args = ap.parse_args()
    if args.quick:
        args.horizons, args.seeds, args.max_episodes, args.name = [4], 1, 640, "decisive_turn_quick"
        args.policies = ["tabular"]
    torch.set_num_threads(1)
    runs, timing = [], {}
    for pol in args.policies:
        for h in args.horizons:
            for arm in ARMS:
                name = f"{pol}/{arm}@T{h}"
                t0 = time.perf_counter()
                for seed in range(args.seeds):
                    runs.append(asyncio.run(run_arm(arm, h, seed, args.max_episodes, args.lr, args.critic_lr,
                                                    args.optimizer, pol == "shared")))
                timing[name] = round(time.perf_counter() - t0, 1)
                print(f"{name}: {timing[name]} s for {args.seeds} seeds", file=sys.stderr)
    summary = {}
    for pol in args.policies:
        for h in args.horizons:
            for arm in ARMS:
                name = f"{pol}/{arm}@T{h}"
                mine = [r for r in runs if r["arm"] == arm and r["horizon"] == h and r["policy"] == pol]
                hits = [r["episodes_to_target"] for r in mine]
                reached = [x for x in hits if x is not None]
                mean, half = ci95([float(x if x is not None else args.max_episodes) for x in hits])
                summary[name] = {"episodes_to_90": hits, "mean": mean, "ci95_half_width": half,
                                 "censored_runs": len(hits) - len(reached), "wall_s": timing[name],
                                 "final_success": float(np.mean([r["curve"][-1] for r in mine])),
                                 "mean_abs_adv_decisive": float(np.mean([r["mean_abs_adv_decisive"] for r in mine])),
                                 "mean_abs_adv_other": float(np.mean([r["mean_abs_adv_other"] for r in mine]))}
    results = {"config": {"tasks": TASKS, "group": GROUP, "target": TARGET, "lr": args.lr, "optimizer": args.optimizer,
                          "loss": "ppo_clip_loss (1 epoch) + agg_loss seq-mean-token-sum",
                          "critic_lr": args.critic_lr, "gigpo": "mean_norm, omega=1, gamma=0.95",
                          "turn_gae": "gamma=1, lambda=0.95, whitened, tabular MC critic",
                          "max_episodes": args.max_episodes, "censoring": "runs that never reach 90% count as "
                          "max_episodes in the mean (a lower bound)"},
               "seeds": args.seeds, "summary": summary, "runs": runs}
    png = RESULTS / f"{args.name}.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(results, png, TASKS * GROUP)
    results["plot"] = str(png.relative_to(RESULTS.parent.parent))
    slim = {k: v for k, v in results.items() if k != "runs"}
    slim["runs"] = [{k: (v if k not in ("curve", "batch_success") else [round(x, 4) for x in v]) for k, v in r.items()}
                    for r in runs]
    write_results(args.name, slim)
    for key, s in summary.items():
        print(f"{key:>24}: episodes to 90% = {s['mean']:.0f} ± {s['ci95_half_width']:.0f} "
              f"(censored {s['censored_runs']}); |A| decisive {s['mean_abs_adv_decisive']:.3f} "
              f"other {s['mean_abs_adv_other']:.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
