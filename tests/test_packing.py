"""Packing records into token rows, the one-position log-prob shift, and the loss mask as autograd sees it."""

from __future__ import annotations

import pytest
import torch

from agentgym.records import EpisodeRecord, TurnRecord
from agentgym.trainers.logprobs import gather_logprobs, token_logprobs
from agentgym.trainers.losses import agg_loss, ppo_clip_loss, tis_weights
from agentgym.trainers.packing import pack_episodes
from agentgym.trainers.value_head import (TurnValueHead, last_hidden_states, predict_turn_values, turn_state_positions,
                                          value_loss)

PAD = 0


def chained_episode() -> EpisodeRecord:
    """Turn 0: prompt [5 6 7] -> action [10 11]; env tokens [20 21]; turn 1 -> action [12 13 14]."""
    t0 = TurnRecord(turn=0, observation=[{"role": "user", "content": "s0"}], action={}, action_text="", reward=0.0,
                    prompt_token_ids=[5, 6, 7], token_ids=[10, 11], logprobs=[-0.1, -0.2], loss_mask_spans=[(3, 5)])
    t1 = TurnRecord(turn=1, observation=[{"role": "user", "content": "s1"}], action={}, action_text="", reward=1.0,
                    prompt_token_ids=[5, 6, 7, 10, 11, 20, 21], token_ids=[12, 13, 14], logprobs=[-0.3, -0.4, -0.5],
                    loss_mask_spans=[(3, 5), (7, 10)])
    return EpisodeRecord(episode_id="e0", env_id="x", task_id="t", split="train", seed=0, turns=[t0, t1],
                         reward=1.0, outcome_reward=1.0, success=True)


def unchained_episode() -> EpisodeRecord:
    """Each turn is its own sequence (a text policy re-rendered the prompt)."""
    t0 = TurnRecord(turn=0, observation=[], action={}, action_text="", reward=0.0, prompt_token_ids=[5, 6],
                    token_ids=[30], logprobs=[-1.0], loss_mask_spans=[(2, 3)])
    t1 = TurnRecord(turn=1, observation=[], action={}, action_text="", reward=0.0, prompt_token_ids=[5, 6, 31, 22],
                    token_ids=[32, 33], logprobs=[-2.0, -3.0], loss_mask_spans=[(4, 6)])
    return EpisodeRecord(episode_id="e1", env_id="x", task_id="t", split="train", seed=0, turns=[t0, t1],
                         reward=0.0, outcome_reward=0.0, success=False)


def test_chained_episode_is_one_row_with_model_tokens_masked_in():
    batch = pack_episodes([chained_episode()], [[0.5, -1.5]], pad_id=PAD)
    assert batch.input_ids.tolist() == [[5, 6, 7, 10, 11, 20, 21, 12, 13, 14]]
    assert batch.loss_mask.tolist() == [[0, 0, 0, 1, 1, 0, 0, 1, 1, 1]]
    assert batch.turn_index.tolist() == [[-1, -1, -1, 0, 0, -1, -1, 1, 1, 1]]
    assert batch.advantages.tolist() == [[0, 0, 0, 0.5, 0.5, 0, 0, -1.5, -1.5, -1.5]]
    assert batch.rollout_logprobs[0].tolist() == pytest.approx([0, 0, 0, -0.1, -0.2, 0, 0, -0.3, -0.4, -0.5])
    assert batch.attention_mask.tolist() == [[1] * 10]
    assert batch.row_turns == [[0, 1]] and batch.episode_index.tolist() == [0]


def test_unchained_episode_gives_one_row_per_turn_with_padding():
    batch = pack_episodes([unchained_episode(), chained_episode()], [[2.0, 3.0], [0.5, -1.5]], pad_id=PAD)
    assert len(batch) == 3 and batch.episode_index.tolist() == [0, 0, 1]
    assert batch.input_ids[0].tolist() == [5, 6, 30] + [PAD] * 7
    assert batch.attention_mask[0].tolist() == [1, 1, 1] + [0] * 7
    assert batch.loss_mask[0].tolist() == [0, 0, 1] + [0] * 7
    assert batch.advantages[1].tolist() == [0, 0, 0, 0, 3.0, 3.0] + [0] * 4
    assert batch.turn_index[1].tolist() == [-1, -1, -1, -1, 1, 1] + [-1] * 4
    assert batch.num_tokens == 1 + 2 + 5
    assert batch.select([2]).input_ids.tolist() == pack_episodes([chained_episode()], [[0, 0]], PAD).input_ids.tolist()


def test_retokenised_history_is_refused():
    ep = chained_episode()
    ep.turns[1].prompt_token_ids = [5, 6, 7, 10, 99, 20, 21]  # the stored action was re-tokenised differently
    with pytest.raises(ValueError, match="re-tokenised"):
        pack_episodes([ep], [[0.0, 0.0]], PAD)
    ep = chained_episode()
    ep.turns[1].logprobs = [-0.3]
    with pytest.raises(ValueError, match="does not match"):
        pack_episodes([ep], [[0.0, 0.0]], PAD)


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=48, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).float().eval()


