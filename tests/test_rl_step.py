"""One RL step's wiring, in seconds and without a server: a scripted token policy plays the real corridor env,
then ``step(state)`` must carry the estimator's parameters into the advantages, move the weights, hand the
new weights to the sync callback, write a checkpoint, and give the same numbers for the same seed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
import yaml  # noqa: E402

import agentgym  # noqa: E402
from agentgym.collect import Collector, LocalCollector  # noqa: E402
from agentgym.envs.corridor.env import DIRECTIONS, SYSTEM_PROMPT, move_call, room_text  # noqa: E402
from agentgym.policies.chat_template import assistant_message_from_text  # noqa: E402
from agentgym.policies.tiny_model import build_tiny_model  # noqa: E402
from agentgym.policies.token_policy import TokenPolicy  # noqa: E402
from agentgym.policy import PolicyAction, PolicyObservation  # noqa: E402
from agentgym.trainers.config import (ConfigError, RLConfig, build_config, config_from_args,  # noqa: E402
                                      load_config, save_config)
from agentgym.trainers.rl import RLState, TrainTask, setup, step  # noqa: E402

ENV = "agentgym/corridor-v0"
HORIZON = 3
ROLLOUT_LOGPROB = -6.0  # what the scripted "server" reports for every token it emits
TIMING_KEYS = {"rollout_s", "step_s"}


class ScriptedTokenPolicy(TokenPolicy):
    """Answers like a token server without one: the good door on even job seeds, a wrong door on odd ones.

    The prompt ids come from ``TokenPolicy.build_prompt`` (chained across turns, as in training); the emitted
    ids are the move call's tokens plus EOS, each with log-prob ``ROLLOUT_LOGPROB``.
    """

    privileged = True  # reads the env's good door, to succeed or fail on purpose

    def __init__(self, model_dir: Path):
        super().__init__(model_dir, "http://127.0.0.1:9", max_model_len=1024)  # the URL is never contacted

    async def act(self, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]]) -> PolicyAction:
        prompt = self.build_prompt(observation, tools)
        good = json.loads(str(observation.oracle_action).removeprefix("<tool_call>").removesuffix("</tool_call>"))
        door = good["arguments"]["direction"]
        if (observation.seed or 0) % 2:
            door = "east" if door != "east" else "south"
        text = move_call(door)
        ids = self.encode(text) + [self.tokenizer.eos_token_id]
        message, _ = assistant_message_from_text(text, observation.turn)
        return PolicyAction(message=message, token_ids=ids, logprobs=[ROLLOUT_LOGPROB] * len(ids),
                            prompt_token_ids=prompt, finish_reason="stop", model_version=0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A 2-layer model whose tokenizer learnt the corridor's prompt, tool schema and calls (short rows, fast steps)."""
    env = agentgym.make(ENV, horizon=HORIZON)
    texts = [SYSTEM_PROMPT.format(horizon=HORIZON), json.dumps(list(env.tools)),
             *(room_text(room, HORIZON, trapped) for room in range(HORIZON) for trapped in (False, True)),
             *(move_call(door) for door in DIRECTIONS)] * 20
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts, hidden_size=64, num_layers=2,
                            num_heads=2, num_kv_heads=1, intermediate_size=128, vocab_size=1000)


@pytest.fixture(scope="module")
def tasks() -> list[TrainTask]:
    return [TrainTask(t.id, t.family) for t in agentgym.suite(ENV, horizon=HORIZON).tasks("train")]


