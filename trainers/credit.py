"""Credit assignment: one registry of advantage estimators over one data layout (``CreditBatch``).

``estimate(name, batch, cfg)`` returns one advantage per turn per episode, whatever the estimator; each
registered estimator declares which ``CreditConfig`` fields it reads (``ESTIMATORS[name].params``), so a
config can reject a parameter the chosen estimator would ignore. ``broadcast_turn_to_tokens`` is the single
place where those turn scalars become token tensors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from agentgym.records import EpisodeRecord
from agentgym.trainers.advantages import episode_advantage, turn_returns, weighted_whiten
from agentgym.trainers.turn_credit import (bilevel_gae_advantages, gigpo_advantages, min_form_exact_rewards,
                                           min_form_softmax_rewards, mt_grpo_advantages, turn_gae_advantages)

if TYPE_CHECKING:
    import torch


def _param(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class CreditConfig:
    """Hyper-parameters of every estimator in one place (defaults: the authors' values).

    Each estimator reads only the fields it declares in ``ESTIMATORS[name].params``.
    """

    gamma: float = _param(1.0, "turn discount of turn_returns and turn_gae (and of turn_gae's critic targets)")
    lam: float = _param(1.0, "GAE λ of turn_gae and bilevel_gae")
    eps: float = _param(1e-6, "ε added to GRPO's group std")
    gigpo_gamma: float = _param(0.95, "GiGPO's step-return discount γ")
    gigpo_omega: float = _param(1.0, "GiGPO's ω: weight of the step-group advantage")
    gigpo_mode: Literal["mean_norm", "mean_std_norm"] = _param(
        "mean_norm", "GiGPO normalisation: mean_norm (the paper's 'w/o std' row) or mean_std_norm")
    gigpo_episode_stats: Literal["trajectory", "step"] = _param(
        "trajectory", "GiGPO episode statistics over trajectories, or over step-samples (verl-agent)")
    turn_baseline: Literal["group", "rebn"] = _param(
        "group", "turn_returns baseline: group mean at the same turn index, or ReBN batch whitening")
    whiten_gae: bool = _param(True, "whiten turn_gae / bilevel_gae advantages over the batch's tokens (verl)")
    high_level_gamma: float = _param(0.95, "bilevel_gae's turn-level discount γ_H (RAGEN)")
    mt_grpo_lambda: float = _param(1.0, "λ of MT-GRPO's turn advantage")
    mt_grpo_eps: float = _param(1e-4, "ε added to MT-GRPO's group std")

    def set_fields(self) -> list[str]:
        """Names of the fields whose value differs from the default (what a user chose)."""
        default = CreditConfig()
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(default, f.name)]


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


@dataclass(frozen=True)
class EstimatorSpec:
    """A registered estimator: the function and the ``CreditConfig`` fields it reads."""

    fn: Estimator
    params: tuple[str, ...] = ()
    needs_values: bool = False      # reads V(s_t) from a learned critic (CreditBatch.turn_values)
    value_gamma: str | None = None  # the CreditConfig field that discounts the critic's targets


ESTIMATORS: dict[str, EstimatorSpec] = {
    "grpo": EstimatorSpec(_episode("std"), ("eps",)),
    "drgrpo": EstimatorSpec(_episode("mean")),
    "rloo": EstimatorSpec(_episode("rloo")),
    "reinforce_pp": EstimatorSpec(_episode("batch_whiten")),
    "turn_returns": EstimatorSpec(turn_returns_estimator, ("gamma", "turn_baseline")),
    "gigpo": EstimatorSpec(gigpo_estimator, ("gigpo_gamma", "gigpo_omega", "gigpo_mode", "gigpo_episode_stats")),
    "turn_gae": EstimatorSpec(turn_gae_estimator, ("gamma", "lam", "whiten_gae"), needs_values=True,
                              value_gamma="gamma"),
    "bilevel_gae": EstimatorSpec(bilevel_gae_estimator, ("high_level_gamma", "lam", "whiten_gae"),
                                 needs_values=True, value_gamma="high_level_gamma"),
    "mt_grpo": EstimatorSpec(mt_grpo_estimator, ("mt_grpo_lambda", "mt_grpo_eps")),
}


def estimator_spec(name: str) -> EstimatorSpec:
    """The registered estimator ``name``; a KeyError that lists the known names otherwise."""
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise KeyError(f"unknown credit estimator {name!r}; known: {', '.join(sorted(ESTIMATORS))}") from None


def unread_params(name: str, cfg: CreditConfig) -> list[str]:
    """Fields set away from their defaults that estimator ``name`` never reads (a config mistake)."""
    reads = set(estimator_spec(name).params)
    return [p for p in cfg.set_fields() if p not in reads]


def credit_help() -> list[str]:
    """``ALGO: param (default): help`` lines for a CLI's --help."""
    fields = {f.name: f for f in dataclasses.fields(CreditConfig)}
    lines = []
    for name, spec in ESTIMATORS.items():
        params = ", ".join(f"{p}={fields[p].default!r}" for p in spec.params) or "(no parameters)"
        lines.append(f"--algo {name}: --credit {params}")
    lines += [f"  {f.name}: {f.metadata['help']}" for f in fields.values()]
    return lines


def estimate(name: str, batch: CreditBatch, cfg: CreditConfig | None = None) -> list[list[float]]:
    """Run the estimator registered as ``name``: one advantage per turn per episode."""
    out = estimator_spec(name).fn(batch, cfg or CreditConfig())
    assert [len(a) for a in out] == batch.num_turns
    return out


# --- PURE's min-form transform of the training rewards ------------------------------------------------------

MIN_FORMS = ("min_form_softmax", "min_form_exact")


def apply_min_form(batch: CreditBatch, kind: str, *, temperature: float = 0.1) -> CreditBatch:
    """PURE's min-form transform of per-turn (process) rewards, so that γ=1 returns become min-form values.

    ``min_form_softmax``: ``r'_t = softmax(−r/T)_t r_t`` (the paper's code); ``min_form_exact``: returns equal
    ``min_{t'≥t} r_{t'}``. Record which one a run used: they differ after the arg-min step.
    """
    if kind == "min_form_softmax":
        return batch.with_rewards([min_form_softmax_rewards(r, temperature) for r in batch.turn_rewards])
    if kind == "min_form_exact":
        return batch.with_rewards([min_form_exact_rewards(r) for r in batch.turn_rewards])
    raise ValueError(f"unknown min-form transform {kind!r}; expected one of {MIN_FORMS}")


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


__all__ = ["CreditConfig", "CreditBatch", "anchor_key", "Estimator", "EstimatorSpec", "ESTIMATORS", "estimate",
           "estimator_spec", "unread_params", "credit_help", "MIN_FORMS", "apply_min_form", "broadcast_turn_to_tokens",
           "turn_returns_estimator", "gigpo_estimator",
           "turn_gae_estimator", "bilevel_gae_estimator", "mt_grpo_estimator"]
