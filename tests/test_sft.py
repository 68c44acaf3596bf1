"""SFT warm-up on real oracle SQL episodes: the loss sees assistant tokens only, it learns, it memorises, and kill -9 loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import agentgym
from agentgym.policy import PolicyAction
from agentgym.records import EpisodeWriter
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs
from agentgym.trainers.checkpoint import latest_checkpoint, list_checkpoints
from agentgym.trainers.config import SFTConfig, load_config
from agentgym.trainers.metrics import read_metrics
from agentgym.policy import PolicyObservation
from agentgym.trainers.sft import accumulate_gradients, load_records, prompt_builder, tokenize_episode, train_sft

ENV = "agentgym/sql-v0"
TINY = dict(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256, vocab_size=2048)


class ExploreThenSubmit:
    """A privileged scripted policy: list the tables, run the gold query, submit it (a 3-turn SQL transcript)."""

    name = "explore-then-submit"
    privileged = True

    async def act(self, observation, tools):
        query = json.loads(observation.oracle_action["tool_calls"][0]["function"]["arguments"])["query"]
        name, q = [("execute_sql", "SELECT name FROM sqlite_master WHERE type = 'table'"),
                   ("execute_sql", query), ("submit_sql", query)][min(observation.turn, 2)]
        return PolicyAction(message={"role": "assistant", "content": None, "tool_calls": [{
            "id": f"c{observation.turn}", "type": "function",
            "function": {"name": name, "arguments": json.dumps({"query": q})}}]})


def _rollouts(policy, task_ids):
    async def run():
        engine = RolloutEngine(lambda: agentgym.make(ENV), policy, RolloutConfig(concurrency=2))
        return await engine.run(make_jobs(task_ids))
    return asyncio.run(run())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Oracle episodes of 3 train tasks (2 to train on, 1 held out), a 3-turn transcript, tools and a tiny model."""
    from agentgym.policies.tiny_model import build_tiny_model
    from agentgym.policy import make_policy

    root = tmp_path_factory.mktemp("sft")
    env = agentgym.make(ENV)
    candidates = _rollouts(make_policy("oracle"), [t.id for t in asyncio.run(env.aload_suite()).tasks("train")][:60])
    # the shortest prompt of three database families: cheap on a shared 2-core machine, and the model must read
    # the prompt to tell the tasks apart
    by_family: dict[str, object] = {}
    for r in sorted(candidates, key=lambda r: sum(len(m["content"]) for m in r.first_observation)):
        by_family.setdefault(r.task_info["family"], r)
    oracle = list(by_family.values())[:3]
    tasks = [r.task_id for r in oracle]
    assert all(r.success and r.num_turns == 1 for r in oracle)
    three = _rollouts(ExploreThenSubmit(), tasks[:1])[0]
    assert three.success and three.num_turns == 3
    train_file, dev_file = root / "train.jsonl", root / "dev.jsonl"
    with EpisodeWriter(train_file) as w:
        for r in oracle[:2]:
            w.write(r)
    with EpisodeWriter(dev_file) as w:
        w.write(oracle[2])
    texts = [m.get("content") or "" for r in oracle + [three] for t in r.turns for m in t.observation]
    model = build_tiny_model(root / "model", texts, **TINY)
    return {"root": root, "tools": list(env.tools), "oracle": oracle, "three": three, "model": model,
            "train": train_file, "dev": dev_file}


def _tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _spans(mask):
    spans, start = [], None
    for i, m in enumerate(mask + [0]):
        if m and start is None:
            start = i
        if not m and start is not None:
            spans.append((start, i))
            start = None
    return spans


def test_loss_mask_covers_exactly_the_assistant_tokens_of_a_three_turn_transcript(data):
    tok = _tokenizer(data["model"])
    record, tools = data["three"], data["tools"]
    ep = tokenize_episode(record, tok, tools)
    spans = _spans(ep.loss_mask)
    assert len(spans) == 3                                   # one span per action, nothing else
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    messages = []
    for (start, end), turn in zip(spans, record.turns):
        messages += turn.observation
        # what precedes each span is the prompt the token policy sends: template + generation prompt
        prompt = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
        assert tok.decode(ep.input_ids[:start]) == prompt
        # the span is the assistant turn as the template renders it, through the <|im_end|> that ends it
        body = tok.apply_chat_template(messages + [turn.action], tools=tools, tokenize=False)[len(prompt):]
        assert tok.decode(ep.input_ids[start:end]) + "\n" == body
        assert ep.input_ids[end - 1] == im_end
        messages.append(turn.action)
    # first-turn prompt ids are exactly the template's own tokenisation (what the policy sends at turn 0)
    first = tok.apply_chat_template(record.first_observation, tools=tools, add_generation_prompt=True)
    first = first["input_ids"] if isinstance(first, dict) or hasattr(first, "keys") else first
    assert ep.input_ids[:spans[0][0]] == list(first)
    # every system / user / tool-response token is masked
    masked_text = tok.decode([t for t, m in zip(ep.input_ids, ep.loss_mask) if not m])
    unmasked_text = tok.decode([t for t, m in zip(ep.input_ids, ep.loss_mask) if m])
    assert "<|im_start|>system" in masked_text and "<tool_response>" in masked_text and "Question:" in masked_text
    assert "<tool_response>" not in unmasked_text and "<|im_start|>" not in unmasked_text
    assert unmasked_text.count("<tool_call>") == 3 and unmasked_text.count("<|im_end|>") == 3