class Sync:
    """The weight-sync callback: remembers every directory it was given; returns the new version."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    async def __call__(self, path: Path) -> int:
        self.paths.append(path)
        return len(self.paths)


async def start(tiny: Path, tasks: list[TrainTask], run_dir: Path, **overrides: Any) -> tuple[RLState, Sync]:
    layer = {"model": str(tiny), "env_id": ENV, "run_dir": str(run_dir), "algo": "gigpo", "steps": 2,
             "tasks_per_step": 2, "group_size": 4, "micro_batch_size": 8, "lr": 1e-3, "checkpoint_every": 1,
             "tensorboard": False, "curriculum": False, **overrides}
    cfg = build_config(RLConfig, layer)
    collector = LocalCollector(lambda: agentgym.make(ENV, split="train", horizon=HORIZON), ScriptedTokenPolicy(tiny),
                               concurrency=8)
    sync = Sync()
    return await setup(cfg, tasks=tasks, collector=collector, sync_weights=sync), sync  # type: ignore[arg-type]


async def one_step(tiny: Path, tasks: list[TrainTask], run_dir: Path, **overrides: Any) -> dict[str, Any]:
    state, _ = await start(tiny, tasks, run_dir, **overrides)
    try:
        return await step(state)
    finally:
        state.close()


def test_local_collector_is_a_collector(tiny):
    assert isinstance(LocalCollector(lambda: agentgym.make(ENV), ScriptedTokenPolicy(tiny)), Collector)


async def test_a_step_updates_the_weights_syncs_them_and_writes_a_checkpoint(tiny, tasks, tmp_path):
    state, sync = await start(tiny, tasks, tmp_path / "rl")
    before = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
    try:
        row = await step(state)
    finally:
        state.close()
    assert row["updated"] and row["kept_episodes"] > 0 and row["tokens"] > 0
    assert 0.0 < row["train/success"] < 1.0  # even seeds succeed, odd seeds fail: groups carry signal
    after = state.model.state_dict()
    assert max(float((after[k] - before[k]).abs().max()) for k in before) > 1e-5  # the optimizer stepped
    # the sync callback got the new weights' directory, and those are exactly the trained weights
    assert sync.paths == [tmp_path / "rl" / "weights" / "step-00000001"]
    assert state.version == 1 and row["model_version"] == 1
    from safetensors.torch import load_file

    synced = load_file(str(sync.paths[0] / "model.safetensors"))
    assert all(torch.equal(synced[k], after[k]) for k in synced)
    checkpoint = tmp_path / "rl" / "checkpoints" / "step-00000001"
    assert json.loads((checkpoint / "meta.json").read_text())["step"] == 1
    assert (checkpoint / "model" / "model.safetensors").is_file()
    rows = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]


async def test_gigpo_gamma_and_omega_reach_the_advantages_and_the_loss(tiny, tasks, tmp_path):
    """Corridor episodes end at turn 3 with reward 1 (success) or 0, all from one first room: at turn 0,
    ``A = A^E + ω A^S = (R − mean_G R) + ω γ² (R − mean_G R)``, so mean |A_0| scales with 1 + ω γ²."""
    low = await one_step(tiny, tasks, tmp_path / "g05", credit={"gigpo_gamma": 0.5})
    high = await one_step(tiny, tasks, tmp_path / "g09", credit={"gigpo_gamma": 0.9})
    episode_only = await one_step(tiny, tasks, tmp_path / "w0", credit={"gigpo_gamma": 0.5, "gigpo_omega": 0.0})
    assert low["train/success"] == high["train/success"]  # the same rollouts (scripted policy, same seed)
    assert high["adv_turn/0"] / low["adv_turn/0"] == pytest.approx((1 + 0.9**2) / (1 + 0.5**2), rel=1e-6)
    assert low["adv_turn/0"] / episode_only["adv_turn/0"] == pytest.approx(1 + 0.5**2, rel=1e-6)
    assert high["loss"] != pytest.approx(low["loss"], rel=1e-3)


def test_a_parameter_the_estimator_does_not_read_is_a_config_error(tiny):
    with pytest.raises(ConfigError, match="gamma, which --algo gigpo does not read"):
        build_config(RLConfig, {"model": str(tiny), "algo": "gigpo", "credit": {"gamma": 0.9}})
    with pytest.raises(ConfigError, match="unknown credit estimator.*known: bilevel_gae"):
        build_config(RLConfig, {"model": str(tiny), "algo": "gipgo"})


def test_credit_parameters_layer_key_by_key_and_the_saved_config_keeps_only_those_read(tmp_path):
    yaml_file = tmp_path / "rl.yaml"
    yaml_file.write_text("algo: turn_gae\ncredit:\n  lam: 0.9\n  gamma: 0.99\n")
    cfg = config_from_args(RLConfig, ["--config", str(yaml_file), "--model", "m", "--run-dir", str(tmp_path / "run"),
                                      "--credit", "gamma=0.5", "--credit", "whiten_gae=false"])
    assert (cfg.credit.gamma, cfg.credit.lam, cfg.credit.whiten_gae) == (0.5, 0.9, False)  # flags win per key
    save_config(cfg)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["credit"] == {"gamma": 0.5, "lam": 0.9, "whiten_gae": False}  # turn_gae's parameters, no others
    assert load_config(tmp_path / "run") == cfg


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in TIMING_KEYS}


async def test_the_same_seed_gives_the_same_step_and_deterministic_kernels_only_while_training(tiny, tasks, tmp_path):
    """turn_gae initialises a critic from torch's RNG, so its value loss shows whether setup seeded torch."""
    assert not torch.are_deterministic_algorithms_enabled()
    small = {"algo": "turn_gae", "tasks_per_step": 1, "group_filter": "none"}
    state, _ = await start(tiny, tasks, tmp_path / "a", seed=3, **small)
    assert torch.are_deterministic_algorithms_enabled()
    try:
        first = await step(state)
    finally:
        state.close()
    assert not torch.are_deterministic_algorithms_enabled()  # the process is left as setup found it
    again = await one_step(tiny, tasks, tmp_path / "b", seed=3, **small)
    other = await one_step(tiny, tasks, tmp_path / "c", seed=4, **small)
    assert "value_loss" in first and _numbers(first) == _numbers(again)
    assert first["value_loss"] != other["value_loss"]
    state, _ = await start(tiny, tasks, tmp_path / "d", deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    state.close()
