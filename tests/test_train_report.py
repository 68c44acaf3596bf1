"""Training report: from a small real run dir, report.md lists every section and links PNGs that exist and are non-empty."""

from __future__ import annotations

import asyncio
import re

import pytest
import torch

import agentgym
from agentgym.records import EpisodeWriter
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs
from agentgym.trainers.config import RLConfig, save_config
from agentgym.trainers.metrics import MetricsLogger, rollout_metrics
from agentgym.trainers.train_report import DEV_ROLLOUTS_FILE, ROLLOUTS_FILE, write_train_report

ENV = "agentgym/sql-v0"
SECTIONS = ("## Success and reward", "## Loss, KL and clipping", "## Per-turn advantage", "## Tool errors",
            "## Example transcripts")


def _run(policy_name: str, task_ids, samples: int, seed: int):
    from agentgym.policy import make_policy

    async def go():
        engine = RolloutEngine(lambda: agentgym.make(ENV), make_policy(policy_name), RolloutConfig(concurrency=2))
        return await engine.run(make_jobs(task_ids, samples, base_seed=seed))
    return asyncio.run(go())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Three steps of a real loop: group rollouts (oracle + random on the SQL env), GRPO credit from the
    trainers' estimator, one rejection-sampling fine-tuning step of a tiny model on the successes, dev rollouts."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agentgym.policies.tiny_model import build_tiny_model
    from agentgym.trainers.config import SFTConfig
    from agentgym.trainers.credit import CreditBatch, CreditConfig, estimate
    from agentgym.trainers.sft import accumulate_gradients, tokenize_episode

    root = tmp_path_factory.mktemp("report")
    run = root / "run"
    env = agentgym.make(ENV)
    tasks = [t.id for t in asyncio.run(env.aload_suite()).tasks("train")][:4]
    save_config(RLConfig(model=str(root / "model"), run_dir=str(run), steps=3, algo="grpo", group_size=4))
    first = _run("oracle", tasks[:1], 1, 0)[0]
    model_dir = build_tiny_model(root / "model", [m["content"] for m in first.first_observation], hidden_size=64,
                                 num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128, vocab_size=1024)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sft_cfg = SFTConfig(model=str(model_dir), train_data=["-"], batch_size=1, micro_batch_size=1)
    seen = 0
    with MetricsLogger(run, resume_step=0, tensorboard=False) as metrics, \
            EpisodeWriter(run / ROLLOUTS_FILE) as train_w, EpisodeWriter(run / DEV_ROLLOUTS_FILE) as dev_w:
        for step in (1, 2, 3):
            task = tasks[step - 1]
            records = _run("oracle", [task], 2 - (step == 3), step) + _run("random", [task], 2 + (step == 3), step)
            advantages = estimate("grpo", CreditBatch.from_records(records), CreditConfig())
            for r in records:
                train_w.write(r)
            best = next(r for r in records if r.success)
            optimizer.zero_grad()
            loss, _ = accumulate_gradients(model, [tokenize_episode(best, tok, env.tools)], tok.pad_token_id, sft_cfg)
            optimizer.step()
            dev = _run("oracle", tasks[3:], 1, 100 + step) + _run("random", tasks[3:], 1, 100 + step)
            for r in dev:
                dev_w.write(r)
            seen += len(records)
            metrics.log(step, {**rollout_metrics(records, advantages), **rollout_metrics(dev, prefix="dev/"),
                               "loss": loss, "episodes": seen})
    return run


def test_report_lists_every_section_and_links_existing_pngs(run_dir):
    path = write_train_report(run_dir)
    text = path.read_text()
    for section in SECTIONS:
        assert section in text, section
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert set(images) == {"success_reward.png", "losses.png", "turn_advantages.png", "tool_errors.png"}
    for name in images:
        png = run_dir / name
        assert png.is_file() and png.stat().st_size > 1000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| kind | `rl` |" in text and "| algo | `grpo` |" in text and "Steps logged: 3" in text


def test_report_shows_the_best_and_worst_recent_episodes_readably(run_dir):
    text = write_train_report(run_dir).read_text()
    for title in ("best recent training episode", "worst recent training episode",
                  "best recent held-out dev episode", "worst recent held-out dev episode"):
        assert f"### {title}" in text
    best = text.split("### best recent training episode")[1].split("###")[0]
    worst = text.split("### worst recent training episode")[1].split("###")[0]
    assert "success True" in best and "submit_sql(" in best and "[user] Database schema" in best
    assert "success False" in worst


def test_logged_metrics_feed_the_plots(run_dir):
    from agentgym.trainers.metrics import read_metrics

    rows = read_metrics(run_dir)
    assert [r["train/episodes"] for r in rows] == [4.0, 4.0, 4.0] and [r["episodes"] for r in rows] == [4, 8, 12]
    assert all(0.0 < r["train/success"] < 1.0 for r in rows)    # oracle wins, random loses: mixed groups
    assert all(r["dev/success"] == 0.5 for r in rows)
    assert all("adv_turn/0" in r and "train/tool_error_rate" in r for r in rows)


def test_report_reads_the_rl_loop_layout_per_step_rollout_files_and_bare_names(run_dir, tmp_path):
    """rollouts/step-N.jsonl files, unprefixed success/reward and adv/turn_<t> are read like the standard names."""
    from agentgym.records import iter_episodes
    from agentgym.trainers.metrics import read_metrics

    (tmp_path / "rollouts").mkdir()
    with EpisodeWriter(tmp_path / "rollouts" / "step-00000001.jsonl") as w:
        for r in iter_episodes(run_dir / ROLLOUTS_FILE):
            w.write(r)
    with MetricsLogger(tmp_path, resume_step=0, tensorboard=False) as m:
        for row in read_metrics(run_dir):
            m.log(row["step"], {"success": row["train/success"], "reward": row["train/reward"],
                                "adv/turn_0": row["adv_turn/0"], "tool_error_rate": row["train/tool_error_rate"]})
    text = write_train_report(tmp_path).read_text()
    assert {"success_reward.png", "turn_advantages.png", "tool_errors.png"} <= set(re.findall(r"\(([^)]+\.png)\)", text))
    assert "### best recent training episode" in text and "### worst recent training episode" in text


def test_sections_without_data_say_so_instead_of_linking_missing_plots(tmp_path):
    with MetricsLogger(tmp_path, resume_step=0, tensorboard=False) as m:
        for step in (1, 2):
            m.log(step, {"loss": 3.0 / step, "dev/loss": 3.5 / step})
    text = write_train_report(tmp_path).read_text()
    assert "![loss, KL and clip fraction](losses.png)" in text and (tmp_path / "losses.png").stat().st_size > 0
    assert "_no success or reward logged in this run_" in text
    assert "_no per-turn advantages (adv_turn/<t>) logged in this run_" in text
    assert not (tmp_path / "success_reward.png").exists() and not (tmp_path / "turn_advantages.png").exists()
    assert "_no episodes in rollouts.jsonl or dev_rollouts.jsonl_" in text
