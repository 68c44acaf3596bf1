"""On-policy multi-turn RL: rollout groups -> turn-level advantages -> PPO-clip token loss -> weight sync.

Reads top to bottom like CleanRL's ppo.py; hyper-parameters live in ``RLConfig`` (trainers/config.py).
One training step:

1. sample tasks (curriculum over families) and run ``group_size`` episodes per task through the policy
   server; the records keep the exact sampled tokens and the server's log-probs (token-in/token-out);
2. credit: training rewards ``r'_t = r_t + shaping terms`` (trainers/shaping.py; optionally PURE's min-form),
   then ``A[episode][turn] = estimate(algo, CreditBatch)`` (GRPO, RLOO, GiGPO, turn-level GAE, ...);
3. drop groups that carry no signal, pack episodes into token rows whose loss mask covers only the
   model's own tokens (environment tokens never get gradient);
4. ``π_old`` = the trainer's log-probs before the update; truncated importance weights
   ``w = min(π_old / π_rollout, C)`` correct for server/trainer mismatch;
5. PPO-clip with clip-higher: ``ρ = exp(log π_θ − log π_old)``,
   ``ℓ = max(−A ρ, −A clip(ρ, 1−ε_low, 1+ε_high))`` (dual clip for A < 0), times ``w``, aggregated by
   ``agg_loss``, plus ``β · KL(π_θ ‖ π_ref)`` when ``kl_coef > 0``;
6. save the weights and ``version = await sync_weights(dir)``: the server samples from the new policy.

Checkpoints hold the model, optimizer, RNGs, curriculum and the step, so a killed run resumes exactly
(each step's task draw depends only on (seed, step) and the restored curriculum).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.errors import AgentGymError
from agentgym.policy import Policy
from agentgym.provenance import entries_from_records, write_model_provenance
from agentgym.records import iter_episodes
from agentgym.records import EpisodeRecord, EpisodeWriter
from agentgym.rollout import EnvFactory, RolloutConfig, RolloutEngine, make_jobs
from agentgym.stats import wilson_interval
from agentgym.trainers.checkpoint import CheckpointManager
from agentgym.trainers.config import RLConfig, save_config
from agentgym.trainers.credit import CreditBatch, CreditConfig, estimate, shape_rewards
from agentgym.trainers.curriculum import CurriculumSampler
from agentgym.trainers.group_filter import filter_indices
from agentgym.trainers.lora import LoraSettings, apply_lora, reference_model, save_model, trainable_parameters
from agentgym.trainers.losses import agg_loss, global_normalisers, kl_estimate, ppo_clip_loss, tis_weights
from agentgym.trainers.metrics import MetricsLogger
from agentgym.trainers.packing import PackedBatch, pack_episodes
from agentgym.trainers.shaping import parse_shaping, shaped_turn_rewards

WeightSync = Callable[[Path], Awaitable[int]]
Collect = Callable[[Sequence[str], int, int, Path], Awaitable[list[EpisodeRecord]]]
"""(task ids, group size, seed, out JSONL) -> one record per episode: e.g. Ray workers instead of this process."""
Evaluate = Callable[[int], Awaitable[dict[str, float]]]
VALUE_ALGOS = frozenset({"turn_gae", "bilevel_gae"})  # estimators that need V(s_t) from a learned critic


@dataclass(frozen=True)
class TrainTask:
    """What the loop needs of a training task: its id and family (the curriculum's unit)."""

    id: str
    family: str


@dataclass
class RLResult:
    run_dir: Path
    final_model: Path
    steps: int
    episodes: int
    model_version: int


# --- rollouts ------------------------------------------------------------------------------------

async def collect_rollouts(env_factory: EnvFactory, policy: Policy, task_ids: Sequence[str], group_size: int,
                           *, seed: int, concurrency: int, out: Path | None = None) -> list[EpisodeRecord]:
    """``group_size`` episodes of each task, streamed to ``out`` (one JSONL per step: a resumed step rewrites it)."""
    engine = RolloutEngine(env_factory, policy, RolloutConfig(concurrency=concurrency))
    jobs = make_jobs(task_ids, group_size, base_seed=seed)
    if out is None:
        return await engine.run(jobs)
    out.unlink(missing_ok=True)
    with EpisodeWriter(out) as writer:
        return await engine.run(jobs, on_record=writer.write)


def trainable(records: Sequence[EpisodeRecord]) -> list[EpisodeRecord]:
    """Scored episodes whose every turn carries the sampled tokens and log-probs (infra failures never train)."""
    return [r for r in records if r.scored and r.turns
            and all(t.token_ids is not None and t.logprobs is not None and t.prompt_token_ids is not None
                    for t in r.turns)]


def tool_error_rate(records: Sequence[EpisodeRecord]) -> float:
    """Malformed actions and failed tool calls per attempted call, over the episodes' final counters."""
    errors = attempts = 0
    for r in records:
        if not r.turns:
            continue
        info = r.turns[-1].info
        bad = int(info.get("tool_errors", 0)) + int(info.get("invalid_actions", 0))
        errors += bad
        attempts += max(int(info.get("tool_calls", 0)) + int(info.get("invalid_actions", 0)), len(r.turns))
    return errors / attempts if attempts else 0.0


def advantage_by_turn(advantages: Sequence[Sequence[float]], max_turns: int = 16) -> list[float]:
    """Mean |A| at each turn index (the per-turn advantage heatmap's column for this step)."""
    sums, counts = [0.0] * max_turns, [0] * max_turns
    for row in advantages:
        for t, a in enumerate(row[:max_turns]):
            sums[t] += abs(a)
            counts[t] += 1
    return [s / c if c else 0.0 for s, c in zip(sums, counts)]


# --- the update -----------------------------------------------------------------------------------

def policy_update(model: Any, optimizer: Any, batch: PackedBatch, cfg: RLConfig,
                  ref_model: Any = None) -> dict[str, float]:
    """PPO epochs over one rollout batch; gradients accumulate over micro-batches with global normalisers."""
    import torch

    from agentgym.trainers.logprobs import token_logprobs

    device = next(model.parameters()).device
    ids, att, mask = batch.input_ids.to(device), batch.attention_mask.to(device), batch.loss_mask.to(device)
    adv, rollout_lp = batch.advantages.to(device), batch.rollout_logprobs.to(device)
    with torch.no_grad():
        old_lp = token_logprobs(model, ids, att, chunk_size=cfg.micro_batch_size)
        ref_lp = token_logprobs(ref_model, ids, att, chunk_size=cfg.micro_batch_size) if ref_model else None
    weights = (tis_weights(old_lp, rollout_lp, mask, cfg.tis_cap) if cfg.tis_cap
               else torch.ones_like(old_lp))
    norms = global_normalisers(mask)
    stats = {"loss": 0.0, "clip_fraction": 0.0, "kl": 0.0, "grad_norm": 0.0}
    rows = len(batch)
    for _ in range(cfg.ppo_epochs):
        optimizer.zero_grad(set_to_none=True)
        clip_frac, kl_sum, loss_sum = 0.0, 0.0, 0.0
        for start in range(0, rows, cfg.micro_batch_size):
            sl = slice(start, start + cfg.micro_batch_size)
            logp = token_logprobs(model, ids[sl], att[sl])
            pg = ppo_clip_loss(logp, old_lp[sl], adv[sl], mask[sl], cfg.clip_low, cfg.clip_high, cfg.dual_clip)
            loss = agg_loss(pg.per_token * weights[sl], mask[sl], cfg.loss_agg, **norms)
            if ref_lp is not None:
                kl = kl_estimate(logp, ref_lp[sl], cfg.kl_estimator)
                kl_term = agg_loss(kl, mask[sl], cfg.loss_agg, **norms)
                loss = loss + cfg.kl_coef * kl_term
                kl_sum += float(kl_term.detach())
            loss.backward()
            loss_sum += float(loss.detach())
            clip_frac += float(pg.clip_fraction) * float(mask[sl].sum())
        if cfg.max_grad_norm > 0:
            stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm))
        optimizer.step()
        stats["loss"], stats["kl"] = loss_sum, kl_sum
        stats["clip_fraction"] = clip_frac / max(float(mask.sum()), 1.0)
    with torch.no_grad():
        valid = mask.bool()
        stats["tis_mean"] = float(weights[valid].mean()) if valid.any() else 1.0
        stats["logprob_gap"] = float((old_lp - rollout_lp)[valid].abs().mean()) if valid.any() else 0.0
    return stats


