"""Step-level DPO: the DPO loss as a pure function and a trainer over (prompt ids, chosen ids, rejected ids) pairs.

    L = −(1 − ε) log σ(β Δ) − ε log σ(−β Δ),   Δ = [log π(a_w|s) − log π_ref(a_w|s)] − [log π(a_l|s) − log π_ref(a_l|s)]
with sequence log-probs summed over the action's tokens (``trainers.logprobs.token_logprobs``) and a frozen
reference model. ε is label smoothing (conservative DPO; 0 = plain DPO). ``nll_weight`` α adds the chosen action's
per-token NLL, ``L + α (−log π(a_w|s) / |a_w|)`` (SWEET-RL: α = 0.01; RPO: α = 1), which keeps DPO from pushing
down the chosen action's own likelihood (small models drift off-format without it). The implicit step value of a trained model
is ``q(s, a) = β (log π(a|s) − log π_ref(a|s))`` (Step-level Q-VM), computed with the same log-prob utility.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from agentgym.trainers.logprobs import token_logprobs


class DPOLoss(NamedTuple):
    loss: torch.Tensor              # mean over pairs
    losses: torch.Tensor            # per pair
    chosen_rewards: torch.Tensor    # β (log π − log π_ref)(a_w)
    rejected_rewards: torch.Tensor  # β (log π − log π_ref)(a_l)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1, label_smoothing: float = 0.0) -> DPOLoss:
    """The DPO loss on sequence log-probs (see the module docstring)."""
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    margin = chosen - rejected  # = β Δ
    losses = -(1.0 - label_smoothing) * F.logsigmoid(margin) - label_smoothing * F.logsigmoid(-margin)
    return DPOLoss(losses.mean(), losses, chosen.detach(), rejected.detach())


def chosen_nll(policy_chosen: torch.Tensor, chosen_lengths: torch.Tensor) -> torch.Tensor:
    """Mean over pairs of the chosen action's per-token negative log-likelihood ``−log π(a_w|s) / |a_w|``."""
    return (-policy_chosen / chosen_lengths.clamp(min=1)).mean()


