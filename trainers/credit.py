"""Credit assignment: one registry of advantage estimators over one data layout (``CreditBatch``).

``estimate(name, batch, cfg)`` returns one advantage per turn per episode, whatever the estimator;
``broadcast_turn_to_tokens`` is the single place where those turn scalars become token tensors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentgym.records import EpisodeRecord
from agentgym.trainers.advantages import episode_advantage, turn_returns, weighted_whiten
from agentgym.trainers.turn_credit import (bilevel_gae_advantages, gigpo_advantages, min_form_exact_rewards,
                                           min_form_softmax_rewards, mt_grpo_advantages, turn_gae_advantages)

if TYPE_CHECKING:
    import torch


@dataclass
class CreditConfig:
    """Hyper-parameters of every estimator in one place (defaults: the authors' values)."""

    gamma: float = 1.0                 # turn discount for turn_returns / turn_gae
    lam: float = 1.0                   # GAE λ
    eps: float = 1e-6                  # GRPO's std epsilon
    gigpo_gamma: float = 0.95          # GiGPO step-return discount
    gigpo_omega: float = 1.0           # ω: weight of the step advantage
    gigpo_mode: str = "mean_norm"      # mean_norm ("w/o std", the paper's better row) | mean_std_norm
    gigpo_episode_stats: str = "trajectory"  # trajectory | step (verl-agent's per-step-sample statistics)
    turn_baseline: str = "group"       # turn_returns baseline: group (same turn index) | rebn (batch whitening)
    whiten_gae: bool = True            # masked_whiten turn_gae / bilevel_gae advantages over the batch (verl)
    high_level_gamma: float = 0.95     # bi-level GAE γ_H (RAGEN)
    mt_grpo_lambda: float = 1.0        # λ of MT-GRPO's turn advantage
    mt_grpo_eps: float = 1e-4


@dataclass
class CreditBatch:
    """Per episode: group id, per-turn rewards, outcome reward, anchor-state keys, optional values/token counts."""

    group_ids: list[str]
    turn_rewards: list[list[float]]
    outcome_rewards: list[float]
    anchor_keys: list[list[str]]
    turn_values: list[list[float]] | None = None      # V(s_t) from a critic (turn_gae, bilevel_gae)
    token_counts: list[list[int]] | None = None       # generated tokens per turn (weights of batch whitening)
    split_turns: list[int | None] = field(default_factory=list)  # MT-GRPO: first turn after a tool result

    def __post_init__(self) -> None:
        n = len(self.group_ids)
        if not (len(self.turn_rewards) == len(self.outcome_rewards) == len(self.anchor_keys) == n):
            raise ValueError("CreditBatch fields differ in length")
        for i, (r, k) in enumerate(zip(self.turn_rewards, self.anchor_keys)):
            if len(r) != len(k):
                raise ValueError(f"episode {i}: {len(r)} rewards but {len(k)} anchor keys")
        if not self.split_turns:
            self.split_turns = [None] * n

    def __len__(self) -> int:
        return len(self.group_ids)

    @property
    def returns(self) -> list[float]:
        """Episode returns ``R = Σ_t r_t``."""
        return [float(sum(r)) for r in self.turn_rewards]

    @property
    def num_turns(self) -> list[int]:
        return [len(r) for r in self.turn_rewards]

    def with_rewards(self, turn_rewards: list[list[float]]) -> CreditBatch:
        """A copy with other per-turn rewards (what a reward shaper returns)."""
        return dataclasses.replace(self, turn_rewards=turn_rewards)

    @classmethod
    def from_records(cls, records: Sequence[EpisodeRecord],
                     turn_values: list[list[float]] | None = None) -> CreditBatch:
        """Group = ``group_id`` (else the task id); anchor key = hash of the observation text seen at that turn."""
        return cls(group_ids=[r.group_id or r.task_id for r in records],
                   turn_rewards=[[float(t.reward) for t in r.turns] for r in records],
                   outcome_rewards=[float(r.outcome_reward or 0.0) for r in records],
                   anchor_keys=[[anchor_key(t.observation) for t in r.turns] for r in records],
                   turn_values=turn_values,
                   token_counts=([[len(t.token_ids or ()) for t in r.turns] for r in records]
                                 if all(t.token_ids is not None for r in records for t in r.turns) else None),
                   split_turns=[_first_tool_result(r) for r in records])


def anchor_key(messages: Sequence[dict[str, Any]]) -> str:
    """Hash of an observation's text (roles and contents, no history): equal states give equal keys."""
    text = json.dumps([[m.get("role"), m.get("content")] for m in messages], ensure_ascii=False, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _first_tool_result(record: EpisodeRecord) -> int | None:
    """The turn after the first one whose tool call ran without error (MT-GRPO's split), None if none did."""
    for t in record.turns:
        if any(c.get("ok") for c in t.info.get("calls") or ()):
            return t.turn + 1
    return None


# --- estimators: (batch, cfg) -> one advantage per turn per episode -------------------------------------

Estimator = Callable[[CreditBatch, CreditConfig], list[list[float]]]


def _per_turn(batch: CreditBatch, episode_adv: Sequence[float]) -> list[list[float]]:
    return [[float(a)] * n for a, n in zip(episode_adv, batch.num_turns)]


def _episode(mode: str) -> Estimator:
    def estimator(batch: CreditBatch, cfg: CreditConfig) -> list[list[float]]:
        weights = [sum(c) for c in batch.token_counts] if batch.token_counts is not None else None
        return _per_turn(batch, episode_advantage(batch.returns, batch.group_ids, mode, eps=cfg.eps, weights=weights))
    estimator.__doc__ = f"Trajectory-level advantage (episode_advantage mode={mode!r}) on every turn."
    return estimator


def _whiten_turns(batch: CreditBatch, adv: list[list[float]]) -> list[list[float]]:
    """verl's masked_whiten over every generated token of the batch (each turn weighted by its token count)."""
    flat = [a for row in adv for a in row]
    weights = [c for row in batch.token_counts for c in row] if batch.token_counts is not None else None
    white = iter(weighted_whiten(flat, weights))
    return [[next(white) for _ in row] for row in adv]


def turn_returns_estimator(batch: CreditBatch, cfg: CreditConfig) -> list[list[float]]:
    """``G_t`` minus the group mean of ``G`` at the same turn index (singleton: raw), or ReBN's batch whitening."""
    returns = [turn_returns(r, cfg.gamma) for r in batch.turn_rewards]
    if cfg.turn_baseline == "rebn":
        return _whiten_turns(batch, returns)
    if cfg.turn_baseline != "group":
        raise ValueError(f"unknown turn_baseline {cfg.turn_baseline!r}")
    sums: dict[tuple[str, int], list[float]] = {}
    for g, row in zip(batch.group_ids, returns):
        for t, v in enumerate(row):
            sums.setdefault((g, t), []).append(v)
    out = []
    for g, row in zip(batch.group_ids, returns):
        out.append([v - (sum(sums[(g, t)]) / len(sums[(g, t)]) if len(sums[(g, t)]) > 1 else 0.0)
                    for t, v in enumerate(row)])
    return out


def gigpo_estimator(batch: CreditBatch, cfg: CreditConfig) -> list[list[float]]:
    """GiGPO: episode group advantage + ω × anchor-state step-group advantage."""
    return gigpo_advantages(batch.turn_rewards, batch.group_ids, batch.anchor_keys, gamma=cfg.gigpo_gamma,
                            omega=cfg.gigpo_omega, mode=cfg.gigpo_mode, episode_stats=cfg.gigpo_episode_stats)


def _values(batch: CreditBatch, name: str) -> list[list[float]]:
    if batch.turn_values is None:
        raise ValueError(f"estimator {name!r} needs CreditBatch.turn_values from a critic (trainers.value_head)")
    return batch.turn_values


def turn_gae_estimator(batch: CreditBatch, cfg: CreditConfig) -> list[list[float]]:
    """Turn-level GAE with the critic's ``V(s_t)``; whitened over the batch when ``cfg.whiten_gae``."""
    adv = turn_gae_advantages(batch.turn_rewards, _values(batch, "turn_gae"), gamma=cfg.gamma, lam=cfg.lam)
    return _whiten_turns(batch, adv) if cfg.whiten_gae else adv


def bilevel_gae_estimator(batch: CreditBatch, cfg: CreditConfig) -> list[list[float]]:
    """RAGEN's bi-level GAE at turn granularity (γ_H over turns, λ = cfg.lam)."""
    adv = bilevel_gae_advantages(batch.turn_rewards, _values(batch, "bilevel_gae"),
                                 high_gamma=cfg.high_level_gamma, high_lam=cfg.lam)
    return _whiten_turns(batch, adv) if cfg.whiten_gae else adv


def mt_grpo_estimator(batch: CreditBatch, cfg: CreditConfig) -> list[list[float]]:
    """MT-GRPO: turn reward ``r^T`` = the turn rewards summed (the outcome excluded), outcome ``r^O``."""
    turn_reward = [ret - o for ret, o in zip(batch.returns, batch.outcome_rewards)]
    return mt_grpo_advantages(turn_reward, batch.outcome_rewards, batch.split_turns, batch.num_turns,
                              batch.group_ids, lam=cfg.mt_grpo_lambda, eps=cfg.mt_grpo_eps)


ESTIMATORS: dict[str, Estimator] = {
    "grpo": _episode("std"),
    "drgrpo": _episode("mean"),
    "rloo": _episode("rloo"),
    "reinforce_pp": _episode("batch_whiten"),
    "turn_returns": turn_returns_estimator,
    "gigpo": gigpo_estimator,
    "turn_gae": turn_gae_estimator,
    "bilevel_gae": bilevel_gae_estimator,
    "mt_grpo": mt_grpo_estimator,
}


def estimate(name: str, batch: CreditBatch, cfg: CreditConfig | None = None) -> list[list[float]]:
    """Run the estimator registered as ``name``: one advantage per turn per episode."""
    try:
        fn = ESTIMATORS[name]
    except KeyError:
        raise KeyError(f"unknown credit estimator {name!r}; known: {', '.join(sorted(ESTIMATORS))}") from None
    out = fn(batch, cfg or CreditConfig())
    assert [len(a) for a in out] == batch.num_turns
    return out


# --- reward shapers ---------------------------------------------------------------------------------

SHAPERS = ("min_form_softmax", "min_form_exact")


def shape_rewards(batch: CreditBatch, kind: str, *, temperature: float = 0.1) -> CreditBatch:
    """PURE's min-form transform of per-turn (process) rewards, so that γ=1 returns become min-form values.

    ``min_form_softmax``: ``r'_t = softmax(−r/T)_t r_t`` (the paper's code); ``min_form_exact``: returns equal
    ``min_{t'≥t} r_{t'}``. Record which one a run used: they differ after the arg-min step.
    """
    if kind == "min_form_softmax":
        return batch.with_rewards([min_form_softmax_rewards(r, temperature) for r in batch.turn_rewards])
    if kind == "min_form_exact":
        return batch.with_rewards([min_form_exact_rewards(r) for r in batch.turn_rewards])
    raise ValueError(f"unknown shaper {kind!r}; expected one of {SHAPERS}")


# --- turn scalars -> token tensors ---------------------------------------------------------------------

def broadcast_turn_to_tokens(turn_values: Sequence[Sequence[float]], turn_index: torch.Tensor) -> torch.Tensor:
    """``out[b, j] = turn_values[b][turn_index[b, j]]`` where ``turn_index >= 0`` (an action token), else 0.

    The one place turn scalars (advantages, returns, values) become token tensors: environment, prompt and
    padding tokens (``turn_index == -1``) get exactly 0.
    """
    import torch

    out = torch.zeros(turn_index.shape, dtype=torch.float32)
    for b, row in enumerate(turn_values):
        idx = turn_index[b]
        pos = idx >= 0
        if pos.any():
            table = torch.tensor(list(row), dtype=torch.float32)
            out[b, pos] = table[idx[pos]]
    return out


__all__ = ["CreditConfig", "CreditBatch", "anchor_key", "Estimator", "ESTIMATORS", "estimate", "SHAPERS",
           "shape_rewards", "broadcast_turn_to_tokens", "turn_returns_estimator", "gigpo_estimator",
           "turn_gae_estimator", "bilevel_gae_estimator", "mt_grpo_estimator"]