def sample_step_tasks(tasks: Sequence[TrainTask], n: int, step: int, seed: int,
                      curriculum: CurriculumSampler | None) -> list[TrainTask]:
    """The tasks of one step: a function of (seed, step, curriculum state), so a resumed run redraws them exactly."""
    rng = np.random.default_rng([seed, step])
    if curriculum is None:
        picks = rng.choice(len(tasks), size=min(n, len(tasks)), replace=False)
        return [tasks[int(i)] for i in picks]
    weights = dict(zip(curriculum.families, curriculum.weights()))
    p = np.array([weights.get(t.family, 0.0) for t in tasks], dtype=float)
    p = p / p.sum() if p.sum() > 0 else None
    picks = rng.choice(len(tasks), size=min(n, len(tasks)), replace=False, p=p)
    return [tasks[int(i)] for i in picks]


def save_weights_for_sync(model: Any, tokenizer: Any, run_dir: Path, step: int) -> Path:
    """Write the current full weights to ``weights/step-N`` atomically (the server loads them from there).

    A LoRA model is written merged (adapters folded into a copy), so the server loads plain weights.
    """
    root = run_dir / "weights"
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp, tokenizer)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(p for p in root.glob("step-*") if p != final)[:-1]:  # keep the previous one as well
        shutil.rmtree(old, ignore_errors=True)
    return final


