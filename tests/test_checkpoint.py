"""Checkpoints: atomic, pruned to the newest K, and a restore that continues training bit for bit; metrics never repeat a step."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from agentgym.trainers.checkpoint import (CheckpointManager, ResumableSampler, latest_checkpoint, list_checkpoints)
from agentgym.trainers.metrics import MetricsLogger, read_metrics


def _mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))


def _setup(seed: int = 0):
    model = _mlp(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    return model, opt, sched


def _train_step(model, opt, sched, sampler, data):
    """One step that uses every RNG a trainer touches: data order, dropout (torch), python and numpy noise."""
    idx = sampler.next_batch()
    x, y = data[0][idx], data[1][idx]
    noise = random.random() * 1e-3 + float(np.random.rand()) * 1e-3
    loss = ((model(x).squeeze(-1) - y) ** 2).mean() + noise
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    return idx


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(20, 8, generator=g), torch.randn(20, generator=g)


def test_restore_continues_exactly_like_an_uninterrupted_run(tmp_path):
    data = _data()
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    model, opt, sched = _setup()
    sampler = ResumableSampler(20, 6, seed=3)
    straight = [_train_step(model, opt, sched, sampler, data) for _ in range(10)]
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    model, opt, sched = _setup()
    sampler = ResumableSampler(20, 6, seed=3)
    ckpt = CheckpointManager(tmp_path, every=4, keep=2)
    seen = []
    for step in range(1, 7):
        seen.append(_train_step(model, opt, sched, sampler, data))
        if ckpt.due(step):
            ckpt.save(step, model, opt, sched, sampler_state=sampler.state_dict(), extra={"note": "mid-run"})
    # the process "dies" after step 6: everything in memory is lost, steps 5-6 are redone from step 4
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    model, opt, sched = _setup(seed=7)
    sampler = ResumableSampler(20, 6, seed=3)
    restored = CheckpointManager(tmp_path, every=4, keep=2).restore(model, opt, sched)
    assert restored is not None and restored.step == 4 and restored.extra == {"note": "mid-run"}
    sampler.load_state_dict(restored.sampler_state)
    resumed = seen[:4] + [_train_step(model, opt, sched, sampler, data) for _ in range(restored.step, 10)]
    assert resumed == straight  # same batches, none lost or repeated
    for k, v in model.state_dict().items():
        assert torch.equal(v, expected[k]), k
    assert sched.get_last_lr() == pytest.approx([1e-2 * 0.5 ** 3])


def test_keeps_only_the_newest_k_and_ignores_half_written_ones(tmp_path):
    model, opt, sched = _setup()
    ckpt = CheckpointManager(tmp_path, every=1, keep=2)
    for step in (1, 2, 3):
        ckpt.save(step, model, opt, sched)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 3]
    # a crash mid-save leaves a temporary dir, or a step dir without meta.json: neither counts
    (tmp_path / "checkpoints" / ".tmp-step-00000004-123").mkdir()
    (tmp_path / "checkpoints" / "step-00000005").mkdir()
    assert latest_checkpoint(tmp_path).name == "step-00000003"
    CheckpointManager(tmp_path, every=1, keep=2)  # a new run sweeps the temporaries
    assert not (tmp_path / "checkpoints" / ".tmp-step-00000004-123").exists()
    meta = json.loads((latest_checkpoint(tmp_path) / "meta.json").read_text())
    assert meta["step"] == 3 and meta["metrics_offset"] == 3
    assert CheckpointManager(tmp_path / "fresh", every=1).restore(model) is None


def test_hf_model_round_trips_through_save_pretrained_with_tied_embeddings(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    path = CheckpointManager(tmp_path, every=1).save(1, model)
    assert (path / "model" / "config.json").is_file() and list((path / "model").glob("*.safetensors"))
    torch.manual_seed(1)
    other = LlamaForCausalLM(config)
    CheckpointManager(tmp_path, every=1).restore(other)
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k
    assert other.lm_head.weight.data_ptr() == other.model.embed_tokens.weight.data_ptr()  # still tied


def test_sampler_state_is_checked_against_the_data():
    s = ResumableSampler(5, 2, seed=0)
    first = [s.next_batch() for _ in range(5)]  # 10 draws = two full epochs of 5, each a permutation
    assert sorted(first[0] + first[1] + first[2][:1]) == [0, 1, 2, 3, 4]
    state = s.state_dict()
    t = ResumableSampler(5, 2, seed=0)
    t.load_state_dict(state)
    assert [t.next_batch() for _ in range(3)] == [s.next_batch() for _ in range(3)]
    with pytest.raises(ValueError, match="data changed"):
        ResumableSampler(6, 2, seed=0).load_state_dict(state)


def test_metrics_resume_drops_steps_logged_after_the_checkpoint(tmp_path):
    with MetricsLogger(tmp_path, resume_step=0, tensorboard=False) as m:
        for step in range(1, 8):
            m.log(step, {"loss": 1.0 / step, "batch": [step]})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 8, "loss": 0.1')  # killed mid-write: a torn line
    with MetricsLogger(tmp_path, resume_step=5, tensorboard=False) as m:  # the checkpoint was at step 5
        with pytest.raises(ValueError, match="each step is logged once"):
            m.log(5, {"loss": 0.0})
        for step in range(6, 9):
            m.log(step, {"loss": -float(step)})
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert rows[5]["loss"] == -6.0 and rows[4]["loss"] == pytest.approx(0.2)


def test_tensorboard_events_are_written_and_purged_on_resume(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricsLogger(tmp_path, resume_step=0) as m:
        for step in range(1, 5):
            m.log(step, {"loss": float(step), "batch": [1, 2]})
    with MetricsLogger(tmp_path, resume_step=2) as m:
        m.log(3, {"loss": 30.0})
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(1, 1.0), (2, 2.0), (3, 30.0)]