def test_token_logprobs_shift_and_chunking(tiny_model):
    batch = pack_episodes([unchained_episode(), chained_episode()], [[0, 0], [0, 0]], pad_id=PAD)
    with torch.no_grad():
        lp = token_logprobs(tiny_model, batch.input_ids, batch.attention_mask)
        logits = tiny_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    manual = torch.log_softmax(logits.float(), -1)
    row = 2
    for j in range(1, 10):  # logits at j−1 predict token j
        assert float(lp[row, j]) == pytest.approx(float(manual[row, j - 1, batch.input_ids[row, j]]), abs=1e-5)
    assert (lp[:, 0] == 0).all()
    assert (lp[0, 3:] == 0).all()  # padding positions get 0
    with torch.no_grad():
        chunked = token_logprobs(tiny_model, batch.input_ids, batch.attention_mask, chunk_size=1)
    assert torch.allclose(lp, chunked, atol=1e-5)
    assert torch.allclose(gather_logprobs(logits[:, :-1], batch.input_ids[:, 1:]),
                          manual[:, :-1].gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1), atol=1e-5)


def test_gradient_reaches_only_logits_that_predict_model_tokens(tiny_model):
    batch = pack_episodes([unchained_episode(), chained_episode()], [[1.0, -1.0], [0.5, -1.5]], pad_id=PAD)
    captured = {}

    def keep_logits(module, inputs, output):
        output.retain_grad()
        captured["logits"] = output

    handle = tiny_model.lm_head.register_forward_hook(keep_logits)
    try:
        logp = token_logprobs(tiny_model, batch.input_ids, batch.attention_mask)
    finally:
        handle.remove()
    old = logp.detach() - 0.05  # a ratio slightly above 1, inside the clip band
    weights = tis_weights(old, batch.rollout_logprobs, batch.loss_mask)
    loss = ppo_clip_loss(logp, old, batch.advantages, batch.loss_mask)
    agg_loss(loss.per_token * weights, batch.loss_mask, "token-mean").backward()
    grad = captured["logits"].grad.abs().sum(-1)  # [B, L]: gradient reaching the logits at each position
    predicts_model_token = torch.zeros_like(batch.loss_mask, dtype=torch.bool)
    predicts_model_token[:, :-1] = batch.loss_mask[:, 1:].bool()
    assert (grad[~predicts_model_token] == 0).all()  # env, prompt, template and pad tokens: exactly zero
    assert (grad[predicts_model_token] > 0).all()
    # chained row (index 2): position 6 is the last env token and predicts turn 1's first action token
    assert batch.input_ids[2, 6] == 21 and batch.loss_mask[2, 7] == 1
    assert grad[2, 6] > 0 and grad[2, 4] == 0 and grad[2, 5] == 0  # 11 -> 20 and 20 -> 21 are env predictions
    assert (weights[batch.loss_mask == 0] == 1).all()


def test_value_head_reads_the_last_prompt_token_of_each_turn(tiny_model):
    batch = pack_episodes([unchained_episode(), chained_episode()], [[0, 0], [0, 0]], pad_id=PAD)
    where = turn_state_positions(batch)
    assert where == [(0, 1, 0, 0), (1, 3, 0, 1), (2, 2, 1, 0), (2, 6, 1, 1)]
    head = TurnValueHead(64)
    hidden = last_hidden_states(tiny_model, batch)
    values, table = predict_turn_values(head, hidden, batch, [2, 2])
    assert values.shape == (4,) and values.requires_grad
    assert table[1][1] == pytest.approx(float(head.net(hidden[2, 6]).detach()), abs=1e-6)


def test_value_head_fits_turn_returns_and_value_clipping(tiny_model):
    batch = pack_episodes([unchained_episode(), chained_episode()], [[0, 0], [0, 0]], pad_id=PAD)
    hidden = last_hidden_states(tiny_model, batch)
    assert not hidden.requires_grad  # the trunk is frozen by default
    torch.manual_seed(0)
    head = TurnValueHead(64, inner=32)
    targets = torch.tensor([0.0, 0.0, 1.0, 1.0])  # turn returns (γ = 1) in turn_state_positions order
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(300):
        values, _ = predict_turn_values(head, hidden, batch, [2, 2])
        loss = value_loss(values, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, table = predict_turn_values(head, hidden, batch, [2, 2])
    assert torch.allclose(torch.tensor(table), torch.tensor([[0.0, 0.0], [1.0, 1.0]]), atol=0.05)
    # PPO value clipping: a move from old 0 to 1 clipped at 0.2 against target 1 -> ½ max(0², 0.8²) = 0.32
    clipped = value_loss(torch.tensor([1.0]), torch.tensor([1.0]), old_values=torch.tensor([0.0]), clip=0.2)
    assert float(clipped) == pytest.approx(0.32)
