"""Q-value critic: chain-MDP closed forms, double-Q bias, CQL, expectiles, Polyak, and text critics on records."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agentgym.records import EpisodeRecord, TurnRecord
from agentgym.trainers.features import HashingBagOfWords, HiddenStateEncoder, make_featurizer
from agentgym.trainers.qvalue import (QCritic, QValueConfig, TextCritic, TransitionBatch, TwinHeads,
                                      clipped_double_q_target, double_q_target, expectile_loss,
                                      fit_critic_from_records, load_critic, max_q_target, polyak_update,
                                      transitions_from_records)

# --- chain MDP: states 0..N-1, actions left (0) / right (1), reward 1 on right from N-1 (terminal) -------------

N, GAMMA = 5, 0.9


def chain_batch(repeats: int = 2) -> TransitionBatch:
    eye_s, eye_sa = torch.eye(N), torch.eye(2 * N)
    rows = []
    for _ in range(repeats):  # a uniform behaviour policy: every (s, a) equally often
        for s in range(N):
            for a in (0, 1):
                terminal = s == N - 1 and a == 1
                nxt = max(s - 1, 0) if a == 0 else min(s + 1, N - 1)
                rows.append((s, a, 1.0 if terminal else 0.0, terminal, nxt))
    s = torch.tensor([r[0] for r in rows])
    a = torch.tensor([r[1] for r in rows])
    nxt = torch.tensor([r[4] for r in rows])
    next_cand = torch.stack([eye_sa[2 * nxt], eye_sa[2 * nxt + 1]], dim=1)
    return TransitionBatch(sa=eye_sa[2 * s + a], s=eye_s[s], reward=torch.tensor([r[2] for r in rows]),
                           done=torch.tensor([float(r[3]) for r in rows]), next_s=eye_s[nxt],
                           next_cand_sa=next_cand, next_cand_mask=torch.ones(len(rows), 2, dtype=torch.bool))


def tabular_q(critic: QCritic) -> np.ndarray:
    """Q[s, a] read off the (one-hot) critic, twins reduced with min."""
    return critic.q_values(torch.eye(2 * N)).reshape(N, 2).numpy()


def test_chain_td_max_with_target_network_matches_closed_form_optimum():
    cfg = QValueConfig(gamma=GAMMA, hidden=(), backup="max", lr=0.05, tau=0.1, batch_size=1000)
    critic = QCritic(2 * N, N, cfg)
    critic.fit(chain_batch(), epochs=1500)
    q_star = np.zeros((N, 2))
    for i in range(N):
        q_star[i, 1] = GAMMA ** (N - 1 - i)
        q_star[i, 0] = GAMMA ** (N - i + 1) if i >= 1 else GAMMA ** N
    assert np.abs(tabular_q(critic) - q_star).max() < 1e-2


def test_chain_in_sample_backup_matches_the_behaviour_policy_q():
    cfg = QValueConfig(gamma=GAMMA, hidden=(), backup="in_sample", expectile=0.5, lr=0.05, tau=0.1, batch_size=1000)
    critic = QCritic(2 * N, N, cfg)
    critic.fit(chain_batch(), epochs=1500)
    # Q^β(s, a) = r + γ (1 − d) · ½ Σ_a' Q^β(s', a'): solve the linear Bellman system
    a_mat, b = np.eye(2 * N), np.zeros(2 * N)
    for s in range(N):
        for a in (0, 1):
            i = 2 * s + a
            if s == N - 1 and a == 1:
                b[i] = 1.0
                continue
            nxt = max(s - 1, 0) if a == 0 else s + 1
            a_mat[i, 2 * nxt] -= GAMMA / 2
            a_mat[i, 2 * nxt + 1] -= GAMMA / 2
    q_beta = np.linalg.solve(a_mat, b).reshape(N, 2)
    q = tabular_q(critic)
    assert np.abs(q - q_beta).max() < 1e-2
    assert q[0, 1] < GAMMA ** (N - 1) - 0.1  # and not the optimum: the two backups really differ


# --- double-Q bias (van Hasselt's example) ----------------------------------------------------------------


def test_double_q_removes_the_max_bias_and_clipped_is_below_double():
    g = torch.Generator().manual_seed(0)
    seeds, actions, m = 20_000, 10, 5
    q1 = torch.randn(seeds, actions, m, generator=g).mean(-1)  # true Q = 0 for every action
    q2 = torch.randn(seeds, actions, m, generator=g).mean(-1)
    t_max, t_double, t_clip = max_q_target(q1), double_q_target(q1, q2), clipped_double_q_target(q1, q2)
    se = float(t_double.std() / math.sqrt(seeds))
    assert float(t_max.mean()) == pytest.approx(0.69, abs=0.02)
    assert abs(float(t_double.mean())) < 3 * se
    assert bool((t_clip <= t_double + 1e-7).all())
    assert float(t_max.mean() - t_double.mean()) > 0.5
    assert float(torch.minimum(q1, q2).max(-1).values.mean()) == pytest.approx(0.30, abs=0.03)  # min before max: biased


# --- CQL, expectiles, Polyak --------------------------------------------------------------------------------


def bandit_batch(rewards: list[float], cand: int) -> TransitionBatch:
    """One state; data actions 0..len(rewards)-1 with fixed rewards; candidates 0..cand-1 (the rest never in data)."""
    eye = torch.eye(cand)
    n = len(rewards)
    rows = torch.arange(n).repeat(4)
    return TransitionBatch(sa=eye[rows], s=torch.ones(len(rows), 1), reward=torch.tensor(rewards)[rows],
                           done=torch.ones(len(rows)), next_s=torch.zeros(len(rows), 1),
                           cand_sa=eye.expand(len(rows), cand, cand).clone(),
                           cand_mask=torch.ones(len(rows), cand, dtype=torch.bool))


def test_cql_keeps_an_unseen_action_below_the_seen_ones_and_the_plain_estimate():
    batch = bandit_batch([1.0, 0.5], cand=3)  # action 2 is never taken
    q = {}
    for alpha in (0.0, 1.0):
        critic = QCritic(3, 1, QValueConfig(hidden=(16,), cql_alpha=alpha, lr=0.02, batch_size=100, seed=3))
        critic.fit(batch, epochs=150)
        q[alpha] = critic.q_values(torch.eye(3)).numpy()
    assert q[1.0][2] < q[1.0][0] and q[1.0][2] < q[1.0][1]
    assert q[1.0][2] <= q[0.0][2]
    assert q[0.0][0] == pytest.approx(1.0, abs=0.05)


def test_expectile_loss_minimisers():
    data = torch.tensor([0.0, 0.5, 1.0])
    for tau, want in ((0.5, 0.5), (0.99, 0.995 / 1.01)):
        v = torch.zeros((), requires_grad=True)
        opt = torch.optim.LBFGS([v], lr=0.5, max_iter=200)

        def closure():
            opt.zero_grad()
            loss = expectile_loss(data - v, tau)
            loss.backward()
            return loss

        opt.step(closure)
        assert float(v.detach()) == pytest.approx(want, abs=1e-4)


def test_critic_v_head_learns_the_expectile_of_in_sample_q():
    for tau, want in ((0.5, 0.5), (0.99, 0.985)):
        critic = QCritic(3, 1, QValueConfig(hidden=(), expectile=tau, lr=0.05, tau=0.2, batch_size=100))
        critic.fit(bandit_batch([0.0, 0.5, 1.0], cand=3), epochs=800)
        assert float(critic.v_values(torch.ones(1, 1))[0]) == pytest.approx(want, abs=1e-2)


def test_polyak_update_is_exact():
    torch.manual_seed(0)
    online, target = TwinHeads(4, 3, (5,)), TwinHeads(4, 3, (5,))
    before = [p.clone() for p in target.parameters()]
    polyak_update(target, online, 0.3)
    for t, o, b in zip(target.parameters(), online.parameters(), before):
        assert torch.allclose(t, 0.3 * o + 0.7 * b, atol=1e-7)
    polyak_update(target, online, 1.0)
    assert all(torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters()))


# --- text critics on episode records ------------------------------------------------------------------------


def _record(question: str, answer: str, success: bool, i: int) -> EpisodeRecord:
    action = {"role": "assistant", "content": f"answer {answer}"}
    return EpisodeRecord(episode_id=f"e{i}", env_id="test", task_id=question, split="train", seed=i, group_id=question,
                         first_observation=[{"role": "user", "content": f"question {question}"}],
                         turns=[TurnRecord(turn=0, observation=[{"role": "user", "content": f"question {question}"}],
                                           action=action, action_text=action["content"], reward=float(success),
                                           terminated=True)],
                         reward=float(success), outcome_reward=float(success), success=success, termination="submitted")


def test_offline_text_critic_ranks_the_rewarded_action_and_round_trips(tmp_path):
    import json

    records = [_record(q, a, a == good, i)
               for i, (q, good) in enumerate([("alpha", "red"), ("beta", "blue"), ("gamma", "green")] * 3)
               for a in ("red", "blue", "green")]
    path = tmp_path / "episodes.jsonl"
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    trs = transitions_from_records(records)
    assert len(trs) == len(records) and all(t.done for t in trs)
    assert sorted(trs[0].candidates) == ["answer blue", "answer green", "answer red"]  # actions seen at that state
    out = fit_critic_from_records([path], tmp_path / "critic", QValueConfig(epochs=150, hidden=(64,), lr=3e-3,
                                                                            featurizer={"kind": "bow", "dim": 256}))
    critic = load_critic(out)
    msgs = [{"role": "user", "content": "question beta"}]
    acts = [{"role": "assistant", "content": f"answer {c}"} for c in ("red", "blue", "green")]
    q = critic.score(msgs, acts)
    assert int(np.argmax(q)) == 1
    fresh = TextCritic(critic.featurizer, critic.cfg, critic.critic)
    assert fresh.score(msgs, acts) == pytest.approx(q)
    metrics = critic.update(trs[:4])  # one online step
    assert set(metrics) >= {"q_loss", "v_loss", "loss"}


# --- featurizers ------------------------------------------------------------------------------------------


def test_bag_of_words_is_deterministic_and_normalised():
    f = make_featurizer({"kind": "bow", "dim": 64})
    a, b = f.encode(["SELECT name FROM t", "select NAME from T"]), HashingBagOfWords(64).encode(["select name from t"])
    assert torch.allclose(a[0], a[1]) and torch.allclose(a[0], b[0])
    assert float(a[0].norm()) == pytest.approx(1.0)


def test_hidden_state_encoder_mean_pools_layer_k_of_a_causal_lm():
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate("select name from t where x".split())}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    cfg = transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    enc = HiddenStateEncoder(model, tokenizer, layer=1)
    feats = enc.encode(["select name from t", "select name", "select name from t"])
    assert feats.shape == (3, 64) and torch.allclose(feats[0], feats[2])
    ids = torch.tensor([tokenizer("select name")["input_ids"]])
    want = model(input_ids=ids, output_hidden_states=True).hidden_states[1].mean(1)[0]
    assert torch.allclose(feats[1], want, atol=1e-5)
