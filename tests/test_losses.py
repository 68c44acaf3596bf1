"""Losses pinned to hand values: PPO clip / clip-higher / dual clip, agg_loss modes, KL estimators, TIS."""

from __future__ import annotations

import math

import pytest
import torch

from agentgym.trainers.losses import AGG_MODES, agg_loss, global_normalisers, kl_estimate, ppo_clip_loss, tis_weights

PER_TOKEN = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 5.0, 9.0, 9.0], [9.0, 9.0, 9.0, 9.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize("mode, expected", [
    ("token-mean", 15 / 5),                      # Σ m ℓ / N_tokens
    ("seq-mean-token-mean", (2.0 + 4.5) / 2),    # mean of per-sequence means (empty row excluded)
    ("seq-mean-token-sum", (6.0 + 9.0) / 2),     # mean of per-sequence sums
    ("seq-mean-token-sum-norm", 15 / 4),         # Σ m ℓ / C, C = row length 4
])
def test_agg_loss_hand_values(mode, expected):
    assert float(agg_loss(PER_TOKEN, MASK, mode)) == pytest.approx(expected)


def test_agg_loss_norm_constant_and_unknown_mode():
    assert float(agg_loss(PER_TOKEN, MASK, "seq-mean-token-sum-norm", norm_constant=10)) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        agg_loss(PER_TOKEN, MASK, "mean")


@pytest.mark.parametrize("mode", AGG_MODES)
def test_agg_loss_gradients_do_not_depend_on_micro_batching(mode):
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(6, 7, generator=g) > 0.4).float()
    mask[2] = 0.0  # a row without model tokens
    x = torch.randn(6, 7, generator=g)
    w = torch.randn(7, requires_grad=True)

    def per_token(rows):
        return (x[rows] * w).pow(2)

    full = agg_loss(per_token(slice(None)), mask, mode, **global_normalisers(mask))
    (g_full,) = torch.autograd.grad(full, w)
    norms = global_normalisers(mask)
    total = torch.zeros(())
    acc = torch.zeros(7)
    for rows in (slice(0, 1), slice(1, 4), slice(4, 6)):
        loss = agg_loss(per_token(rows), mask[rows], mode, **norms)
        (g_part,) = torch.autograd.grad(loss, w)
        acc += g_part
        total = total + loss.detach()
    assert float(total) == pytest.approx(float(full.detach()), rel=1e-5)
    assert torch.allclose(acc, g_full, atol=1e-5)
    # without the global normalisers, token-mean over micro-batches is NOT the full-batch loss
    if mode == "token-mean":
        local = sum(float(agg_loss(per_token(r), mask[r], mode).detach()) for r in (slice(0, 1), slice(1, 4), slice(4, 6)))
        assert local != pytest.approx(float(full.detach()), rel=1e-3)


def test_ppo_clip_hand_values():
    logp = torch.log(torch.tensor([[1.5, 1.1, 0.5, 0.9, 5.0, 1.0]]))
    old = torch.zeros_like(logp)
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0, -1.0, 2.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 0.0]])
    out = ppo_clip_loss(logp, old, adv, mask, eps_low=0.2, eps_high=0.28, dual_clip=3.0)
    # ρ=1.5, A=1: clipped at 1+ε_high -> −1.28;  ρ=1.1 inside the band -> −1.1
    # ρ=0.5, A=−1: max(0.5, 0.8) = 0.8;  ρ=0.9, A=−1 -> 0.9;  ρ=5, A=−1: max(5, 1.28)=5, dual clip min(5, 3) = 3
    assert out.per_token[0].tolist() == pytest.approx([-1.28, -1.1, 0.8, 0.9, 3.0, 0.0], abs=1e-6)
    assert float(out.clip_fraction) == pytest.approx(2 / 5)  # tokens 0 and 2 are clipped
    no_dual = ppo_clip_loss(logp, old, adv, mask, dual_clip=None)
    assert float(no_dual.per_token[0, 4]) == pytest.approx(5.0)


def test_ppo_clip_gradient_is_zero_when_clipped_and_log_ratio_is_clamped():
    logp = torch.tensor([[math.log(1.5), math.log(1.1)]], requires_grad=True)
    out = ppo_clip_loss(logp, torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2))
    out.per_token.sum().backward()
    assert logp.grad[0, 0] == 0.0 and logp.grad[0, 1] == pytest.approx(-1.1)
    huge = ppo_clip_loss(torch.tensor([[100.0]]), torch.zeros(1, 1), -torch.ones(1, 1), torch.ones(1, 1),
                         dual_clip=None)
    assert float(huge.per_token) == pytest.approx(math.exp(20.0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_k1_k3_monte_carlo_match_exact_kl(seed):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn(6, generator=g), 0)
    q = torch.softmax(torch.randn(6, generator=g), 0)
    exact = float((p * (p.log() - q.log())).sum())
    n = 200_000
    a = torch.multinomial(p, n, replacement=True, generator=g)
    logp, ref = p.log()[a], q.log()[a]
    for kind in ("k1", "k3"):
        k = kl_estimate(logp, ref, kind)
        se = float(k.std()) / math.sqrt(n)
        assert abs(float(k.mean()) - exact) < 5 * se + 1e-9, kind
    k3 = kl_estimate(logp, ref, "k3")
    assert float(k3.min()) >= 0.0
    assert float(kl_estimate(logp, ref, "k1").min()) < 0.0  # k1 is unbiased but goes negative
    k2 = kl_estimate(logp, ref, "k2")
    assert torch.allclose(k2, 0.5 * (logp - ref) ** 2)


def test_kl_k3_clamps_and_k3_plus_has_k2_gradient():
    assert float(kl_estimate(torch.tensor([0.0]), torch.tensor([50.0]), "k3")) == 10.0
    logp = torch.tensor([0.3, -1.2], requires_grad=True)
    ref = torch.tensor([-0.1, -0.4])
    plus = kl_estimate(logp, ref, "k3+")
    assert torch.allclose(plus, kl_estimate(logp, ref, "k3"))
    (g_plus,) = torch.autograd.grad(plus.sum(), logp)
    assert torch.allclose(g_plus, (logp - ref).detach())  # d/dlogp ½ (logp − ref)²
    with pytest.raises(ValueError):
        kl_estimate(logp, ref, "k4")


def test_tis_weights():
    trainer = torch.tensor([[-1.0, -0.5, -2.0, -3.0, 0.0]])
    rollout = torch.tensor([[-1.0, -1.5, -1.0, -3.5, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    w = tis_weights(trainer, rollout, mask, cap=2.0)
    assert w[0].tolist() == pytest.approx([1.0, 2.0, math.exp(-1.0), math.exp(0.5), 1.0])  # e^1 capped at 2
    assert torch.equal(tis_weights(rollout, rollout, mask), torch.ones_like(rollout))
    env = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(tis_weights(trainer, rollout + 5, env), torch.ones_like(rollout))  # env tokens -> 1
    t = trainer.clone().requires_grad_(True)
    assert not tis_weights(t, rollout, mask).requires_grad