def implicit_q(policy_logps: torch.Tensor, ref_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """The implicit step value ``β (log π(a|s) − log π_ref(a|s))``."""
    return beta * (policy_logps - ref_logps)


@dataclass(frozen=True)
class PreferenceExample:
    """Token ids of one step pair: the shared prompt, the chosen action, the rejected action."""

    prompt_ids: Sequence[int]
    chosen_ids: Sequence[int]
    rejected_ids: Sequence[int]


def sequence_logps(model: Any, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                   pad_id: int = 0) -> torch.Tensor:
    """``[B]`` sum of log π(completion tokens | prompt) for each (prompt, completion), right-padded in one batch."""
    seqs = [list(p) + list(c) for p, c in zip(prompts, completions)]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    att = torch.zeros(len(seqs), width, dtype=torch.long)
    comp = torch.zeros(len(seqs), width)
    for i, (s, p) in enumerate(zip(seqs, prompts)):
        ids[i, :len(s)] = torch.tensor(s)
        att[i, :len(s)] = 1
        comp[i, len(p):len(s)] = 1.0
    return (token_logprobs(model, ids, att) * comp).sum(-1)


@dataclass
class StepDPOConfig:
    """Step-DPO hyper-parameters (MCTS-DPO: β = 0.1, lr 1e-6 on 7B models; larger lr for tiny models)."""

    beta: float = 0.1
    label_smoothing: float = 0.0
    lr: float = 1e-5
    epochs: int = 1
    batch_size: int = 8
    max_grad_norm: float = 1.0
    nll_weight: float = 0.0        # α of the chosen-action NLL term (0 = plain DPO)
    pad_id: int = 0
    seed: int = 0


class StepDPOTrainer:
    """DPO on step pairs with a frozen copy of the starting model as the reference."""

    def __init__(self, model: torch.nn.Module, cfg: StepDPOConfig | None = None,
                 ref_model: torch.nn.Module | None = None):
        self.cfg = cfg or StepDPOConfig()
        self.model = model
        self.ref_model = (ref_model if ref_model is not None else copy.deepcopy(model)).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=self.cfg.lr)

    def logps(self, model: torch.nn.Module, batch: Sequence[PreferenceExample]) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequence log-probs of the chosen and of the rejected actions, one forward pass for both."""
        prompts = [e.prompt_ids for e in batch] * 2
        comps = [e.chosen_ids for e in batch] + [e.rejected_ids for e in batch]
        lp = sequence_logps(model, prompts, comps, self.cfg.pad_id)
        return lp[:len(batch)], lp[len(batch):]

    def step(self, batch: Sequence[PreferenceExample]) -> dict[str, float]:
        """One optimiser step on a batch of pairs; returns loss, reward margin and preference accuracy."""
        self.model.train()
        with torch.no_grad():
            ref_c, ref_r = self.logps(self.ref_model, batch)
        pol_c, pol_r = self.logps(self.model, batch)
        out = dpo_loss(pol_c, pol_r, ref_c, ref_r, self.cfg.beta, self.cfg.label_smoothing)
        loss = out.loss
        nll = torch.zeros(())
        if self.cfg.nll_weight:
            nll = chosen_nll(pol_c, torch.tensor([len(e.chosen_ids) for e in batch], dtype=pol_c.dtype))
            loss = loss + self.cfg.nll_weight * nll
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.opt.step()
        margin = out.chosen_rewards - out.rejected_rewards
        return {"loss": float(out.loss.detach()), "nll": float(nll.detach()), "reward_margin": float(margin.mean()),
                "accuracy": float((margin > 0).float().mean())}

    def train(self, examples: Sequence[PreferenceExample]) -> list[dict[str, float]]:
        """`epochs` shuffled passes over the pairs; returns per-step metrics."""
        g = torch.Generator().manual_seed(self.cfg.seed)
        history = []
        for _ in range(self.cfg.epochs):
            order = torch.randperm(len(examples), generator=g).tolist()
            for start in range(0, len(order), self.cfg.batch_size):
                history.append(self.step([examples[i] for i in order[start:start + self.cfg.batch_size]]))
        return history

    def save(self, out_dir: str | Path, tokenizer: Any = None, *, trained_on: Sequence[dict[str, Any]] = (),
             base_model: str | Path | None = None) -> Path:
        """Write the policy (plain weights) and its provenance: `trained_on` entries (``provenance.tasks_entry``)."""
        from agentgym.provenance import write_model_provenance
        from agentgym.trainers.lora import save_model

        path = save_model(self.model, out_dir, tokenizer)
        write_model_provenance(path, list(trained_on), base_model=base_model)
        return path

    @torch.no_grad()
    def implicit_q(self, prompt_ids: Sequence[int], actions: Sequence[Sequence[int]]) -> torch.Tensor:
        """``β (log π − log π_ref)`` of each candidate action at one prompt."""
        prompts = [prompt_ids] * len(actions)
        return implicit_q(sequence_logps(self.model, prompts, actions, self.cfg.pad_id),
                          sequence_logps(self.ref_model, prompts, actions, self.cfg.pad_id), self.cfg.beta)


def examples_from_pairs(pairs: Sequence[Any], tokenizer: Any, tools: Sequence[dict] | None = None) -> list[PreferenceExample]:
    """Token ids for step pairs: recorded ids when the search kept them, else the tokenizer's chat template."""
    out = []
    for p in pairs:
        if p.prompt_token_ids is not None and p.chosen_token_ids is not None and p.rejected_token_ids is not None:
            out.append(PreferenceExample(p.prompt_token_ids, p.chosen_token_ids, p.rejected_token_ids))
            continue
        prompt = tokenizer.apply_chat_template(list(p.messages), tools=tools, add_generation_prompt=True, tokenize=True)
        prompt = list(prompt["input_ids"] if hasattr(prompt, "keys") else prompt)
        ids = []
        for action in (p.chosen, p.rejected):
            full = tokenizer.apply_chat_template([*p.messages, action], tools=tools, tokenize=True)
            full = list(full["input_ids"] if hasattr(full, "keys") else full)
            if full[:len(prompt)] != prompt:
                raise ValueError("the chat template does not extend the prompt with the action; cannot split ids")
            ids.append(full[len(prompt):])
        out.append(PreferenceExample(prompt, ids[0], ids[1]))
    return out