log = logging.getLogger("agentgym.trainers.rl")


class TrainingStalledError(AgentGymError):
    """RL steps keep producing no policy update (no group with reward variance): the run would only look trained."""


def no_update_reason(records: Sequence[EpisodeRecord]) -> str:
    """Why a step had nothing to learn from, and what to change; one paragraph for a warning or an error."""
    scored = [r for r in records if r.scored]
    rewards = sorted({round(float(r.reward or 0.0), 6) for r in scored})
    success = sum(bool(r.success) for r in scored) / len(scored) if scored else 0.0
    if not scored:
        cause = f"none of the {len(records)} episodes could be scored (infrastructure failures)"
        fix = "fix the env or policy server first (see the rollouts' infra_errors)"
    elif success == 0.0:
        cause = f"every episode failed (rewards {rewards[:5]})"
        fix = ("start from a model that sometimes succeeds (--sft oracle), use easier tasks or a curriculum, "
               "or add dense reward terms (--reward-shaping)")
    elif success == 1.0:
        cause = "every episode succeeded with the same reward"
        fix = "train on harder tasks; this model has nothing left to learn here"
    else:
        cause = f"every group of --group-size episodes got identical rewards (success {success:.2f})"
        fix = "use a larger --group-size, a sampling temperature above 0, or --group-filter none"
    return f"{cause}; remedies: {fix}"


# --- the loop -------------------------------------------------------------------------------------

