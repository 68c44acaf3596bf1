"""LoRA (PEFT) fine-tuning and bf16 on CPU with a tiny Llama: only the adapters train, exports are plain merged
weights that load unchanged, checkpoints resume exactly, the RL update and KL reference work on adapters."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from agentgym.errors import MissingExtraError  # noqa: E402
from agentgym.policies.tiny_model import build_tiny_model  # noqa: E402
from agentgym.records import EpisodeRecord, TurnRecord  # noqa: E402
from agentgym.trainers import lora  # noqa: E402
from agentgym.trainers.checkpoint import CheckpointManager  # noqa: E402
from agentgym.trainers.config import RLConfig, SFTConfig, build_config  # noqa: E402
from agentgym.trainers.metrics import read_metrics  # noqa: E402
from agentgym.trainers.packing import pack_episodes  # noqa: E402
from agentgym.trainers.rl import policy_update, save_weights_for_sync  # noqa: E402
from agentgym.trainers.sft import train_sft  # noqa: E402

HIDDEN, LAYERS, HEADS, KV_HEADS, INTERMEDIATE = 64, 2, 4, 2, 128
ADAPTED = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _conversations(n: int = 4) -> list[tuple[str, str]]:
    return [(f"What is {i} plus {i}?", f"The answer is {2 * i}. Done.") for i in range(n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    texts = [f"{q} {a}" for q, a in _conversations(8)] * 10
    return build_tiny_model(tmp_path_factory.mktemp("lora") / "model", texts, hidden_size=HIDDEN, num_layers=LAYERS,
                            num_heads=HEADS, num_kv_heads=KV_HEADS, intermediate_size=INTERMEDIATE, vocab_size=600)


def _records(n: int = 4) -> list[EpisodeRecord]:
    out = []
    for i, (question, answer) in enumerate(_conversations(n)):
        action = {"role": "assistant", "content": answer}
        out.append(EpisodeRecord(episode_id=f"e{i}", env_id="test", task_id=f"t{i}", split="train", seed=i,
                                 first_observation=[{"role": "user", "content": question}],
                                 turns=[TurnRecord(turn=0, observation=[], action=action, action_text=answer,
                                                   reward=1.0)],
                                 reward=1.0, success=True, termination="submitted"))
    return out


def _sft_config(tiny: Path, run_dir: Path, **overrides) -> SFTConfig:
    layer = {"model": str(tiny), "train_data": ["unused.jsonl"], "run_dir": str(run_dir), "steps": 6,
             "batch_size": 4, "micro_batch_size": 2, "lr": 5e-3, "checkpoint_every": 3, "tensorboard": False,
             "max_seq_len": 256, **overrides}
    return build_config(SFTConfig, layer)  # type: ignore[return-value]


def _load(tiny: Path, dtype=torch.float32):
    return AutoModelForCausalLM.from_pretrained(tiny, dtype=dtype)


def _ids(tiny: Path) -> torch.Tensor:
    tok = AutoTokenizer.from_pretrained(tiny)
    rows = [tok.encode(f"{q} {a}", add_special_tokens=False)[:16] for q, a in _conversations(2)]
    width = min(map(len, rows))
    return torch.tensor([r[:width] for r in rows])


# --- (a) apply_lora ------------------------------------------------------------------------------

def test_apply_lora_trains_exactly_the_rank_r_adapters_of_the_targeted_modules(tiny):
    model = _load(tiny)
    base_names = {n for n, _ in model.named_parameters()}
    ids = _ids(tiny)
    with torch.no_grad():
        before = model(input_ids=ids).logits.clone()
    wrapped = lora.apply_lora(model, lora.LoraSettings(rank=4, alpha=8.0))
    assert lora.is_lora(wrapped) and not lora.is_lora(_load(tiny))
    assert wrapped.training is False  # the mode of the model is kept

    trainable = {n: p for n, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert lora.trainable_parameters(wrapped) == list(trainable.values())
    frozen = [n for n, p in wrapped.named_parameters() if not p.requires_grad]
    assert len(frozen) == len(base_names)  # every original weight is frozen, none is lost
    # rank 4 on (in, out) linear layers: A is r x in, B is out x r. head_dim = 64 / 4 = 16, so k/v project to
    # 2 kv heads x 16 = 32; the MLP is 64 <-> 128. Per layer: q 4(64+64) + k 4(64+32) + v 4(64+32) + o 4(64+64)
    # + gate 4(64+128) + up 4(64+128) + down 4(128+64) = 512 + 384 + 384 + 512 + 768 + 768 + 768 = 4096.
    assert sum(p.numel() for p in trainable.values()) == 2 * 4096
    assert len(trainable) == LAYERS * len(ADAPTED) * 2
    # B starts at zero: the wrapped model computes exactly what the base did
    with torch.no_grad():
        assert torch.equal(wrapped(input_ids=ids).logits, before)

    only_qv = lora.apply_lora(_load(tiny), lora.LoraSettings(rank=2, target_modules=("q_proj", "v_proj")))
    # rank 2: q 2(64+64) + v 2(64+32) = 448 per layer
    assert sum(p.numel() for p in lora.trainable_parameters(only_qv)) == 2 * 448


def test_apply_lora_refuses_bad_settings_and_names_the_extra_when_peft_is_missing(tiny, monkeypatch):
    with pytest.raises(ValueError, match="do not fit this model"):
        lora.apply_lora(_load(tiny), lora.LoraSettings(rank=4, target_modules=("no_such_proj",)))
    with pytest.raises(ValueError, match="rank >= 1"):
        lora.apply_lora(_load(tiny), lora.LoraSettings(rank=0))
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft now raises ImportError
    with pytest.raises(MissingExtraError, match=r"agentgym\[train\]"):
        lora.apply_lora(_load(tiny), lora.LoraSettings(rank=4))


def test_lora_config_fields_are_validated():
    cfg = build_config(RLConfig, {"model": "m", "lora_rank": "8", "lora_targets": "q_proj,v_proj"})
    assert cfg.lora_rank == 8 and cfg.lora_targets == ["q_proj", "v_proj"]
    settings = lora.LoraSettings.from_config(cfg)
    assert settings == lora.LoraSettings(rank=8, alpha=16.0, dropout=0.0, target_modules=("q_proj", "v_proj"))
    assert build_config(SFTConfig, {"model": "m", "train_data": ["a"]}).lora_rank == 0  # full fine-tuning
    from agentgym.trainers.config import ConfigError

    with pytest.raises(ConfigError, match="lora_rank = -1: must be >= 0"):
        build_config(RLConfig, {"model": "m", "lora_rank": -1})
    with pytest.raises(ConfigError, match="lora_targets is empty"):
        build_config(RLConfig, {"model": "m", "lora_rank": 4, "lora_targets": []})


# --- (b) an SFT run with LoRA --------------------------------------------------------------------

def _adapter_model(tiny: Path, checkpoint: Path, rank: int = 4):
    model = lora.apply_lora(_load(tiny), lora.LoraSettings(rank=rank))
    lora.load_adapter(model, checkpoint / "model" / lora.ADAPTER_DIR)
    return model.eval()


def test_lora_sft_learns_and_exports_merged_weights_that_load_as_a_plain_model(tiny, tmp_path):
    result = train_sft(_sft_config(tiny, tmp_path / "run", lora_rank=4, lr=1e-2), tools=[], train_records=_records(),
                       dev_records=[])
    losses = [row["loss"] for row in read_metrics(tmp_path / "run")]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5  # ~6.5 (uniform over 600 tokens) to ~5.75

    final = result.model_dir
    assert (final / "model.safetensors").is_file() and (final / "config.json").is_file()
    assert not (final / "adapter_config.json").exists()  # plain weights: servers load them as they are
    keys = set(load_file(str(final / "model.safetensors")))
    assert keys and not any("lora" in k or "base_layer" in k for k in keys)

    # the in-memory peft model at the last step (its adapter, saved with the last checkpoint) computes what the
    # merged export does
    peft_model = _adapter_model(tiny, tmp_path / "run" / "checkpoints" / "step-00000006")
    plain = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32).eval()
    ids = _ids(tiny)
    with torch.no_grad():
        expected, got = peft_model(input_ids=ids).logits, plain(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)

    # training moved the adapted projections only; every other weight is the base model's, bit for bit
    base = dict(_load(tiny).state_dict())
    exported = dict(plain.state_dict())
    assert exported.keys() == base.keys()
    for name, tensor in base.items():
        if any(f".{m}." in name for m in ADAPTED):
            assert not torch.equal(exported[name], tensor), name
        else:
            assert torch.equal(exported[name], tensor), name
    # and the frozen base inside the peft model was never touched (no in-place merge)
    for name, tensor in peft_model.get_base_model().state_dict().items():
        if ".lora_" not in name:
            assert torch.equal(tensor, base[name.replace(".base_layer.", ".")]), name


# --- (c) checkpoints -----------------------------------------------------------------------------

def test_lora_checkpoint_round_trip_restores_adapters_and_optimizer_exactly(tiny, tmp_path):
    settings = lora.LoraSettings(rank=4)
    model = lora.apply_lora(_load(tiny), settings)
    optimizer = torch.optim.AdamW(lora.trainable_parameters(model), lr=1e-2)
    ids = _ids(tiny)
    for _ in range(2):
        optimizer.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
    manager = CheckpointManager(tmp_path / "run", every=1)
    path = manager.save(2, model, optimizer)
    assert (path / "model" / "config.json").is_file()                          # servable merged weights
    assert (path / "model" / lora.ADAPTER_DIR / "adapter_config.json").is_file()  # and the adapter

    fresh = lora.apply_lora(_load(tiny), settings)
    fresh_opt = torch.optim.AdamW(lora.trainable_parameters(fresh), lr=1e-2)
    assert not all(torch.equal(a, b) for a, b in zip(lora.trainable_parameters(fresh),
                                                      lora.trainable_parameters(model)))
    restored = manager.restore(fresh, fresh_opt)
    assert restored is not None and restored.step == 2
    want, got = model.state_dict(), fresh.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    a, b = optimizer.state_dict(), fresh_opt.state_dict()
    assert a["param_groups"] == b["param_groups"] and a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(a["state"][i][key], b["state"][i][key])

    # a checkpoint with other LoRA settings, or none, is refused instead of silently training something else
    with pytest.raises(ValueError, match="has r = 4, this model 8"):
        manager.restore(lora.apply_lora(_load(tiny), lora.LoraSettings(rank=8)))
    full = CheckpointManager(tmp_path / "full", every=1)
    full.save(1, _load(tiny))
    with pytest.raises(FileNotFoundError, match="full fine-tuning"):
        full.restore(lora.apply_lora(_load(tiny), settings))


def test_lora_sft_resumed_from_a_checkpoint_equals_an_uninterrupted_run(tiny, tmp_path):
    records = _records()
    straight = _sft_config(tiny, tmp_path / "straight", lora_rank=4, steps=4, checkpoint_every=2, lora_dropout=0.1)
    train_sft(straight, tools=[], train_records=records, dev_records=[])
    first = _sft_config(tiny, tmp_path / "resumed", lora_rank=4, steps=2, checkpoint_every=2, lora_dropout=0.1)
    train_sft(first, tools=[], train_records=records, dev_records=[])
    second = _sft_config(tiny, tmp_path / "resumed", lora_rank=4, steps=4, checkpoint_every=2, lora_dropout=0.1)
    assert train_sft(second, tools=[], train_records=records, dev_records=[]).resumed_from == 2

    def adapter(run: str) -> dict:
        return load_file(str(tmp_path / run / "checkpoints" / "step-00000004" / "model" / lora.ADAPTER_DIR
                             / "adapter_model.safetensors"))

    def optimizer_state(run: str) -> dict:
        path = tmp_path / run / "checkpoints" / "step-00000004" / "trainer_state.pt"
        return torch.load(path, weights_only=False)["optimizer"]["state"]

    a, b = adapter("straight"), adapter("resumed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = optimizer_state("straight"), optimizer_state("resumed")
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    losses = {run: [r["loss"] for r in read_metrics(tmp_path / run)] for run in ("straight", "resumed")}
    assert losses["straight"] == losses["resumed"] and len(losses["straight"]) == 4


# --- (d) bf16 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("rank", [0, 4])
def test_bf16_sft_runs_with_finite_loss_and_exports_bf16_weights(tiny, tmp_path, rank):
    cfg = _sft_config(tiny, tmp_path / "run", dtype="bfloat16", lora_rank=rank, steps=2, checkpoint_every=2)
    result = train_sft(cfg, tools=[], train_records=_records(), dev_records=_records(2))
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    assert result.dev_loss is not None and torch.isfinite(torch.tensor(result.dev_loss))
    weights = load_file(str(result.model_dir / "model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}


# --- the RL update on adapters -------------------------------------------------------------------

def _rl_batch(tiny: Path):
    """Two synthetic single-turn episodes (prompt + 6 sampled tokens), packed as the RL loop packs rollouts."""
    ids = _ids(tiny).tolist()
    records = []
    for i, row in enumerate(ids):
        turn = TurnRecord(turn=0, observation=[], action={}, action_text="", reward=float(i),
                          prompt_token_ids=row[:-6], token_ids=row[-6:], logprobs=[-3.0] * 6)
        records.append(EpisodeRecord(episode_id=f"e{i}", env_id="test", task_id="t", split="train", seed=i,
                                     turns=[turn], reward=float(i), success=bool(i)))
    tok = AutoTokenizer.from_pretrained(tiny)
    return pack_episodes(records, [[1.0], [-1.0]], tok.pad_token_id)


def test_rl_update_with_lora_and_kl_reference_moves_only_adapters_and_syncs_merged_weights(tiny, tmp_path):
    cfg = build_config(RLConfig, {"model": str(tiny), "lora_rank": 4, "kl_coef": 0.1, "lr": 1e-2,
                                  "micro_batch_size": 1, "ppo_epochs": 2})
    model = lora.apply_lora(_load(tiny), lora.LoraSettings.from_config(cfg))
    ref = lora.reference_model(model)
    assert isinstance(ref, lora.AdaptersDisabled)  # the base with adapters off, not a second copy
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapters = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(lora.trainable_parameters(model), lr=cfg.lr)
    batch = _rl_batch(tiny)
    stats = policy_update(model, optimizer, batch, cfg, ref)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert stats["kl"] > 0  # epoch 2 sees a policy that moved away from the reference
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert n in adapters
        else:
            assert torch.equal(p, frozen[n]), n
    assert any(not torch.equal(p, adapters[n]) for n, p in model.named_parameters() if p.requires_grad)

    ids = batch.input_ids
    base = _load(tiny).eval()
    synced = save_weights_for_sync(model, AutoTokenizer.from_pretrained(tiny), tmp_path / "run", 1)
    assert not (synced / "adapter_config.json").exists()
    served = AutoModelForCausalLM.from_pretrained(synced, dtype=torch.float32).eval()
    with torch.no_grad():
        assert torch.equal(ref(input_ids=ids).logits, base(input_ids=ids).logits)  # the reference is the base
        assert torch.allclose(served(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5, rtol=0)
        assert not torch.allclose(served(input_ids=ids).logits, base(input_ids=ids).logits, atol=1e-3)


def test_rl_update_runs_in_bf16(tiny):
    cfg = build_config(RLConfig, {"model": str(tiny), "dtype": "bfloat16", "kl_coef": 0.1, "micro_batch_size": 2})
    model = _load(tiny, torch.bfloat16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    stats = policy_update(model, optimizer, _rl_batch(tiny), cfg, lora.reference_model(model))
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())


# --- the RL loop end to end with LoRA and a KL reference -----------------------------------------

async def test_train_rl_with_lora_exports_plain_weights_and_resumes_from_the_adapter(tmp_path):
    """train_rl's wiring: adapters + adapters-off KL reference, merged weights to the server, resume.

    (An untrained tiny policy earns the same reward in every episode, so the updates carry no signal here;
    that an update's merged weights equal the trained model is checked by the policy_update test above.)
    """
    import json

    import agentgym
    from agentgym.policies.hf_server import HFServer
    from agentgym.policies.token_policy import TokenPolicy
    from agentgym.trainers.rl import TrainTask, train_rl

    env_id = "agentgym/corridor-v0"
    texts = ["You walk down a corridor of 6 rooms. call move(direction) north east south west"] * 20
    model_dir = build_tiny_model(tmp_path / "model", texts, hidden_size=64, num_layers=2, num_heads=2,
                                 num_kv_heads=1, intermediate_size=128, vocab_size=600)
    env = agentgym.make(env_id, split="train", horizon=1)
    try:
        tasks = [TrainTask(t.id, t.family) for t in (await env.aload_suite()).tasks("train")]
    finally:
        await env.aclose()
    layer = {"model": str(model_dir), "env_id": env_id, "run_dir": str(tmp_path / "rl"), "algo": "grpo", "steps": 2,
             "tasks_per_step": 2, "group_size": 2, "micro_batch_size": 2, "lr": 1e-2, "max_tokens": 8,
             "group_filter": "none", "checkpoint_every": 1, "tensorboard": False, "concurrency": 4,
             "lora_rank": 4, "kl_coef": 0.05}

    async def run(cfg: RLConfig) -> None:
        async with HFServer(model_dir, max_model_len=1024) as server:
            async with TokenPolicy(model_dir, server.base_url, temperature=1.0, max_tokens=8,
                                   max_model_len=1024) as policy:
                await train_rl(cfg, env_factory=lambda: agentgym.make(env_id, split="train", horizon=1),
                               tasks=tasks, policy=policy, sync_weights=server.load_weights)

    await run(build_config(RLConfig, layer))
    checkpoint = tmp_path / "rl" / "checkpoints" / "step-00000002" / "model"
    assert (checkpoint / lora.ADAPTER_DIR / "adapter_config.json").is_file() and (checkpoint / "config.json").is_file()
    await run(build_config(RLConfig, {**layer, "steps": 3}))  # restores the adapter, syncs the merged checkpoint
    rows = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and [r["model_version"] for r in rows] == [1, 2, 2]
    assert all(r["logprob_gap"] < 1e-3 and r["kept_episodes"] > 0 for r in rows)  # the server serves the export
    exports = [tmp_path / "rl" / "final", *(tmp_path / "rl" / "weights").glob("step-*")]
    assert len(exports) == 3
    for weights in exports:  # plain weights only: what HF and vLLM servers load
        assert not (weights / "adapter_config.json").exists()
        assert not any("lora" in k or "base_layer" in k for k in load_file(str(weights / "model.safetensors")))
        AutoModelForCausalLM.from_pretrained(weights)
