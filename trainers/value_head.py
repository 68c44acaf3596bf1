"""A turn-level critic: ``V(s_t)`` from the policy's last hidden state at each turn's last prompt token.

The state before turn t is everything up to the token just before the turn's first generated token, so
``V(s_t) = w·h[start_t − 1] + b`` on a packed row. The values feed turn-level GAE (``CreditBatch.turn_values``);
the head is trained by regression on the turn returns (optionally PPO-style value clipping).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from agentgym.trainers.packing import PackedBatch


def turn_state_positions(batch: PackedBatch) -> list[tuple[int, int, int, int]]:
    """(row, position, episode, turn) of each turn's last prompt token: the position before its first action token."""
    out = []
    for row in range(len(batch)):
        ti = batch.turn_index[row]
        prev = -1
        for j in range(ti.shape[0]):
            t = int(ti[j])
            if t >= 0 and t != prev:
                out.append((row, j - 1, int(batch.episode_index[row]), t))
            prev = t
    return out


class TurnValueHead(nn.Module):
    """A small MLP (or linear) head mapping a hidden state to a scalar value."""

    def __init__(self, hidden_size: int, inner: int | None = None):
        super().__init__()
        self.net = (nn.Linear(hidden_size, 1) if inner is None else
                    nn.Sequential(nn.Linear(hidden_size, inner), nn.Tanh(), nn.Linear(inner, 1)))

    def forward(self, hidden: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Values at ``hidden[rows, positions]`` -> ``[N]``."""
        return self.net(hidden[rows, positions]).squeeze(-1)


def last_hidden_states(model: Any, batch: PackedBatch, *, detach_trunk: bool = True) -> torch.Tensor:
    """The policy's final-layer hidden states ``[B, L, H]`` (detached by default: the head alone learns)."""
    ctx = torch.no_grad() if detach_trunk else torch.enable_grad()
    with ctx:
        device = next(model.parameters()).device
        out = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
                    output_hidden_states=True)
    return out.hidden_states[-1].float()


def predict_turn_values(head: TurnValueHead, hidden: torch.Tensor, batch: PackedBatch,
                        num_turns: list[int]) -> tuple[torch.Tensor, list[list[float]]]:
    """(values ``[N]`` in ``turn_state_positions`` order, per-episode per-turn lists for ``CreditBatch``)."""
    where = turn_state_positions(batch)
    rows = torch.tensor([w[0] for w in where], dtype=torch.long, device=hidden.device)
    pos = torch.tensor([w[1] for w in where], dtype=torch.long, device=hidden.device)
    values = head(hidden, rows, pos)
    table = [[0.0] * n for n in num_turns]
    for (_, _, ep, t), v in zip(where, values.detach().tolist()):
        table[ep][t] = float(v)
    return values, table


def value_loss(values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor | None = None,
               clip: float | None = None) -> torch.Tensor:
    """½ MSE to the returns; with ``old_values`` and ``clip``, PPO's clipped value loss ``max(l, l_clipped)``."""
    loss = (values - returns).pow(2)
    if old_values is not None and clip is not None:
        clipped = old_values + torch.clamp(values - old_values, -clip, clip)
        loss = torch.maximum(loss, (clipped - returns).pow(2))
    return 0.5 * loss.mean()


__all__ = ["turn_state_positions", "TurnValueHead", "last_hidden_states", "predict_turn_values", "value_loss"]
