"""Trajectory-level credit: one advantage per episode (GRPO, Dr.GRPO, RLOO, REINFORCE++-baseline) and turn returns.

Pure numpy functions over plain lists; each equation is written as in verl's ``core_algos.py``.

Singleton-group rule (verl's, pinned by tests): a group with one episode has mean := 0 and std := 1, so its
advantage is the raw return ``A = R`` (for GRPO, Dr.GRPO, RLOO and the REINFORCE++ baseline alike), not 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np

EPISODE_MODES = ("std", "mean", "rloo", "batch_whiten")


def turn_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    """Discounted reward-to-go ``G_t = r_t + γ G_{t+1}`` (GiGPO Eq. 5, ReBN)."""
    out = [0.0] * len(rewards)
    g = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = float(rewards[t]) + gamma * g
        out[t] = g
    return out


def group_indices(group_ids: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    """Positions of each group id, in first-seen order."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(group_ids):
        groups[g].append(i)
    return groups


def weighted_whiten(values: Sequence[float], weights: Sequence[float] | None = None, eps: float = 1e-8) -> list[float]:
    """``(x − mean) / sqrt(var + eps)`` with weighted mean and unbiased weighted variance (verl's ``masked_whiten``).

    ``weights`` = how many tokens carry each value (verl whitens over tokens), 1 each when None.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return []
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    n = w.sum()
    mean = (w * x).sum() / n
    var = (w * (x - mean) ** 2).sum() / n
    if n > 1:
        var = var * n / (n - 1)  # Bessel's correction, as masked_var(unbiased=True)
    return ((x - mean) / np.sqrt(var + eps)).tolist()


def episode_advantage(returns: Sequence[float], group_ids: Sequence[Hashable], mode: str = "std", *,
                      eps: float = 1e-6, weights: Sequence[float] | None = None) -> list[float]:
    """One advantage per episode.

    - ``std`` (GRPO): ``(R − mean_G) / (std_G + ε)`` with the unbiased std;
    - ``mean`` (Dr.GRPO): ``R − mean_G``;
    - ``rloo``: ``R − mean_{j≠i} R_j = k/(k−1) (R − mean_G)``;
    - ``batch_whiten`` (REINFORCE++-baseline): ``R − mean_G`` whitened over the batch (``weights`` = tokens).
    Singleton groups: mean 0, std 1, so ``A = R`` before any batch whitening.
    """
    if mode not in EPISODE_MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {EPISODE_MODES}")
    if len(returns) != len(group_ids):
        raise ValueError("returns and group_ids differ in length")
    r = np.asarray(returns, dtype=np.float64)
    adv = np.zeros_like(r)
    for idx in group_indices(group_ids).values():
        k = len(idx)
        scores = r[idx]
        if k == 1:
            adv[idx] = scores  # mean := 0, std := 1
            continue
        mean = scores.mean()
        if mode == "std":
            adv[idx] = (scores - mean) / (scores.std(ddof=1) + eps)
        elif mode == "rloo":
            adv[idx] = k / (k - 1) * (scores - mean)
        else:
            adv[idx] = scores - mean
    if mode == "batch_whiten":
        return weighted_whiten(adv.tolist(), weights)
    return adv.tolist()


__all__ = ["EPISODE_MODES", "turn_returns", "group_indices", "weighted_whiten", "episode_advantage"]