def test_token_policy_records_are_trained_on_their_exact_ids(data):
    """A chained token-policy episode carries its own ids and spans: SFT uses them as recorded, not re-rendered."""
    tok = _tokenizer(data["model"])
    rendered = tokenize_episode(data["three"], tok, data["tools"])
    record = data["three"].__class__.from_json(data["three"].to_json())
    spans = _spans(rendered.loss_mask)
    for turn, (start, end) in zip(record.turns, spans):   # what the rollout engine stores for a token policy
        turn.prompt_token_ids, turn.token_ids = rendered.input_ids[:start], rendered.input_ids[start:end]
        turn.loss_mask_spans = spans[:turn.turn + 1]
    record.turns[-1].token_ids = record.turns[-1].token_ids[:-1] + [tok.pad_token_id]  # sampled ids differ...
    exact = tokenize_episode(record, tok, data["tools"])
    assert exact.input_ids[-1] == tok.pad_token_id                    # ...and training sees what was sampled
    assert exact.input_ids[:-1] == rendered.input_ids[:-1] and exact.loss_mask == rendered.loss_mask


def test_gradient_accumulation_equals_the_full_batch_gradient(data):
    from transformers import AutoModelForCausalLM

    tok = _tokenizer(data["model"])
    episodes = [tokenize_episode(r, tok, data["tools"]) for r in data["oracle"][:2]]
    grads = []
    for micro in (1, 2):
        model = AutoModelForCausalLM.from_pretrained(data["model"])
        cfg = SFTConfig(model="m", train_data=["x"], batch_size=2, micro_batch_size=micro)
        loss, n = accumulate_gradients(model, episodes, tok.pad_token_id, cfg)
        grads.append((loss, n, [p.grad.clone() for p in model.parameters()]))
    (l1, n1, g1), (l2, n2, g2) = grads
    assert n1 == n2 == sum(e.num_target_tokens for e in episodes) - 0  # first token never targeted here
    assert l1 == pytest.approx(l2, rel=1e-5)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def sft_run(data):
    cfg = SFTConfig(model=str(data["model"]), train_data=[str(data["train"])], dev_data=[str(data["dev"])],
                    run_dir=str(data["root"] / "run"), steps=40, batch_size=2, micro_batch_size=1,
                    lr=1e-2, warmup_steps=5,
                    checkpoint_every=20, keep_checkpoints=1, tensorboard=False)
    return cfg, train_sft(cfg, tools=data["tools"])


def test_sft_loss_decreases_on_oracle_transcripts(sft_run):
    cfg, result = sft_run
    rows = read_metrics(cfg.run_dir)
    losses = [r["loss"] for r in rows]
    assert [r["step"] for r in rows] == list(range(1, 41))
    assert sum(losses[-5:]) / 5 < 0.25 * sum(losses[:5]) / 5
    assert losses[0] > 5.0                                   # random init: ~log(vocab)
    assert rows[-1]["dev/loss"] == pytest.approx(result.dev_loss)  # held-out loss is measured and logged
    assert [s for s, _ in list_checkpoints(cfg.run_dir)] == [40] and load_config(cfg.run_dir) == cfg


def test_sft_model_reproduces_the_oracle_first_action(sft_run, data):
    from transformers import AutoModelForCausalLM

    from agentgym.policies.chat_template import assistant_message_from_text

    _, result = sft_run
    tok = _tokenizer(result.model_dir)
    model = AutoModelForCausalLM.from_pretrained(result.model_dir).eval()
    policy = prompt_builder(tok)           # the token policy's own first-turn prompt
    for record in data["oracle"][:2]:      # the train tasks
        ids = policy.build_prompt(PolicyObservation(messages=record.first_observation, turn=0, episode_id="e",
                                                    env_id=ENV, task_id=record.task_id), data["tools"])
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=96, do_sample=False)
        generated = out[0, len(ids):].tolist()
        assert generated[-1] == tok.eos_token_id             # it stops where the oracle's turn ends
        message, has_calls = assistant_message_from_text(tok.decode(generated, skip_special_tokens=True))
        want = record.turns[0].action["tool_calls"][0]["function"]
        assert has_calls and message["tool_calls"][0]["function"]["name"] == want["name"]
        assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == json.loads(want["arguments"])


