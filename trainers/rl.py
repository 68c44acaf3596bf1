"""On-policy multi-turn RL, read like CleanRL's ppo.py: ``state = await setup(cfg, ...)``, then ``await step(state)``.

Hyper-parameters live in one dataclass, ``RLConfig`` (trainers/config.py), the estimator's in ``RLConfig.credit``.
One ``step`` is, top to bottom:

1. rollouts: ``group_size`` episodes of each of ``tasks_per_step`` tasks (curriculum over families) from a
   ``Collector`` (this process or Ray workers); records keep the sampled tokens and the server's log-probs;
2. training rewards: ``r'_t = r_t + Σ_k w_k · term_k(t)`` (trainers/shaping.py; the env's reward is unchanged),
   then groups whose rewards all tie are dropped (no gradient);
3. credit: ``A[episode][turn] = estimator(CreditBatch, cfg.credit)`` (GRPO, RLOO, GiGPO, turn-level GAE, ...),
   broadcast onto the model's own tokens (environment tokens get no gradient);
4. loss: ``π_old`` = the trainer's log-probs before the update; ``w = min(π_old / π_rollout, C)`` corrects for
   server/trainer mismatch; ``ρ = exp(log π_θ − log π_old)``, ``ℓ = max(−A ρ, −A clip(ρ, 1−ε_low, 1+ε_high))``
   (dual clip for A < 0), times ``w``, aggregated by ``agg_loss``, plus ``β · KL(π_θ ‖ π_ref)`` when β > 0;
5. optimizer: AdamW step after gradient clipping;
6. weight sync: save the weights, ``version = await sync_weights(dir)``: the next rollouts use them;
7. checkpoint: model, optimizer, RNGs, curriculum and counters, so a killed run resumes exactly (each step's
   task draw depends only on (seed, step) and the restored curriculum).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.collect import Collector, LocalCollector
from agentgym.errors import AgentGymError
from agentgym.policy import Policy
from agentgym.provenance import entries_from_records, write_model_provenance
from agentgym.records import EpisodeRecord, iter_episodes
from agentgym.rollout import EnvFactory
from agentgym.stats import wilson_interval
from agentgym.trainers.checkpoint import CheckpointManager
from agentgym.trainers.config import RLConfig, configure_determinism, save_config
from agentgym.trainers.credit import CreditBatch, CreditConfig, apply_min_form, estimate, estimator_spec
from agentgym.trainers.curriculum import CurriculumSampler
from agentgym.trainers.group_filter import filter_indices
from agentgym.trainers.lora import LoraSettings, apply_lora, reference_model, save_model, trainable_parameters
from agentgym.trainers.losses import agg_loss, global_normalisers, kl_estimate, ppo_clip_loss, tis_weights
from agentgym.trainers.metrics import MetricsLogger
from agentgym.trainers.packing import PackedBatch, pack_episodes
from agentgym.trainers.shaping import parse_shaping, shaped_turn_rewards

WeightSync = Callable[[Path], Awaitable[int]]
"""Load the weights saved in a directory into the policy server; returns the server's new weights version."""
Evaluate = Callable[[int], Awaitable[dict[str, float]]]
"""A held-out check after step N (e.g. greedy dev-split success); its keys are logged under ``dev/``."""

log = logging.getLogger("agentgym.trainers.rl")


@dataclass(frozen=True)
class TrainTask:
    """What the loop needs of a training task: its id and family (the curriculum's unit)."""

    id: str
    family: str


@dataclass
class RLResult:
    """What a finished run produced: its directory, the final model, and its counters."""

    run_dir: Path
    final_model: Path
    steps: int
    episodes: int
    model_version: int


class TrainingStalledError(AgentGymError):
    """RL steps keep producing no policy update (no group with reward variance): the run would only look trained."""


