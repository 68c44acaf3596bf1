"""`agentgym compare`: paired wins/losses over the same held-out tasks, with McNemar's exact p-value."""

from __future__ import annotations

import json
import math

import pytest

from agentgym.compare import compare_runs, sign_test_p, write_comparison
from agentgym.errors import AgentGymError
from agentgym.records import EpisodeRecord, EpisodeWriter


def test_sign_test_matches_hand_computed_binomial_tails():
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 0) == pytest.approx(2 / 32)  # 2 * P(X <= 0), X ~ Bin(5, 1/2)
    assert sign_test_p(1, 7) == pytest.approx(2 * (1 + 8) / 256)
    assert sign_test_p(4, 4) == 1.0  # capped at 1


def _run(tmp_path, name, outcomes, *, env="agentgym/sql-v0", checksum="abc"):
    d = tmp_path / name
    d.mkdir()
    with EpisodeWriter(d / "episodes.jsonl") as writer:
        for i, ok in enumerate(outcomes):
            writer.write(EpisodeRecord(episode_id=f"{name}-{i}", env_id=env, task_id=f"t{i}", split="test", seed=i, sample=0, policy=name,
                                       success=ok, reward=float(ok), termination="submitted"))
    n = len(outcomes)
    (d / "results.json").write_text(json.dumps({
        "env": env, "split": "test", "manifest_checksum": checksum, "policy": name, "episodes": n,
        "success_rate": sum(outcomes) / n, "success_ci95": [0.0, 1.0], "mean_reward": sum(outcomes) / n,
        "mean_turns": 1.0, "tool_error_rate": None, "infra_errors": 0}))
    return d


def test_paired_counts_against_the_baseline(tmp_path):
    base = _run(tmp_path, "sft", [True, False, False, True, False])
    new = _run(tmp_path, "rl", [True, True, True, False, False])
    comparison = compare_runs([base, new])
    assert comparison["comparable"] and comparison["baseline"] == "sft"
    paired = comparison["runs"][1]["vs_baseline"]
    assert (paired["paired_episodes"], paired["wins"], paired["losses"]) == (5, 2, 1)
    assert paired["success_delta"] == pytest.approx(0.2)
    assert paired["sign_test_p"] == pytest.approx(1.0)  # 2 * P(X <= 1 | n=3) = 2 * 4/8
    md = write_comparison(comparison, tmp_path / "cmp")
    text = md.read_text()
    assert "| rl | rl | 0.600 |" in text and "2 / 1" in text
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 0


def test_runs_on_different_manifests_are_flagged_and_missing_results_fail_clearly(tmp_path):
    base = _run(tmp_path, "a", [True, False])
    other = _run(tmp_path, "b", [True, True], checksum="different")
    assert compare_runs([base, other])["comparable"] is False
    (tmp_path / "empty").mkdir()
    with pytest.raises(AgentGymError, match="no results.json"):
        compare_runs([base, tmp_path / "empty"])
    with pytest.raises(AgentGymError, match="at least two"):
        compare_runs([base])
    assert not math.isnan(sign_test_p(3, 1))