def _sft_args(data, run_dir, steps):
    return ["--model", str(data["model"]), "--train-data", str(data["train"]), "--dev-data", str(data["dev"]),
            "--run-dir", str(run_dir), "--steps", str(steps), "--batch-size", "1", "--micro-batch-size", "1",
            "--lr", "1e-3", "--checkpoint-every", "2", "--keep-checkpoints", "2", "--no-tensorboard",
            "--eval-every", "3", "--seed", "5"]


# `python -m agentgym.trainers.sft ARGS` that, once checkpoint N (argv[1]) is written, says so and waits to be killed
HOLD_AFTER_CHECKPOINT = """
import runpy, sys, threading
from agentgym.trainers.checkpoint import CheckpointManager

hold_at, save = int(sys.argv[1]), CheckpointManager.save

def save_then_hold(self, step, *args, **kwargs):
    path = save(self, step, *args, **kwargs)
    if step == hold_at:
        print(f"holding after checkpoint {step}", flush=True)
        threading.Event().wait()
    return path

CheckpointManager.save = save_then_hold
sys.argv = ["agentgym.trainers.sft", *sys.argv[2:]]
runpy.run_module("agentgym.trainers.sft", run_name="__main__")
"""


def test_kill_9_mid_training_then_resume_equals_an_uninterrupted_run(data):
    from agentgym.trainers.config import config_from_args

    steps = 8
    straight = config_from_args(SFTConfig, _sft_args(data, data["root"] / "straight", steps))
    train_sft(straight, tools=data["tools"])
    # the same run in a subprocess, SIGKILLed once checkpoint 4 is on disk: the run holds there until killed,
    # so where it dies does not depend on how fast the machine is
    run_dir = data["root"] / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(data["root"] / "killed.stderr", "w+") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", HOLD_AFTER_CHECKPOINT, "4", *_sft_args(data, run_dir, steps)],
                                stdout=subprocess.PIPE, stderr=stderr, env=env, text=True)
        try:
            line = proc.stdout.readline()
            stderr.seek(0)
            assert line == "holding after checkpoint 4\n", stderr.read()[-2000:]
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    killed_at = int(latest_checkpoint(run_dir).name.split("-")[1])
    assert killed_at == 4 and [s for s, _ in list_checkpoints(run_dir)] == [2, 4]
    # resume = run the same command again
    resumed = config_from_args(SFTConfig, _sft_args(data, run_dir, steps))
    result = train_sft(resumed, tools=data["tools"])
    assert result.resumed_from == killed_at and result.step == steps
    a, b = read_metrics(straight.run_dir), read_metrics(run_dir)
    assert [r["step"] for r in b] == list(range(1, steps + 1))            # each step exactly once
    assert [r["batch"] for r in b] == [r["batch"] for r in a]             # no lost or repeated batches
    assert [r["loss"] for r in b] == pytest.approx([r["loss"] for r in a], rel=1e-5)
    dev = [(r["step"], r["dev/loss"]) for r in a if "dev/loss" in r]
    assert [r["step"] for r in b if "dev/loss" in r] == [s for s, _ in dev] == [3, 6, 8]
    assert [r["dev/loss"] for r in b if "dev/loss" in r] == pytest.approx([v for _, v in dev], rel=1e-5)
    from safetensors.torch import load_file

    want, got = load_file(str(Path(straight.run_dir) / "final" / "model.safetensors")), \
        load_file(str(Path(run_dir) / "final" / "model.safetensors"))
    assert want.keys() == got.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-6)


def test_records_missing_or_failed_are_handled(data, tmp_path):
    failed = data["oracle"][0].__class__.from_json({**data["oracle"][0].to_json(), "success": False})
    path = tmp_path / "mixed.jsonl"
    with EpisodeWriter(path) as w:
        w.write(failed)
        w.write(data["oracle"][1])
    assert [r.task_id for r in load_records([path], only_successful=True)] == [data["oracle"][1].task_id]
    assert len(load_records([path], only_successful=False)) == 2
    from agentgym.trainers.config import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        load_records([tmp_path / "nope.jsonl"], only_successful=True)
