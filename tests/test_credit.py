"""Credit estimators (GRPO, RLOO, REINFORCE++, GiGPO, GAE, MT-GRPO, min-form) pinned to hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agentgym.records import EpisodeRecord, TurnRecord
from agentgym.trainers.advantages import episode_advantage, turn_returns, weighted_whiten
from agentgym.trainers.credit import (ESTIMATORS, CreditBatch, CreditConfig, anchor_key, apply_min_form,
                                      broadcast_turn_to_tokens, estimate)
from agentgym.trainers.turn_credit import (bilevel_gae_tokens, gae, gigpo_advantages, min_form_exact,
                                           min_form_softmax, mt_grpo_advantages, token_gae, turn_gae_advantages)


# --- trajectory level ----------------------------------------------------------------------------------

def test_grpo_hand_values_and_group_invariants():
    adv = episode_advantage([1, 0, 0, 0, 3, 5], ["a"] * 4 + ["b"] * 2, "std", eps=0.0)
    # group a: mean 0.25, unbiased std 0.5; group b: mean 4, std sqrt(2)
    assert adv == pytest.approx([1.5, -0.5, -0.5, -0.5, -1 / math.sqrt(2), 1 / math.sqrt(2)])
    assert sum(adv[:4]) == pytest.approx(0.0) and sum(adv[4:]) == pytest.approx(0.0)


@pytest.mark.parametrize("mode", ["std", "mean", "rloo"])
def test_equal_rewards_give_zero_advantage(mode):
    assert episode_advantage([0.7] * 5, ["g"] * 5, mode) == pytest.approx([0.0] * 5)


def test_rloo_is_leave_one_out_and_k_over_k_minus_one():
    rng = np.random.default_rng(0)
    r = rng.normal(size=5).tolist()
    adv = episode_advantage(r, ["g"] * 5, "rloo")
    loo = [r[i] - (sum(r) - r[i]) / 4 for i in range(5)]
    assert adv == pytest.approx(loo)
    assert adv == pytest.approx([5 / 4 * (x - np.mean(r)) for x in r])
    assert sum(adv) == pytest.approx(0.0, abs=1e-12)


def test_drgrpo_is_mean_only():
    assert episode_advantage([1, 0, 0, 0], ["g"] * 4, "mean") == pytest.approx([0.75, -0.25, -0.25, -0.25])


@pytest.mark.parametrize("mode", ["std", "mean", "rloo"])
def test_singleton_group_rule_is_verls_raw_reward(mode):
    assert episode_advantage([0.3, 1.0, 0.0], ["solo", "g", "g"], mode)[0] == pytest.approx(0.3)


def test_reinforce_pp_baseline_whitens_over_tokens():
    r, g = [1, 0, 1, 1, 0, 0], ["a", "a", "a", "b", "b", "b"]
    tokens = [3, 1, 2, 5, 1, 1]
    adv = np.array(episode_advantage(r, g, "batch_whiten", weights=tokens))
    w = np.array(tokens, dtype=float)
    mean = (w * adv).sum() / w.sum()
    var = (w * (adv - mean) ** 2).sum() / (w.sum() - 1)
    assert mean == pytest.approx(0.0, abs=1e-9) and var == pytest.approx(1.0, rel=1e-6)
    centred = np.array(episode_advantage(r, g, "mean"))
    assert np.corrcoef(adv, centred)[0, 1] == pytest.approx(1.0)  # an affine map of R − mean_G


def test_turn_returns():
    assert turn_returns([0, 0, 1], 0.5) == [0.25, 0.5, 1.0]
    assert turn_returns([1, 2, 3], 1.0) == [6.0, 5.0, 3.0]
    assert turn_returns([], 0.9) == []


# --- GiGPO -------------------------------------------------------------------------------------------

GIGPO_REWARDS = [[0, 0, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0]]
GIGPO_ANCHORS = [["s1", "s2a", "s3a"], ["s1", "s2a", "s3a"], ["s1", "s2b", "s3b"], ["s1", "s2b", "s3b"]]


def test_gigpo_worked_example():
    adv = gigpo_advantages(GIGPO_REWARDS, ["x"] * 4, GIGPO_ANCHORS, gamma=0.95, omega=1.0, mode="mean_norm")
    episode_only = gigpo_advantages(GIGPO_REWARDS, ["x"] * 4, GIGPO_ANCHORS, omega=0.0)
    assert episode_only == [[0.5] * 3, [0.5] * 3, [-0.5] * 3, [-0.5] * 3]  # A^E identical on every step
    step = [[a - e for a, e in zip(ra, re)] for ra, re in zip(adv, episode_only)]
    assert step[0][0] == pytest.approx(0.45125) and step[2][0] == pytest.approx(-0.45125)
    assert all(s == pytest.approx(0.0) for row in step for s in row[1:])
    assert [row[0] for row in adv] == pytest.approx([0.95125, 0.95125, -0.95125, -0.95125])
    assert np.allclose([row[1:] for row in adv], [[0.5, 0.5], [0.5, 0.5], [-0.5, -0.5], [-0.5, -0.5]])


def test_gigpo_omega_std_mode_and_singleton_step_groups():
    anchors = [["s1", "u1", "v1"], ["s1", "u2", "v2"], ["s1", "u3", "v3"], ["s1", "u4", "v4"]]
    adv = gigpo_advantages(GIGPO_REWARDS, ["x"] * 4, anchors, omega=2.0, mode="mean_std_norm", eps=0.0)
    std = np.std([1, 1, 0, 0], ddof=1)                       # episode std = step std at s1 / 0.9025
    a_e = 0.5 / std
    a_s = 0.45125 / (0.9025 * std)                           # = a_e: std normalisation removes γ^2
    assert adv[0] == pytest.approx([a_e + 2 * a_s, a_e, a_e])  # later states are singletons: A^S = 0
    assert adv[3] == pytest.approx([-a_e - 2 * a_s, -a_e, -a_e])


def test_gigpo_step_groups_never_cross_task_groups():
    adv = gigpo_advantages([[1.0], [0.0]], ["t1", "t2"], [["same"], ["same"]], omega=1.0)
    assert adv == [[1.0], [0.0]]  # each task group is a singleton: A^E = R, A^S = 0


def test_gigpo_per_step_sample_episode_statistics():
    # one success of 1 turn, one failure of 3 turns: trajectory mean 0.5, step-sample mean 0.25
    rewards = [[1.0], [0.0, 0.0, 0.0]]
    anchors = [["a"], ["b", "c", "d"]]
    traj = gigpo_advantages(rewards, ["g", "g"], anchors, episode_stats="trajectory")
    step = gigpo_advantages(rewards, ["g", "g"], anchors, episode_stats="step")
    assert traj == [[0.5], [-0.5] * 3]
    assert step == [[0.75], [-0.25] * 3]


# --- the decisive-turn chain (§6.1): GRPO vs exact-value turn GAE vs GiGPO --------------------------------

def chain_episodes(rng, n, horizon, decisive, p_good=0.25):
    """Every action moves forward; only the action at `decisive` matters. Anchor = (t, trapped)."""
    rewards, anchors, good = [], [], []
    for _ in range(n):
        ok = bool(rng.random() < p_good)
        rewards.append([0.0] * (horizon - 1) + [1.0 if ok else 0.0])
        anchors.append([f"{t}:{'trapped' if (t > decisive and not ok) else 'ok'}" for t in range(horizon)])
        good.append(ok)
    return rewards, anchors, good


def exact_values(anchors, decisive, p_good=0.25):
    """V(s_t) under the sampling policy: p_good up to the decisive room, then 1 (good path) or 0 (trapped)."""
    return [[p_good if t <= decisive else (0.0 if a.endswith("trapped") else 1.0) for t, a in enumerate(row)]
            for row in anchors]


def test_decisive_turn_grpo_same_advantage_on_every_turn():
    rng = np.random.default_rng(1)
    rewards, anchors, _ = chain_episodes(rng, 8, 5, 2)
    batch = CreditBatch(["g"] * 8, rewards, [r[-1] for r in rewards], anchors)
    for row in estimate("grpo", batch):
        assert len(set(row)) == 1


def test_decisive_turn_exact_value_td_is_zero_except_at_the_decisive_turn():
    rng = np.random.default_rng(2)
    horizon, k = 6, 3
    rewards, anchors, good = chain_episodes(rng, 32, horizon, k)
    values = exact_values(anchors, k)
    adv = turn_gae_advantages(rewards, values, gamma=1.0, lam=0.0)  # A_t = r_t + γ V(s_{t+1}) − V(s_t)
    for row, ok in zip(adv, good):
        for t, a in enumerate(row):
            if t == k:
                assert a == pytest.approx(0.75 if ok else -0.25)
            else:
                assert abs(a) < 1e-6
    # λ = 1 is Monte Carlo: A_t = G_t − V(s_t), the outcome leaks onto the turns before the decision
    mc = turn_gae_advantages(rewards, values, gamma=1.0, lam=1.0)
    for row, ok in zip(mc, good):
        assert row[0] == pytest.approx((1.0 if ok else 0.0) - 0.25)
        assert all(abs(a) < 1e-6 for a in row[k + 1:])


def test_decisive_turn_gigpo_step_advantage_signs_and_non_decisive_means():
    rng = np.random.default_rng(3)
    horizon, k, group = 5, 2, 8
    by_action: dict[int, list[float]] = {0: [], 1: [], 2: [], 3: []}
    for _ in range(1500):
        actions = rng.integers(4, size=(group, horizon))  # action 0 is the good door at room k
        good = actions[:, k] == 0
        rewards = [[0.0] * (horizon - 1) + [1.0 if ok else 0.0] for ok in good]
        anchors = [[f"{t}:{'trapped' if (t > k and not ok) else 'ok'}" for t in range(horizon)] for ok in good]
        full = gigpo_advantages(rewards, ["g"] * group, anchors, omega=1.0)
        ep = gigpo_advantages(rewards, ["g"] * group, anchors, omega=0.0)
        step = np.array(full) - np.array(ep)
        if 0 < good.sum() < group:
            assert (step[good, k] > 0).all() and (step[~good, k] < 0).all()
        for i in range(group):
            by_action[int(actions[i, 0])].append(step[i, 0])  # a non-decisive room
    means = [np.mean(v) for v in by_action.values()]
    ses = [np.std(v) / math.sqrt(len(v)) for v in by_action.values()]
    for m, se in zip(means, ses):
        assert abs(m - np.mean(means)) < 4 * max(ses)  # same conditional mean for every action
    assert max(ses) > 0  # A^S at a non-decisive state is Monte-Carlo noise, not zero


# --- GAE ---------------------------------------------------------------------------------------------

def test_gae_hand_values():
    # δ = [0 + 0.9*0.5 − 0.2, 1 + 0 − 0.5] = [0.25, 0.5]; A = [0.25 + 0.9*0.8*0.5, 0.5]
    assert gae([0.0, 1.0], [0.2, 0.5], gamma=0.9, lam=0.8) == pytest.approx([0.61, 0.5])


def test_token_gae_skipping_env_tokens_equals_compressed_sequence():
    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0]], dtype=torch.float32)
    values = torch.randn(mask.shape, generator=g)
    rewards = torch.randn(mask.shape, generator=g) * mask  # rewards live on action tokens (turn ends)
    adv, returns = token_gae(rewards, values, mask, gamma=0.97, lam=0.9)
    keep = mask[0].bool()
    compressed = gae(rewards[0, keep].tolist(), values[0, keep].tolist(), 0.97, 0.9)
    assert adv[0, keep].tolist() == pytest.approx(compressed, abs=1e-6)
    assert returns[0, keep].tolist() == pytest.approx((adv[0, keep] + values[0, keep]).tolist(), abs=1e-6)
    # padding after the last action token (nothing follows) stays 0
    assert adv[0, -2:].tolist() == [0.0, 0.0]


def test_bilevel_gae_hand_values():
    # two turns of 2 tokens; turn rewards [0, 1]; token values; γ_H = 0.5, λ_H = 1, low level γ = λ = 1
    values = [9.0, 0.1, 0.2, 9.0, 0.3, 0.4]  # positions 0 and 3 are env tokens (ignored)
    out = bilevel_gae_tokens([0.0, 1.0], [(1, 3), (4, 6)], values, high_gamma=0.5)
    g2 = 1.0                                   # turn 2: δ = 1 − 0.4, G = A + V(eos) = 1
    g1 = 0.0 + 0.5 * 0.4 - 0.2 + 0.5 * (1 - 0.4) + 0.2  # turn 1: A = δ1 + γ_H A2, G = A + V(eos_1) = 0.5
    assert out == pytest.approx([0.0, g1 - 0.1, g1 - 0.2, 0.0, g2 - 0.3, g2 - 0.4])


def test_turn_gae_estimator_needs_values_and_whitens():
    batch = CreditBatch(["g", "g"], [[0.0, 1.0], [0.0, 0.0]], [1.0, 0.0], [["a", "b"], ["a", "c"]])
    with pytest.raises(ValueError, match="turn_values"):
        estimate("turn_gae", batch)
    batch.turn_values = [[0.5, 0.9], [0.5, 0.1]]
    raw = estimate("turn_gae", batch, CreditConfig(whiten_gae=False, lam=0.0))
    assert np.allclose(raw, [[0.4, 0.1], [-0.4, -0.1]])
    white = np.array(estimate("turn_gae", batch, CreditConfig(lam=0.0))).ravel()
    assert white.mean() == pytest.approx(0.0, abs=1e-9) and white.std(ddof=1) == pytest.approx(1.0, rel=1e-4)
    bilevel = estimate("bilevel_gae", batch, CreditConfig(whiten_gae=False, lam=0.0, high_level_gamma=1.0))
    assert np.allclose(bilevel, raw)  # at turn granularity bi-level GAE is the high-level GAE


# --- MT-GRPO and min-form ------------------------------------------------------------------------------

def test_mt_grpo_split():
    turn_r, outcome = [1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]
    adv = mt_grpo_advantages(turn_r, outcome, [1, 2, 1, None], [3, 3, 2, 2], ["g"] * 4, lam=1.0, eps=0.0)
    a_t = (np.array(turn_r) - 0.5) / np.std(turn_r, ddof=1)
    a_o = (np.array(outcome) - 0.5) / np.std(outcome, ddof=1)
    merged = np.array(turn_r) + np.array(outcome)
    a_m = (merged - merged.mean()) / merged.std(ddof=1)
    assert adv[0] == pytest.approx([a_o[0] + a_t[0], a_o[0], a_o[0]])        # split after turn 0
    assert adv[1] == pytest.approx([a_o[1] + a_t[1], a_o[1] + a_t[1], a_o[1]])  # split after turn 1
    assert adv[2] == pytest.approx([a_o[2] + a_t[2], a_o[2]])
    assert adv[3] == pytest.approx([a_m[3], a_m[3]])                        # no tool result: merged GRPO


def test_min_form_values():
    assert min_form_softmax([0.9, -0.5, 0.9], 0.1) == pytest.approx([-0.5, -0.5, 7.5e-7], abs=5e-6)
    assert min_form_softmax([0.9, -0.5, 0.9], 0.1)[2] == pytest.approx(7.48e-7, rel=1e-2)
    assert min_form_exact([0.9, -0.5, 0.9]) == [-0.5, -0.5, 0.9]
    assert min_form_softmax([0.3, 0.8, 0.5], 1e-3)[0] == pytest.approx(0.3, abs=1e-9)  # T -> 0: total = min
    shaped = apply_min_form(CreditBatch(["g"], [[0.9, -0.5, 0.9]], [0.0], [["a", "b", "c"]]), "min_form_exact")
    assert turn_returns(shaped.turn_rewards[0], 1.0) == pytest.approx([-0.5, -0.5, 0.9])
    soft = apply_min_form(CreditBatch(["g"], [[0.9, -0.5, 0.9]], [0.0], [["a", "b", "c"]]), "min_form_softmax")
    assert turn_returns(soft.turn_rewards[0], 1.0) == pytest.approx(min_form_softmax([0.9, -0.5, 0.9]))


# --- registry, records, broadcast -------------------------------------------------------------------------

def test_registry_names_and_unknown():
    assert {"grpo", "drgrpo", "rloo", "reinforce_pp", "turn_returns", "gigpo", "turn_gae", "bilevel_gae",
            "mt_grpo"} <= set(ESTIMATORS)
    with pytest.raises(KeyError, match="unknown credit estimator"):
        estimate("nope", CreditBatch(["g"], [[1.0]], [1.0], [["a"]]))


def test_turn_returns_estimator_group_baseline_per_turn_index():
    batch = CreditBatch(["g", "g"], [[0.0, 1.0], [0.0, 0.0]], [1.0, 0.0], [["a", "b"], ["a", "c"]])
    assert np.allclose(estimate("turn_returns", batch, CreditConfig(gamma=0.5)), [[0.25, 0.5], [-0.25, -0.5]])


def _record(eid, group, turns, outcome):
    return EpisodeRecord(episode_id=eid, env_id="e", task_id="t", split="train", seed=0, group_id=group,
                         turns=turns, reward=sum(t.reward for t in turns), outcome_reward=outcome, success=outcome > 0)


def _turn(i, text, reward, ok=True):
    return TurnRecord(turn=i, observation=[{"role": "user", "content": text}], action={"role": "assistant"},
                      action_text="", reward=reward, info={"calls": [{"name": "f", "ok": ok}]},
                      token_ids=[1] * (i + 2))


def test_credit_batch_from_records():
    recs = [_record("a", "g1", [_turn(0, "room 1", 0.1, ok=False), _turn(1, "room 2", 1.0)], 1.0),
            _record("b", "g1", [_turn(0, "room 1", 0.0, ok=False), _turn(1, "room 9", 0.0, ok=False)], 0.0)]
    batch = CreditBatch.from_records(recs)
    assert batch.group_ids == ["g1", "g1"]
    assert batch.turn_rewards == [[0.1, 1.0], [0.0, 0.0]]
    assert batch.outcome_rewards == [1.0, 0.0]
    assert batch.anchor_keys[0][0] == batch.anchor_keys[1][0] != batch.anchor_keys[0][1]
    assert batch.anchor_keys[0][1] == anchor_key([{"role": "user", "content": "room 2"}])
    assert batch.split_turns == [2, None]
    assert batch.token_counts == [[2, 3], [2, 3]]
    assert batch.returns == pytest.approx([1.1, 0.0])


def test_broadcast_turn_to_tokens_zero_outside_actions():
    turn_index = torch.tensor([[-1, 0, 0, -1, 1, -1], [-1, -1, 0, 0, -1, -1]])
    out = broadcast_turn_to_tokens([[0.5, -2.0], [3.0]], turn_index)
    assert out.tolist() == [[0.0, 0.5, 0.5, 0.0, -2.0, 0.0], [0.0, 0.0, 3.0, 3.0, 0.0, 0.0]]


def test_weighted_whiten_unweighted_matches_numpy():
    x = [1.0, 2.0, 4.0]
    assert weighted_whiten(x, eps=0.0) == pytest.approx(((np.array(x) - np.mean(x)) / np.std(x, ddof=1)).tolist())
