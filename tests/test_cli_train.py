"""`agentgym train` end to end from the command line, as `make demo` runs it (tiny model, corridor env):
tiny model -> oracle SFT -> RL through a served policy -> report; a rerun resumes; Ray workers can roll out;
then `agentgym bench --policy hf` and `agentgym compare` on the checkpoints."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("transformers")

from agentgym.cli import app  # noqa: E402

# end-to-end training: minutes on a quiet 2-core machine, far longer on a loaded one; the guard is for hangs only
pytestmark = pytest.mark.timeout(2400)

ENV = "agentgym/corridor-v0"
TRAIN = ["train", ENV, "--model", "tiny", "--tiny-hidden", "64", "--tiny-layers", "2", "--sft", "oracle",
         "--sft-episodes", "48", "--sft-steps", "150", "--sft-lr", "3e-3", "--episodes", "32", "--algo", "gigpo",
         "--tasks-per-step", "4", "--group-size", "4", "--max-tokens", "40", "--lr", "1e-3", "--dev-episodes", "4",
         "--max-model-len", "1024", "--reward-shaping", "invalid_action=-0.2", "--no-tensorboard"]


def _invoke(args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, repr(result.exception))
    return result.output


def test_train_pipeline_writes_every_stage_resumes_and_its_checkpoints_benchmark(tmp_path):
    out = tmp_path / "run"
    text = _invoke(TRAIN + ["--out", str(out)])
    for path in ("base-model/config.json", "base-model/tokenizer.json", "oracle/episodes.jsonl",
                 "sft/final/config.json", "rl/final/config.json", "rl/train_report.md", "rl/config.yaml"):
        assert (out / path).exists(), path
    cfg = yaml.safe_load((out / "rl" / "config.yaml").read_text())
    assert (cfg["algo"], cfg["group_size"], cfg["steps"], cfg["reward_shaping"]) == ("gigpo", 4, 2, "invalid_action=-0.2")
    assert cfg["model"] == str(out / "sft" / "final")  # RL starts from the SFT checkpoint
    rows = [json.loads(line) for line in (out / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and "dev/success" in rows[-1]
    assert "step 2/2" in text and "benchmark it" in text
    # the whole pipeline again: every stage is already done, nothing is redone or logged twice
    mtime = os.path.getmtime(out / "sft" / "final" / "config.json")
    _invoke(TRAIN + ["--out", str(out)])
    assert os.path.getmtime(out / "sft" / "final" / "config.json") == mtime
    assert len((out / "rl" / "metrics.jsonl").read_text().splitlines()) == 2
    # the held-out benchmark of both checkpoints through the built-in server, then the comparison
    for name in ("sft", "rl"):
        _invoke(["bench", ENV, "--policy", "hf", "--model", str(out / name / "final"), "--split", "test",
                 "--episodes", "6", "--max-tokens", "40", "--max-model-len", "1024", "--out", str(tmp_path / name),
                 "--no-progress"])
        results = json.loads((tmp_path / name / "results.json").read_text())
        assert results["episodes"] == 6 and results["split"] == "test" and results["infra_errors"] == 0
    _invoke(["compare", str(tmp_path / "sft"), str(tmp_path / "rl"), "--label", "sft", "--label", "rl",
             "--out", str(tmp_path / "cmp")])
    comparison = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert comparison["comparable"] and comparison["runs"][1]["vs_baseline"]["paired_episodes"] == 6


def test_train_rollouts_on_ray_workers(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "run"
    _invoke(TRAIN + ["--out", str(out), "--episodes", "16", "--dev-episodes", "0", "--workers", "2"])
    records = [json.loads(line) for line in (out / "rl" / "rollouts" / "step-00000001.jsonl").read_text().splitlines()]
    assert len(records) == 16 and len({r["group_id"] for r in records}) == 4
    assert all(t["token_ids"] and t["logprobs"] for r in records for t in r["turns"])  # trainable records
    rows = [json.loads(line) for line in (out / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]


@pytest.mark.parametrize("flags, message", [
    (["--algo", "gipgo"], "RLConfig.algo = 'gipgo': unknown credit estimator; known: bilevel_gae"),
    (["--algo", "gigpo", "--credit", "lam=0.9"], "sets lam, which --algo gigpo does not read"),
    (["--gamma", "0.9"], "--credit gamma=VALUE"),
])
def test_a_bad_rl_flag_fails_before_any_stage_runs(tmp_path, flags, message):
    result = CliRunner().invoke(app, ["train", ENV, "--model", "tiny", "--sft", "oracle", "--out", str(tmp_path / "run"),
                                      *flags])
    assert result.exit_code != 0 and message in str(result.exception) + result.output
    assert not (tmp_path / "run" / "base-model").exists() and not (tmp_path / "run" / "oracle").exists()
