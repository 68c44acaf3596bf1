"""Per-token log-probs of a causal LM, aligned to the token predicted: ``out[b, j] = log p(x_j | x_<j)``.

The logits at position j−1 predict token j (the one-position shift), so position 0 gets 0. Memory: the
``[B, L, V]`` logits are the largest tensor; we take ``logit[label] − logsumexp(logits)`` instead of a full
log-softmax (no second ``[B, L, V]`` tensor) and run the batch in chunks of ``chunk_size`` rows.
"""

from __future__ import annotations

from typing import Any

import torch


def gather_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)[..., label]`` without materialising the log-softmax (computed in fp32)."""
    logits = logits.float()
    picked = torch.gather(logits, -1, labels.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def token_logprobs(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                   chunk_size: int | None = None) -> torch.Tensor:
    """``[B, L]`` log-prob of each token from the logits one position earlier (0 at position 0 and at padding).

    Differentiable (call under ``torch.no_grad()`` for π_old / reference log-probs); ``chunk_size`` rows per
    forward pass bound the peak memory of the logits.
    """
    b, length = input_ids.shape
    step = chunk_size or b
    parts = []
    for start in range(0, b, step):
        ids = input_ids[start:start + step]
        att = attention_mask[start:start + step]
        logits = model(input_ids=ids, attention_mask=att).logits  # [b, L, V]
        lp = gather_logprobs(logits[:, :-1, :], ids[:, 1:]) * att[:, 1:].to(torch.float32)
        parts.append(torch.cat([torch.zeros_like(lp[:, :1]), lp], dim=1))
        del logits
    out = torch.cat(parts, dim=0)
    assert out.shape == (b, length)
    return out


__all__ = ["gather_logprobs", "token_logprobs"]
