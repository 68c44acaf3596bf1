"""Policy-gradient losses shared by every estimator: PPO clip (clip-higher, dual clip), loss aggregation, KL, TIS.

Pure torch on ``[B, L]`` tensors where position j describes token j (log-prob of token j given the tokens before
it) and ``mask`` is 1 exactly at model-generated tokens. Formulas follow verl's ``core_algos.py``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
KL_KINDS = ("k1", "k2", "k3", "k3+")


class ClipLoss(NamedTuple):
    """PPO-clip per-token loss (0 where mask is 0) and the share of model tokens where clipping was active."""

    per_token: torch.Tensor
    clip_fraction: torch.Tensor


def ppo_clip_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor,
                  eps_low: float = 0.2, eps_high: float = 0.28, dual_clip: float | None = 3.0,
                  log_ratio_clamp: float = 20.0) -> ClipLoss:
    """``ρ = exp(clamp(log π_θ − log π_old, ±20))``; ``ℓ = max(−A ρ, −A clip(ρ, 1−ε_low, 1+ε_high))``;
    for A < 0 with dual clip c: ``ℓ = min(ℓ, −A c)`` (bounds the loss of a huge ratio on a bad action)."""
    mask = mask.to(logp.dtype)
    log_ratio = torch.clamp(logp - old_logp, -log_ratio_clamp, log_ratio_clamp)
    ratio = torch.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    loss = torch.maximum(unclipped, clipped)
    active = (clipped > unclipped).to(logp.dtype)
    if dual_clip is not None:
        if dual_clip <= 1.0:
            raise ValueError("dual_clip must be > 1")
        loss = torch.where(adv < 0, torch.minimum(loss, -adv * dual_clip), loss)
    n = mask.sum().clamp(min=1.0)
    return ClipLoss(loss * mask, (active * mask).sum().detach() / n)


def global_normalisers(mask: torch.Tensor) -> dict[str, float]:
    """The whole batch's token and sequence counts and length: pass them to every micro-batch's ``agg_loss``."""
    return {"global_tokens": float(mask.sum()), "global_seqs": float((mask.sum(-1) > 0).sum()),
            "norm_constant": float(mask.shape[-1])}


def agg_loss(per_token: torch.Tensor, mask: torch.Tensor, mode: str = "token-mean", *,
             global_tokens: float | None = None, global_seqs: float | None = None,
             norm_constant: float | None = None, dp_size: int = 1) -> torch.Tensor:
    """Aggregate a per-token loss (verl's four modes).

    - ``token-mean``: ``Σ m ℓ / N_tokens``;
    - ``seq-mean-token-mean``: mean over sequences of each sequence's token mean;
    - ``seq-mean-token-sum``: mean over sequences of token sums;
    - ``seq-mean-token-sum-norm`` (Dr.GRPO): ``Σ m ℓ / C``, C constant (default: the row length).
    With the ``global_*`` counts of the whole batch (``global_normalisers``) the sum of micro-batch losses equals
    the full-batch loss, so gradients do not depend on micro-batching; ``dp_size`` undoes DDP's gradient mean.
    Sequences without model tokens count in no mean.
    """
    mask = mask.to(per_token.dtype)
    masked = per_token * mask
    if mode == "token-mean":
        denom = global_tokens if global_tokens is not None else mask.sum()
        return masked.sum() / max(float(denom), 1.0) * dp_size
    if mode == "seq-mean-token-sum-norm":
        c = norm_constant if norm_constant is not None else mask.shape[-1]
        return masked.sum() / float(c) * dp_size
    tokens = mask.sum(-1)
    has = tokens > 0
    seq_sums = masked.sum(-1)
    if mode == "seq-mean-token-mean":
        seq_values = torch.where(has, seq_sums / tokens.clamp(min=1.0), torch.zeros_like(seq_sums))
    elif mode == "seq-mean-token-sum":
        seq_values = seq_sums
    else:
        raise ValueError(f"unknown loss aggregation {mode!r}; expected one of {AGG_MODES}")
    denom = global_seqs if global_seqs is not None else has.sum()
    return seq_values.sum() / max(float(denom), 1.0) * dp_size


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k3", *, log_ratio_clamp: float = 20.0,
                value_clamp: float = 10.0) -> torch.Tensor:
    """Per-token estimate of KL(π ‖ π_ref) at tokens sampled from π, with ``log r = log π_ref − log π``:
    ``k1 = −log r`` (unbiased, can be < 0), ``k2 = ½ (log r)²``, ``k3 = e^{log r} − log r − 1`` (≥ 0, unbiased;
    ``log r`` clamped to ±20, k3 to ±10); ``k3+`` has k3's value and k2's (straight-through) gradient."""
    if kind not in KL_KINDS:
        raise ValueError(f"unknown KL estimator {kind!r}; expected one of {KL_KINDS}")
    log_r = ref_logp - logp
    if kind == "k1":
        return -log_r
    k2 = 0.5 * log_r.pow(2)
    if kind == "k2":
        return k2
    clamped = torch.clamp(log_r, -log_ratio_clamp, log_ratio_clamp)
    k3 = torch.clamp(torch.exp(clamped) - clamped - 1.0, -value_clamp, value_clamp)
    if kind == "k3":
        return k3
    return k3.detach() + k2 - k2.detach()


def tis_weights(trainer_logp: torch.Tensor, rollout_logp: torch.Tensor, mask: torch.Tensor,
                cap: float = 2.0) -> torch.Tensor:
    """Truncated importance weights ``min(exp(lp_trainer − lp_rollout), C)`` at model tokens, exactly 1 elsewhere
    (env tokens have no rollout log-prob); no gradient flows through them."""
    with torch.no_grad():
        w = torch.clamp(torch.exp(torch.clamp(trainer_logp - rollout_logp, max=math.log(cap))), max=cap)
        return torch.where(mask.bool(), w, torch.ones_like(w))


__all__ = ["AGG_MODES", "KL_KINDS", "ClipLoss", "ppo_clip_loss", "global_normalisers", "agg_loss", "kl_estimate",
           "tis_weights"]