@dataclass
class RLState:
    """Everything a step reads and advances: the model and optimizer, the data sources, and the counters."""

    cfg: RLConfig
    run_dir: Path
    model: Any
    tokenizer: Any
    pad_id: int
    optimizer: Any
    ref_model: Any                        # frozen π_ref of the KL term (None when kl_coef = 0)
    value_head: Any                       # V(s_t) of turn_gae / bilevel_gae (None for critic-free estimators)
    value_opt: Any
    tasks: Sequence[TrainTask]
    curriculum: CurriculumSampler | None
    collector: Collector
    sync_weights: WeightSync
    evaluate: Evaluate | None
    checkpoints: CheckpointManager
    metrics: MetricsLogger
    shaping: dict[str, float] = field(default_factory=dict)
    step: int = 0                         # the last finished step
    episodes: int = 0
    version: int = 0                      # the weights version the server samples from
    steps_without_update: int = 0
    deterministic_before: bool = False    # torch's flag before setup, put back by close()

    def close(self) -> None:
        """Close the metrics log and leave torch's determinism flag as setup found it."""
        import torch

        self.metrics.close()
        torch.use_deterministic_algorithms(self.deterministic_before)


# --- setup ------------------------------------------------------------------------------------------

async def setup(cfg: RLConfig, *, tasks: Sequence[TrainTask], collector: Collector, sync_weights: WeightSync,
                evaluate: Evaluate | None = None) -> RLState:
    """Load the policy (LoRA, reference, critic), the optimizer and the newest checkpoint of ``cfg.run_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg.validate()
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir)
    deterministic_before = configure_determinism(cfg)  # seeds python/numpy/torch; deterministic kernels if asked
    try:
        model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=getattr(torch, cfg.dtype)).to(cfg.device)
        if cfg.lora_rank > 0:  # frozen base + rank-r adapters (trainers/lora.py)
            model = apply_lora(model, LoraSettings.from_config(cfg))
        tokenizer = AutoTokenizer.from_pretrained(cfg.model)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        # LoRA: the reference is the base with adapters disabled (no copy); else a frozen deep copy
        ref_model = reference_model(model) if cfg.kl_coef > 0 else None
        optimizer = torch.optim.AdamW(trainable_parameters(model), lr=cfg.lr)
        curriculum = CurriculumSampler(sorted({t.family for t in tasks}), seed=cfg.seed) if cfg.curriculum else None
        value_head, value_opt = _value_head(model, cfg)
        checkpoints = CheckpointManager(run_dir, every=cfg.checkpoint_every, keep=cfg.keep_checkpoints)
        step, episodes, version = 0, 0, 0
        restored = checkpoints.restore(model, optimizer) if cfg.resume else None
        if restored is not None:
            step, extra = restored.step, restored.extra
            episodes, version = int(extra.get("episodes", 0)), int(extra.get("model_version", 0))
            if curriculum is not None and restored.sampler_state:
                curriculum.load_state_dict(restored.sampler_state)
            if value_head is not None and extra.get("value_head"):
                value_head.load_state_dict(extra["value_head"])
                value_opt.load_state_dict(extra["value_opt"])
            version = await sync_weights(restored.path / "model")  # the server must sample from the restored policy
        # a resumed (or fresh) run forgets whatever a killed run logged or rolled out after its checkpoint
        for stale in (run_dir / "rollouts").glob("step-*.jsonl"):
            if int(stale.stem.split("-")[1]) > step:
                stale.unlink()
        metrics = MetricsLogger(run_dir, resume_step=step, tensorboard=cfg.tensorboard)
        return RLState(cfg=cfg, run_dir=run_dir, model=model, tokenizer=tokenizer, pad_id=pad_id, optimizer=optimizer,
                       ref_model=ref_model, value_head=value_head, value_opt=value_opt, tasks=tasks,
                       curriculum=curriculum, collector=collector, sync_weights=sync_weights, evaluate=evaluate,
                       checkpoints=checkpoints, metrics=metrics, shaping=parse_shaping(cfg.reward_shaping), step=step,
                       episodes=episodes, version=version, deterministic_before=deterministic_before)
    except BaseException:  # a failed setup must not leave torch's deterministic mode switched on
        torch.use_deterministic_algorithms(deterministic_before)
        raise


# --- one step ---------------------------------------------------------------------------------------

async def step(state: RLState) -> dict[str, Any]:
    """One update: rollouts -> training rewards -> credit -> loss -> optimizer -> weight sync -> checkpoint."""
    cfg, n = state.cfg, state.step + 1
    t0 = time.perf_counter()

    # 1. rollouts: group_size episodes of each sampled task, from the weights the server holds now
    picked = sample_step_tasks(state.tasks, cfg.tasks_per_step, n, cfg.seed, state.curriculum)
    records = await state.collector.collect([t.id for t in picked], cfg.group_size, seed=cfg.seed * 1_000_003 + n,
                                            out=state.run_dir / "rollouts" / f"step-{n:08d}.jsonl")
    rollout_s = time.perf_counter() - t0
    state.episodes += len(records)
    scored = [r for r in records if r.scored]
    if state.curriculum is not None:
        family = {t.id: t.family for t in picked}
        state.curriculum.update((family[r.task_id], float(bool(r.success))) for r in scored)

    # 2. training rewards r'_t = r_t + shaping terms; groups whose rewards all tie carry no gradient
    data = trainable(records)
    rewards = shaped_turn_rewards(data, state.shaping)
    shaped_return = float(np.mean([sum(r) for r in rewards])) if rewards else 0.0
    kept = filter_indices([r.group_id or r.task_id for r in data], [sum(r) for r in rewards], cfg.group_filter)
    data, rewards = [data[i] for i in kept], [rewards[i] for i in kept]

    row: dict[str, Any] = {}
    if data:
        # 3. credit: A[episode][turn] = estimator(batch, cfg.credit), then onto the model's own tokens
        critic = state.value_head
        values = _turn_values(critic, state.model, data, state.pad_id) if critic is not None else None
        batch = CreditBatch.from_records(data, values).with_rewards(rewards)
        if cfg.min_form:  # PURE: r' such that the γ=1 returns are min-form values
            batch = apply_min_form(batch, cfg.min_form)
        advantages = estimate(cfg.algo, batch, cfg.credit)
        packed = pack_episodes(data, advantages, state.pad_id)
        # 4-5. PPO-clip loss and the optimizer step (policy_update below writes out the equations)
        row.update(policy_update(state.model, state.optimizer, packed, cfg, state.ref_model))
        if state.value_head is not None:
            row["value_loss"] = _fit_values(state.value_head, state.value_opt, state.model, data, batch.turn_rewards,
                                            state.pad_id, cfg.algo, cfg.credit)
        row["tokens"] = packed.num_tokens
        row.update({f"adv_turn/{t}": a for t, a in enumerate(advantage_by_turn(advantages))})
        # 6. weight sync: the server samples the next step from the updated weights
        state.version = await state.sync_weights(save_weights_for_sync(state.model, state.tokenizer, state.run_dir, n))
        state.steps_without_update = 0
    else:  # nothing to learn from: say so every step, and stop a run that would only look trained
        _no_update(state, records, n)

    row.update(step_metrics(records, state, len(data), shaped_return))
    row.update({"rollout_s": rollout_s, "step_s": time.perf_counter() - t0})
    if state.evaluate is not None and (n == cfg.steps or (cfg.eval_every and n % cfg.eval_every == 0)):
        row.update({f"dev/{k}": v for k, v in (await state.evaluate(n)).items()})
    state.step = n
    state.metrics.log(n, row)

    # 7. checkpoint (after the metrics row, so a resumed run never misses a logged step)
    if state.checkpoints.due(n, last_step=cfg.steps):
        save_checkpoint(state)
    return row


# --- the loop ---------------------------------------------------------------------------------------

async def train_rl(cfg: RLConfig, *, tasks: Sequence[TrainTask], sync_weights: WeightSync,
                   collector: Collector | None = None, env_factory: EnvFactory | None = None,
                   policy: Policy | None = None, evaluate: Evaluate | None = None,
                   progress: Callable[[int, dict[str, Any]], None] | None = None) -> RLResult:
    """Run ``cfg.steps`` updates, resuming from the newest checkpoint of ``cfg.run_dir`` when there is one.

    Rollouts come from ``collector``, or by default from ``policy`` on ``env_factory`` envs in this process.
    """
    if collector is None:
        if env_factory is None or policy is None:
            raise ValueError("train_rl needs a collector, or an env_factory and a policy to roll out locally")
        collector = LocalCollector(env_factory, policy, cfg.concurrency)
    state = await setup(cfg, tasks=tasks, collector=collector, sync_weights=sync_weights, evaluate=evaluate)
    try:
        while state.step < cfg.steps:
            row = await step(state)
            if progress is not None:
                progress(state.step, row)
    finally:
        state.close()
    return finish(state)


def finish(state: RLState) -> RLResult:
    """Write the final model (plain weights, LoRA merged), its training summary and provenance."""
    cfg, run_dir = state.cfg, state.run_dir
    final_dir = run_dir / "final"
    shutil.rmtree(final_dir, ignore_errors=True)
    save_model(state.model, final_dir, state.tokenizer)
    (final_dir / "agentgym_training.json").write_text(json.dumps(
        {"algo": cfg.algo, "steps": cfg.steps, "episodes": state.episodes, "env_id": cfg.env_id,
         "base_model": cfg.model, "model_version": state.version}, indent=1))
    rolled_out = (r for f in sorted((run_dir / "rollouts").glob("step-*.jsonl")) for r in iter_episodes(f))
    write_model_provenance(final_dir, entries_from_records(rolled_out, trainer=f"rl:{cfg.algo}"), base_model=cfg.model)
    return RLResult(run_dir, final_dir, cfg.steps, state.episodes, state.version)


def save_checkpoint(state: RLState) -> Path:
    """Checkpoint ``state.step``: model, optimizer, RNGs, curriculum, critic and counters."""
    extra: dict[str, Any] = {"episodes": state.episodes, "model_version": state.version}
    if state.value_head is not None:
        extra.update(value_head=state.value_head.state_dict(), value_opt=state.value_opt.state_dict())
    return state.checkpoints.save(state.step, state.model, state.optimizer, tokenizer=state.tokenizer, extra=extra,
                                  sampler_state=state.curriculum.state_dict() if state.curriculum else None)


# --- what a step reports ----------------------------------------------------------------------------------

def trainable(records: Sequence[EpisodeRecord]) -> list[EpisodeRecord]:
    """Scored episodes whose every turn carries the sampled tokens and log-probs (infra failures never train)."""
    return [r for r in records if r.scored and r.turns
            and all(t.token_ids is not None and t.logprobs is not None and t.prompt_token_ids is not None
                    for t in r.turns)]


def step_metrics(records: Sequence[EpisodeRecord], state: RLState, kept: int, shaped_return: float) -> dict[str, Any]:
    """The rollout diagnostics of a step: success (with its 95% interval), reward, failures, tool errors."""
    scored = [r for r in records if r.scored]
    successes = sum(bool(r.success) for r in scored)
    lo, hi = wilson_interval(successes, len(scored)) if scored else (0.0, 0.0)
    return {"updated": kept > 0, "episodes": state.episodes,
            "train/success": successes / len(scored) if scored else 0.0,
            "train/success_lo": lo, "train/success_hi": hi,
            "train/reward": float(np.mean([r.reward for r in scored])) if scored else 0.0,
            "train/infra_failures": len(records) - len(scored), "kept_episodes": kept,
            "train/shaped_return": shaped_return, "tool_error_rate": tool_error_rate(scored),
            "model_version": state.version}


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


def _no_update(state: RLState, records: Sequence[EpisodeRecord], n: int) -> None:
    """Warn that step ``n`` had nothing to learn from; raise once too many steps in a row had nothing."""
    state.steps_without_update += 1
    reason = no_update_reason(records)
    log.warning("RL step %d: no policy update (%d in a row): %s", n, state.steps_without_update, reason)
    limit = state.cfg.max_steps_without_update
    if limit and state.steps_without_update >= limit:
        raise TrainingStalledError(
            f"RL stopped at step {n}: {state.steps_without_update} steps in a row without a policy update "
            f"(no group had reward variance): {reason}. The model was not saved as trained; "
            f"--max-steps-without-update 0 disables this check.")


# --- the update -----------------------------------------------------------------------------------

def policy_update(model: Any, optimizer: Any, batch: PackedBatch, cfg: RLConfig,
                  ref_model: Any = None) -> dict[str, float]:
    """PPO epochs over one rollout batch; gradients accumulate over micro-batches with global normalisers."""
    import torch

    from agentgym.trainers.logprobs import token_logprobs

    device = next(model.parameters()).device
    ids, att, mask = batch.input_ids.to(device), batch.attention_mask.to(device), batch.loss_mask.to(device)
    adv, rollout_lp = batch.advantages.to(device), batch.rollout_logprobs.to(device)
    with torch.no_grad():  # log π_old (this trainer, before the update) and log π_ref
        old_lp = token_logprobs(model, ids, att, chunk_size=cfg.micro_batch_size)
        ref_lp = token_logprobs(ref_model, ids, att, chunk_size=cfg.micro_batch_size) if ref_model else None
    # w = min(π_old / π_rollout, C): the server sampled with slightly different numerics than this trainer
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
            # ρ = exp(log π_θ − log π_old); ℓ = max(−A ρ, −A clip(ρ, 1−ε_low, 1+ε_high)), dual-clipped for A < 0
            pg = ppo_clip_loss(logp, old_lp[sl], adv[sl], mask[sl], cfg.clip_low, cfg.clip_high, cfg.dual_clip)
            loss = agg_loss(pg.per_token * weights[sl], mask[sl], cfg.loss_agg, **norms)
            if ref_lp is not None:  # + β · KL(π_θ ‖ π_ref)
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


# --- the turn-level critic of turn_gae / bilevel_gae -------------------------------------------------

def _value_head(model: Any, cfg: RLConfig) -> tuple[Any, Any]:
    """A turn-value head and its optimizer when the estimator reads V(s_t), else (None, None)."""
    if not estimator_spec(cfg.algo).needs_values:
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
                turn_rewards: Sequence[Sequence[float]], pad_id: int, algo: str, credit: CreditConfig,
                epochs: int = 4) -> float:
    """Regress V(s_t) on the discounted turn returns G_t of this batch (Monte-Carlo targets).

    The discount is the one the estimator's GAE uses (``gamma`` for turn_gae, ``high_level_gamma`` for bilevel_gae).
    """
    import torch

    from agentgym.trainers.advantages import turn_returns
    from agentgym.trainers.value_head import last_hidden_states, predict_turn_values, turn_state_positions, value_loss

    batch = pack_episodes(records, [[0.0] * len(r.turns) for r in records], pad_id)
    hidden = last_hidden_states(model, batch)
    gamma = float(getattr(credit, estimator_spec(algo).value_gamma or "gamma"))
    returns = [turn_returns(list(r), gamma) for r in turn_rewards]
    targets = torch.tensor([returns[ep][t] for _, _, ep, t in turn_state_positions(batch)], dtype=torch.float32)
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        values, _ = predict_turn_values(head, hidden, batch, [len(r.turns) for r in records])
        loss = value_loss(values, targets.to(values.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())
