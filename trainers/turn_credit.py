"""Turn-level credit: a different advantage for each turn (GiGPO, turn-level GAE, bi-level GAE, MT-GRPO, min-form).

Turn-level functions work on lists of per-turn scalars (one list per episode); the two token-level GAE
functions (``token_gae``, ``bilevel_gae_tokens``) work on packed ``[B, L]`` tensors and exist to show, and
test, that skipping environment tokens gives the same numbers as the compressed action-only sequence.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from agentgym.trainers.advantages import group_indices, turn_returns

if TYPE_CHECKING:
    import torch

GIGPO_MODES = ("mean_norm", "mean_std_norm")
GIGPO_EPISODE_STATS = ("trajectory", "step")


# --- GiGPO ------------------------------------------------------------------------------------------

def _normalise(values: np.ndarray, mode: str, eps: float) -> np.ndarray:
    """``(x − mean) / F_norm`` with ``F_norm`` = 1 (mean_norm) or the unbiased std + ε (mean_std_norm)."""
    centred = values - values.mean()
    if mode == "mean_std_norm":
        return centred / ((values.std(ddof=1) if values.size > 1 else 1.0) + eps)
    return centred


def gigpo_advantages(turn_rewards: Sequence[Sequence[float]], group_ids: Sequence[Hashable],
                     anchor_keys: Sequence[Sequence[Hashable]], *, gamma: float = 0.95, omega: float = 1.0,
                     mode: str = "mean_norm", episode_stats: str = "trajectory",
                     eps: float = 1e-6) -> list[list[float]]:
    """GiGPO (Eq. 3, 5-8): ``A_t = A^E(τ) + ω A^S(s_t, a_t)``.

    ``A^E = (R − mean_G R) / F``, with R = Σ_t r_t; ``episode_stats="trajectory"`` takes mean/std over the
    group's episodes, ``"step"`` (verl-agent's ``compute_mean_std_cross_steps``) over its step-samples, so an
    episode weighs as many times as it has turns. ``A^S = (R_t − mean_{G^S} R_t) / F`` over the step group of
    identical anchor keys within the task group, with ``R_t = Σ_{k≥t} γ^{k−t} r_k``; a singleton step group
    gives ``A^S = 0``.
    """
    if mode not in GIGPO_MODES:
        raise ValueError(f"unknown GiGPO mode {mode!r}; expected one of {GIGPO_MODES}")
    if episode_stats not in GIGPO_EPISODE_STATS:
        raise ValueError(f"unknown episode_stats {episode_stats!r}; expected one of {GIGPO_EPISODE_STATS}")
    n = len(turn_rewards)
    totals = np.array([float(sum(r)) for r in turn_rewards])
    episode_adv = np.zeros(n)
    for idx in group_indices(group_ids).values():
        if episode_stats == "step":
            weights = np.array([max(len(turn_rewards[i]), 1) for i in idx], dtype=np.float64)
            samples = np.repeat(totals[idx], weights.astype(int))
            mean = samples.mean() if samples.size > 1 else 0.0  # singleton: mean 0, std 1
            scale = 1.0
            if mode == "mean_std_norm":
                scale = (samples.std(ddof=1) if samples.size > 1 else 1.0) + eps
            episode_adv[idx] = (totals[idx] - mean) / scale
        elif len(idx) == 1:
            episode_adv[idx] = totals[idx]  # verl's singleton rule: mean 0, std 1
        else:
            episode_adv[idx] = _normalise(totals[idx], mode, eps)

    step_returns = [turn_returns(r, gamma) for r in turn_rewards]
    step_groups: dict[tuple[Hashable, Hashable], list[tuple[int, int]]] = defaultdict(list)
    for i, keys in enumerate(anchor_keys):
        if len(keys) != len(turn_rewards[i]):
            raise ValueError(f"episode {i}: {len(keys)} anchor keys for {len(turn_rewards[i])} turns")
        for t, key in enumerate(keys):
            step_groups[(group_ids[i], key)].append((i, t))
    step_adv = [[0.0] * len(r) for r in turn_rewards]
    for members in step_groups.values():
        if len(members) == 1:
            continue  # singleton step group: A^S = 0
        values = np.array([step_returns[i][t] for i, t in members])
        for (i, t), a in zip(members, _normalise(values, mode, eps)):
            step_adv[i][t] = float(a)
    return [[float(episode_adv[i]) + omega * step_adv[i][t] for t in range(len(turn_rewards[i]))]
            for i in range(n)]


# --- turn-level GAE ---------------------------------------------------------------------------------

def gae(rewards: Sequence[float], values: Sequence[float], gamma: float, lam: float,
        last_value: float = 0.0) -> list[float]:
    """GAE over one sequence: ``δ_t = r_t + γ V_{t+1} − V_t``, ``A_t = δ_t + γλ A_{t+1}``; ``V_{T} = last_value``."""
    if len(rewards) != len(values):
        raise ValueError("rewards and values differ in length")
    adv = [0.0] * len(rewards)
    next_value, running = float(last_value), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        delta = float(rewards[t]) + gamma * next_value - float(values[t])
        running = delta + gamma * lam * running
        adv[t] = running
        next_value = float(values[t])
    return adv


def turn_gae_advantages(turn_rewards: Sequence[Sequence[float]], turn_values: Sequence[Sequence[float]], *,
                        gamma: float = 1.0, lam: float = 1.0,
                        last_values: Sequence[float] | None = None) -> list[list[float]]:
    """Turn-level GAE with a critic's ``V(s_t)`` at each turn (terminal episodes bootstrap 0)."""
    last = last_values if last_values is not None else [0.0] * len(turn_rewards)
    return [gae(r, v, gamma, lam, lv) for r, v, lv in zip(turn_rewards, turn_values, last, strict=True)]


