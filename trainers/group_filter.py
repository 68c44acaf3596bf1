"""Dynamic sampling: drop groups that carry no learning signal, or keep only the most informative ones.

A group whose episodes all got the same reward has zero group-relative advantage (DAPO's dynamic sampling,
SkyRL's zero-variance filter); RAGEN's StarPO-S keeps the top fraction of groups ranked by in-group reward std.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TypeVar

import numpy as np

from agentgym.records import EpisodeRecord
from agentgym.trainers.advantages import group_indices

T = TypeVar("T")


def group_std(group_ids: Sequence[Hashable], rewards: Sequence[float]) -> dict[Hashable, float]:
    """Population std of the rewards of each group (0 for a singleton)."""
    r = np.asarray(rewards, dtype=np.float64)
    return {g: float(r[idx].std()) for g, idx in group_indices(group_ids).items()}


def drop_zero_variance(group_ids: Sequence[Hashable], rewards: Sequence[float], *, tol: float = 1e-9) -> list[int]:
    """Indices of the episodes whose group has reward std > tol (singletons are dropped: no baseline)."""
    stds = group_std(group_ids, rewards)
    return [i for i, g in enumerate(group_ids) if stds[g] > tol]


def top_fraction_by_std(group_ids: Sequence[Hashable], rewards: Sequence[float], fraction: float = 0.25) -> list[int]:
    """Indices of the episodes in the top ``fraction`` of groups by reward std (at least one group; ties keep the
    earlier group), RAGEN's ``rollout_filter_ratio``."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    stds = group_std(group_ids, rewards)
    order = sorted(stds, key=lambda g: -stds[g])  # stable: ties keep first-seen order
    keep = set(order[:max(1, math.ceil(fraction * len(order)))])
    return [i for i, g in enumerate(group_ids) if g in keep]


def filter_indices(group_ids: Sequence[Hashable], rewards: Sequence[float], spec: str) -> list[int]:
    """Apply a filter by name: ``none``, ``zero-variance`` or ``top:<fraction>`` (e.g. ``top:0.25``)."""
    if spec == "none":
        return list(range(len(group_ids)))
    if spec == "zero-variance":
        return drop_zero_variance(group_ids, rewards)
    if spec.startswith("top:"):
        return top_fraction_by_std(group_ids, rewards, float(spec[4:]))
    raise ValueError(f"unknown group filter {spec!r}; expected none | zero-variance | top:<fraction>")


def filter_records(records: Sequence[EpisodeRecord], spec: str = "zero-variance") -> list[EpisodeRecord]:
    """Keep the records that survive ``spec`` (group = ``group_id`` else task id; reward = the episode return)."""
    kept = filter_indices([r.group_id or r.task_id for r in records], [float(r.reward or 0.0) for r in records], spec)
    return [records[i] for i in kept]


__all__ = ["group_std", "drop_zero_variance", "top_fraction_by_std", "filter_indices", "filter_records"]
