"""Step-DPO: the loss on fixed log-probs, and the implicit Q of a tabular LM trained on Q-ordered pairs."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
import torch

from agentgym.trainers.step_dpo import (PreferenceExample, StepDPOConfig, StepDPOTrainer, chosen_nll, dpo_loss,
                                       implicit_q)


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


def test_dpo_loss_matches_hand_computed_values():
    # Δ = (−1 + 1.5) − (−2 + 1.5) = 1; β = 0.1: −log σ(0.1) = log(1 + e^−0.1)
    out = dpo_loss(t(-1.0), t(-2.0), t(-1.5), t(-1.5), beta=0.1)
    assert float(out.loss) == pytest.approx(0.6443966600735709, abs=1e-12)
    assert float(out.chosen_rewards[0]) == pytest.approx(0.05) and float(out.rejected_rewards[0]) == pytest.approx(-0.05)
    # Δ = (−3 + 2) − (−1 + 2) = −2; β = 0.5: −log σ(−1) = log(1 + e)
    out = dpo_loss(t(-3.0), t(-1.0), t(-2.0), t(-2.0), beta=0.5)
    assert float(out.loss) == pytest.approx(1.3132616875182228, abs=1e-12)
    # label smoothing ε = 0.1: 0.9 · log(1 + e^−0.1) + 0.1 · log(1 + e^0.1)
    out = dpo_loss(t(-1.0), t(-2.0), t(-1.5), t(-1.5), beta=0.1, label_smoothing=0.1)
    assert float(out.loss) == pytest.approx(0.9 * 0.6443966600735709 + 0.1 * 0.7443966600735709, abs=1e-12)
    # a batch averages the per-pair losses; equal policy and reference give log 2
    out = dpo_loss(t(-1.0, -3.0), t(-2.0, -1.0), t(-1.0, -3.0), t(-2.0, -1.0))
    assert float(out.loss) == pytest.approx(math.log(2)) and out.losses.shape == (2,)
    assert float(implicit_q(t(-1.0), t(-1.5), 0.2)[0]) == pytest.approx(0.1)


class TabularLM(torch.nn.Module):
    """A memoryless "LM": the same next-token logits at every position (vocab: 0 = the prompt, 1..4 = actions)."""

    def __init__(self, vocab: int = 5):
        super().__init__()
        self.table = torch.nn.Parameter(torch.zeros(vocab))

    def forward(self, input_ids, attention_mask=None):
        b, length = input_ids.shape
        return SimpleNamespace(logits=self.table.expand(b, length, -1))


def test_step_dpo_implicit_q_ranks_actions_in_the_known_q_order():
    q_true = {1: 0.2, 2: 0.9, 3: 0.5, 4: 0.1}  # order: 2 > 3 > 1 > 4
    pairs = [PreferenceExample([0], [a], [b]) if q_true[a] > q_true[b] else PreferenceExample([0], [b], [a])
             for a, b in itertools.combinations(q_true, 2)]
    trainer = StepDPOTrainer(TabularLM(), StepDPOConfig(beta=0.5, lr=0.05, epochs=150, batch_size=6))
    history = trainer.train(pairs)
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["accuracy"] == 1.0
    q = trainer.implicit_q([0], [[1], [2], [3], [4]])
    assert sorted(q_true, key=lambda a: -float(q[a - 1])) == [2, 3, 1, 4]
    assert int(q.argmax()) + 1 == 2


def test_step_dpo_on_a_tiny_causal_lm_raises_the_chosen_margin():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=32, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    pairs = [PreferenceExample([1, 5, 6], [7, 8, 2], [9, 10]), PreferenceExample([1, 11], [12, 2], [13, 14, 15])]
    trainer = StepDPOTrainer(model, StepDPOConfig(beta=0.1, lr=1e-3, epochs=15, batch_size=2))
    history = trainer.train(pairs)
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # the policy starts equal to its reference
    assert history[-1]["loss"] < 0.5 and history[-1]["reward_margin"] > 0
    assert all(not p.requires_grad for p in trainer.ref_model.parameters())


def test_chosen_nll_is_the_mean_per_token_nll_of_the_chosen_actions():
    # pair 1: −(−2)/2 = 1; pair 2: −(−6)/3 = 2; mean 1.5
    assert float(chosen_nll(t(-2.0, -6.0), t(2.0, 3.0))) == pytest.approx(1.5)


def test_nll_term_keeps_the_chosen_likelihood_up_where_plain_dpo_only_reorders_actions():
    pairs = [PreferenceExample([0], [2], [1]), PreferenceExample([0], [2], [4]), PreferenceExample([0], [3], [4])]

    def train(nll_weight):
        torch.manual_seed(0)
        trainer = StepDPOTrainer(TabularLM(), StepDPOConfig(beta=0.5, lr=0.05, epochs=40, batch_size=3,
                                                            nll_weight=nll_weight))
        return trainer, trainer.train(pairs)

    plain, h_plain = train(0.0)
    rpo, h_rpo = train(1.0)
    # at the start the policy is uniform over 5 tokens: NLL per chosen token = log 5, DPO loss = log 2
    assert h_rpo[0]["nll"] == pytest.approx(math.log(5), abs=1e-6) and h_rpo[0]["loss"] == pytest.approx(math.log(2))
    assert h_plain[0]["nll"] == 0.0  # not computed without the term
    # plain DPO's gradient on token 0 (never an action) is zero up to rounding: it only reorders the actions;
    # the NLL term also moves probability mass from token 0 onto the chosen actions
    logp = lambda tr: torch.log_softmax(tr.model.table.detach(), -1)  # noqa: E731
    assert abs(float(plain.model.table.detach()[0])) < 0.05
    assert float(logp(rpo)[0].exp()) < 0.5 * float(logp(plain)[0].exp())
    assert float(logp(rpo)[2]) > float(logp(plain)[2])
    assert h_rpo[-1]["accuracy"] == 1.0 and h_plain[-1]["accuracy"] == 1.0