def token_gae(token_rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
              lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's GAE over packed ``[B, L]`` rows: on mask-0 tokens (env, prompt, pad) the recursion carries the next
    value and the running advantage through unchanged, so the TD chain jumps from one turn's last action token to
    the next turn's first. Returns (advantages, returns). Masked positions hold the carried-over advantage of the
    next action token (as in verl): multiply by the mask before using them.
    """
    import torch

    mask = mask.to(values.dtype)
    next_value = torch.zeros_like(values[:, 0])
    running = torch.zeros_like(values[:, 0])
    out = torch.zeros_like(values)
    for t in range(values.shape[1] - 1, -1, -1):
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]
        candidate = delta + gamma * lam * running
        m = mask[:, t]
        next_value = values[:, t] * m + (1 - m) * next_value
        running = candidate * m + (1 - m) * running
        out[:, t] = running
    return out, out + values


def bilevel_gae_tokens(turn_rewards: Sequence[float], turn_spans: Sequence[tuple[int, int]],
                       token_values: Sequence[float], *, high_gamma: float = 0.95, high_lam: float = 1.0,
                       gamma: float = 1.0, lam: float = 1.0) -> list[float]:
    """RAGEN's bi-level GAE on one packed row: a turn-level GAE over turn-end tokens
    (``δ_k = r_k + γ_H V(eos_{k+1}) − V(eos_k)``) gives each turn's return ``G_k = A_k + V(eos_k)``, which is the
    reward at that turn's last token of a token-level GAE (γ, λ; no bootstrap past the turn). Returns a
    per-position advantage list (0 outside the spans)."""
    ends = [e - 1 for _, e in turn_spans]
    end_values = [float(token_values[j]) for j in ends]
    high_adv = gae(turn_rewards, end_values, high_gamma, high_lam)
    out = [0.0] * len(token_values)
    for (start, end), a_k, v_k in zip(turn_spans, high_adv, end_values, strict=True):
        positions = list(range(start, end))
        rewards = [0.0] * (len(positions) - 1) + [a_k + v_k]
        low = gae(rewards, [float(token_values[j]) for j in positions], gamma, lam, 0.0)
        for j, a in zip(positions, low):
            out[j] = a
    return out


def bilevel_gae_advantages(turn_rewards: Sequence[Sequence[float]], turn_values: Sequence[Sequence[float]], *,
                           high_gamma: float = 0.95, high_lam: float = 1.0) -> list[list[float]]:
    """Bi-level GAE at turn granularity (each turn one "token" valued ``V(s_t)``): the high-level advantage."""
    out = []
    for r, v in zip(turn_rewards, turn_values, strict=True):
        spans = [(t, t + 1) for t in range(len(r))]
        out.append(bilevel_gae_tokens(r, spans, v, high_gamma=high_gamma, high_lam=high_lam))
    return out


# --- MT-GRPO ----------------------------------------------------------------------------------------

def _group_norm(values: Sequence[float], group_ids: Sequence[Hashable], eps: float) -> np.ndarray:
    """``(x − mean_G) / (std_G + ε)`` (unbiased std; singleton: mean 0, std 1)."""
    x = np.asarray(values, dtype=np.float64)
    out = np.zeros_like(x)
    for idx in group_indices(group_ids).values():
        out[idx] = x[idx] if len(idx) == 1 else (x[idx] - x[idx].mean()) / (x[idx].std(ddof=1) + eps)
    return out


def mt_grpo_advantages(turn_reward: Sequence[float], outcome_reward: Sequence[float], split_turns: Sequence[int | None],
                       num_turns: Sequence[int], group_ids: Sequence[Hashable], *, lam: float = 1.0,
                       eps: float = 1e-4) -> list[list[float]]:
    """MT-GRPO: turns before ``split_turns[i]`` (the first env message with a tool result) get ``Â^O + λ Â^T``,
    the rest ``Â^O``; ``Â`` = group-normalised turn/outcome rewards. An episode without a tool result
    (split None) falls back to the GRPO advantage of the merged reward ``r^T + r^O``."""
    adv_t = _group_norm(turn_reward, group_ids, eps)
    adv_o = _group_norm(outcome_reward, group_ids, eps)
    merged = _group_norm([a + b for a, b in zip(turn_reward, outcome_reward)], group_ids, eps)
    out = []
    for i, n in enumerate(num_turns):
        split = split_turns[i]
        if split is None:
            out.append([float(merged[i])] * n)
        else:
            out.append([float(adv_o[i] + lam * adv_t[i]) if t < split else float(adv_o[i]) for t in range(n)])
    return out


# --- PURE min-form ----------------------------------------------------------------------------------

def min_form_softmax_rewards(step_rewards: Sequence[float], temperature: float = 0.1) -> list[float]:
    """PURE's transformed rewards ``r'_i = softmax_i(−r_i / T) · r_i`` over all steps of the episode."""
    r = np.asarray(step_rewards, dtype=np.float64)
    if r.size == 0:
        return []
    z = -r / temperature
    w = np.exp(z - z.max())
    w /= w.sum()
    return (w * r).tolist()


def min_form_softmax(step_rewards: Sequence[float], temperature: float = 0.1) -> list[float]:
    """PURE's returns ``Σ_{i≥t} r'_i`` (γ = 1). The total equals ``min_i r_i`` as T → 0; after the arg-min step
    the returns tend to 0, not to the suffix minimum (for [0.9, −0.5, 0.9], T=0.1: [−0.5, −0.5, 7.5e−7])."""
    return turn_returns(min_form_softmax_rewards(step_rewards, temperature), 1.0)


def min_form_exact(step_rewards: Sequence[float]) -> list[float]:
    """The paper's value ``V(s_t) = min_{t'≥t} r_{t'}`` (for [0.9, −0.5, 0.9]: [−0.5, −0.5, 0.9])."""
    out, running = [0.0] * len(step_rewards), math.inf
    for t in range(len(step_rewards) - 1, -1, -1):
        running = min(running, float(step_rewards[t]))
        out[t] = running
    return out


def min_form_exact_rewards(step_rewards: Sequence[float]) -> list[float]:
    """Rewards whose γ=1 returns are ``min_form_exact``: ``r'_t = V_t − V_{t+1}`` (``V_T = 0``)."""
    v = min_form_exact(step_rewards) + [0.0]
    return [v[t] - v[t + 1] for t in range(len(step_rewards))]


__all__ = ["GIGPO_MODES", "GIGPO_EPISODE_STATS", "gigpo_advantages", "gae", "turn_gae_advantages", "token_gae",
           "bilevel_gae_tokens", "bilevel_gae_advantages", "mt_grpo_advantages", "min_form_softmax_rewards",
           "min_form_softmax", "min_form_exact", "min_form_exact_rewards"]