async def train_rl(cfg: RLConfig, *, env_factory: EnvFactory, tasks: Sequence[TrainTask], policy: Policy,
                   sync_weights: WeightSync, evaluate: Evaluate | None = None, collect: Collect | None = None,
                   progress: Callable[[int, dict[str, Any]], None] | None = None) -> RLResult:
    """Run ``cfg.steps`` updates (resuming from the newest checkpoint of ``cfg.run_dir`` when there is one)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg.validate()
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir)
    torch.manual_seed(cfg.seed)
    dtype = getattr(torch, cfg.dtype)
    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtype).to(cfg.device)
    if cfg.lora_rank > 0:  # frozen base + rank-r adapters (trainers/lora.py)
        model = apply_lora(model, LoraSettings.from_config(cfg))
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ref_model = None
    if cfg.kl_coef > 0:  # LoRA: the base with adapters disabled (no copy); else a frozen deep copy
        ref_model = reference_model(model)
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=cfg.lr)
    curriculum = CurriculumSampler(sorted({t.family for t in tasks}), seed=cfg.seed) if cfg.curriculum else None
    value_head, value_opt = _value_head(model, cfg)

    checkpoints = CheckpointManager(run_dir, every=cfg.checkpoint_every, keep=cfg.keep_checkpoints)
    start_step, episodes_seen, version = 0, 0, 0
    restored = checkpoints.restore(model, optimizer) if cfg.resume else None
    if restored is not None:
        start_step = restored.step
        extra = restored.extra
        episodes_seen, version = int(extra.get("episodes", 0)), int(extra.get("model_version", 0))
        if curriculum is not None and restored.sampler_state:
            curriculum.load_state_dict(restored.sampler_state)
        if value_head is not None and extra.get("value_head"):
            value_head.load_state_dict(extra["value_head"])
            value_opt.load_state_dict(extra["value_opt"])
        version = await sync_weights(restored.path / "model")  # the server must sample from the restored policy

    credit_cfg = CreditConfig(gamma=cfg.gamma, lam=cfg.gae_lambda, gigpo_omega=cfg.gigpo_omega)
    shaping = parse_shaping(cfg.reward_shaping)
    if collect is None:  # rollouts in this process (the default); Ray workers pass their own
        async def collect(task_ids: Sequence[str], group_size: int, seed: int, out: Path) -> list[EpisodeRecord]:
            return await collect_rollouts(env_factory, policy, task_ids, group_size, seed=seed,
                                          concurrency=cfg.concurrency, out=out)
    # A resumed (or fresh) run forgets whatever a killed run logged or rolled out after its checkpoint.
    for stale in (run_dir / "rollouts").glob("step-*.jsonl"):
        if int(stale.stem.split("-")[1]) > start_step:
            stale.unlink()
    steps_without_update = 0
    with MetricsLogger(run_dir, resume_step=start_step, tensorboard=cfg.tensorboard) as metrics:
        for step in range(start_step + 1, cfg.steps + 1):
            t0 = time.perf_counter()
            picked = sample_step_tasks(tasks, cfg.tasks_per_step, step, cfg.seed, curriculum)
            records = await collect([t.id for t in picked], cfg.group_size, cfg.seed * 1_000_003 + step,
                                    run_dir / "rollouts" / f"step-{step:08d}.jsonl")
            rollout_s = time.perf_counter() - t0
            episodes_seen += len(records)
            scored = [r for r in records if r.scored]
            if curriculum is not None:
                family = {t.id: t.family for t in picked}
                curriculum.update((family[r.task_id], float(bool(r.success))) for r in scored)

            # 2-3. credit on the groups that carry signal, packed into token rows
            # (training rewards = the env's turn rewards + the configured shaping terms)
            data = trainable(records)
            rewards = shaped_turn_rewards(data, shaping)
            shaped_return = float(np.mean([sum(r) for r in rewards])) if rewards else 0.0
            kept = filter_indices([r.group_id or r.task_id for r in data], [sum(r) for r in rewards], cfg.group_filter)
            data, rewards = [data[i] for i in kept], [rewards[i] for i in kept]
            row: dict[str, Any] = {}
            if data:
                values = _turn_values(value_head, model, data, pad_id) if value_head is not None else None
                credit = CreditBatch.from_records(data, values).with_rewards(rewards)
                if cfg.min_form:
                    credit = shape_rewards(credit, cfg.min_form)
                advantages = estimate(cfg.algo, credit, credit_cfg)
                batch = pack_episodes(data, advantages, pad_id)
                # 4-5. the PPO update
                row.update(policy_update(model, optimizer, batch, cfg, ref_model))
                if value_head is not None:
                    row["value_loss"] = _fit_values(value_head, value_opt, model, data, credit.turn_rewards, pad_id,
                                                    credit_cfg)
                row["tokens"] = batch.num_tokens
                row.update({f"adv_turn/{t}": a for t, a in enumerate(advantage_by_turn(advantages))})
                # 6. weight sync
                version = await sync_weights(save_weights_for_sync(model, tokenizer, run_dir, step))
                steps_without_update = 0
            else:  # nothing to learn from: say so every step, and stop a run that would only look trained
                steps_without_update += 1
                reason = no_update_reason(records)
                log.warning("RL step %d: no policy update (%d in a row): %s", step, steps_without_update, reason)
                if cfg.max_steps_without_update and steps_without_update >= cfg.max_steps_without_update:
                    raise TrainingStalledError(
                        f"RL stopped at step {step}: {steps_without_update} steps in a row without a policy update "
                        f"(no group had reward variance): {reason}. The model was not saved as trained; "
                        f"--max-steps-without-update 0 disables this check.")
            row["updated"] = bool(data)
            successes = sum(bool(r.success) for r in scored)
            lo, hi = wilson_interval(successes, len(scored)) if scored else (0.0, 0.0)
            row.update({"episodes": episodes_seen, "train/success": successes / len(scored) if scored else 0.0,
                        "train/success_lo": lo, "train/success_hi": hi,
                        "train/reward": float(np.mean([r.reward for r in scored])) if scored else 0.0,
                        "train/infra_failures": len(records) - len(scored), "kept_episodes": len(data),
                        "train/shaped_return": shaped_return,
                        "tool_error_rate": tool_error_rate(scored), "model_version": version,
                        "rollout_s": rollout_s, "step_s": time.perf_counter() - t0})
            if evaluate is not None and (step == cfg.steps or (cfg.eval_every and step % cfg.eval_every == 0)):
                row.update({f"dev/{k}": v for k, v in (await evaluate(step)).items()})
            metrics.log(step, row)
            if progress is not None:
                progress(step, row)
            if checkpoints.due(step, last_step=cfg.steps):
                extra = {"episodes": episodes_seen, "model_version": version}
                if value_head is not None:
                    extra.update(value_head=value_head.state_dict(), value_opt=value_opt.state_dict())
                checkpoints.save(step, model, optimizer, tokenizer=tokenizer, extra=extra,
                                 sampler_state=curriculum.state_dict() if curriculum is not None else None)
    final_dir = run_dir / "final"
    shutil.rmtree(final_dir, ignore_errors=True)
    save_model(model, final_dir, tokenizer)  # plain full weights (LoRA merged into a copy)
    (final_dir / "agentgym_training.json").write_text(json.dumps(
        {"algo": cfg.algo, "steps": cfg.steps, "episodes": episodes_seen, "env_id": cfg.env_id,
         "base_model": cfg.model, "model_version": version}, indent=1))
    rolled_out = (r for f in sorted((run_dir / "rollouts").glob("step-*.jsonl")) for r in iter_episodes(f))
    write_model_provenance(final_dir, entries_from_records(rolled_out, trainer=f"rl:{cfg.algo}"), base_model=cfg.model)
    return RLResult(run_dir, final_dir, cfg.steps, episodes_seen, version)


# --- the turn-level critic of turn_gae / bilevel_gae -------------------------------------------------

def _value_head(model: Any, cfg: RLConfig) -> tuple[Any, Any]:
    if cfg.algo not in VALUE_ALGOS:
        return None, None
    import torch

    from agentgym.trainers.value_head import TurnValueHead

    head = TurnValueHead(model.config.hidden_size).to(cfg.device)
    return head, torch.optim.AdamW(head.parameters(), lr=max(cfg.lr * 10, 1e-4))


def _turn_values(head: Any, model: Any, records: Sequence[EpisodeRecord], pad_id: int) -> list[list[float]]:
    """V(s_t) for every turn, read from the frozen trunk's hidden state at the turn's last prompt token."""
    import torch

    from agentgym.trainers.value_head import last_hidden_states, predict_turn_values

    batch = pack_episodes(records, [[0.0] * len(r.turns) for r in records], pad_id)
    with torch.no_grad():
        _, table = predict_turn_values(head, last_hidden_states(model, batch), batch, [len(r.turns) for r in records])
    return table


def _fit_values(head: Any, opt: Any, model: Any, records: Sequence[EpisodeRecord],
                turn_rewards: Sequence[Sequence[float]], pad_id: int, credit_cfg: CreditConfig,
                epochs: int = 4) -> float:
    """Regress V(s_t) on the discounted turn returns G_t of this batch (Monte-Carlo targets)."""
    import torch

    from agentgym.trainers.advantages import turn_returns
    from agentgym.trainers.value_head import last_hidden_states, predict_turn_values, turn_state_positions, value_loss

    batch = pack_episodes(records, [[0.0] * len(r.turns) for r in records], pad_id)
    hidden = last_hidden_states(model, batch)
    returns = [turn_returns(list(r), credit_cfg.gamma) for r in turn_rewards]
    targets = torch.tensor([returns[ep][t] for _, _, ep, t in turn_state_positions(batch)], dtype=torch.float32)
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        values, _ = predict_turn_values(head, hidden, batch, [len(r.turns) for r in records])
        loss = value_loss(values, targets.to(values.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())
