"""The critic and search commands end to end: `agentgym train ENV --algo qvalue --records F`, then
`agentgym bench --best-of-n N --critic DIR` and `agentgym bench --search mcts` on held-out tasks."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

import agentgym  # noqa: E402
from agentgym.cli import app  # noqa: E402
from agentgym.policy import make_policy  # noqa: E402
from agentgym.records import EpisodeWriter  # noqa: E402
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs  # noqa: E402

# end-to-end training: minutes on a quiet 2-core machine, far longer on a loaded one; the guard is for hangs only
pytestmark = pytest.mark.timeout(2400)

ENV = "agentgym/corridor-v0"


def _invoke(args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, repr(result.exception))
    return result.output


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Train-split behaviour data with good and bad actions: oracle and random episodes."""
    path = tmp_path_factory.mktemp("records") / "episodes.jsonl"

    async def record() -> None:
        env = agentgym.make(ENV, split="train")
        try:
            ids = [t.id for t in (await env.aload_suite()).tasks("train")][:24]
        finally:
            await env.aclose()
        with EpisodeWriter(path) as writer:
            for policy in (make_policy("oracle"), make_policy("random", seed=1)):
                await RolloutEngine(lambda: agentgym.make(ENV, split="train"), policy,
                                    RolloutConfig(concurrency=8)).run(make_jobs(ids, 2, 0), on_record=writer.write)

    asyncio.run(record())
    return path


def test_fit_a_critic_then_act_with_best_of_n_and_with_mcts(records, tmp_path):
    text = _invoke(["train", ENV, "--algo", "qvalue", "--records", str(records), "--cql-alpha", "0.5",
                    "--out", str(tmp_path / "q")])
    critic = tmp_path / "q" / "critic"
    assert critic.exists() and str(critic) in text
    # best-of-4 over the random policy's samples, the critic picks: a real benchmark run on held-out tasks
    _invoke(["bench", ENV, "--policy", "random", "--best-of-n", "4", "--critic", str(critic), "--split", "test",
             "--episodes", "8", "--out", str(tmp_path / "bon"), "--no-progress"])
    results = json.loads((tmp_path / "bon" / "results.json").read_text())
    assert results["episodes"] == 8 and results["split"] == "test" and results["infra_errors"] == 0
    # MCTS per held-out task with the env's terminal reward at the leaves: finds the door by search
    _invoke(["bench", ENV, "--policy", "random", "--search", "mcts", "--simulations", "24", "--split", "test",
             "--episodes", "4", "--out", str(tmp_path / "mcts"), "--no-progress"])
    mcts = json.loads((tmp_path / "mcts" / "results.json").read_text())
    assert mcts["tasks"] == 4 and mcts["policy_calls_per_task"] > 0
    assert len(list((tmp_path / "mcts" / "trees").glob("*.json"))) == 4


def test_best_of_n_without_a_critic_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["bench", ENV, "--policy", "random", "--best-of-n", "4", "--split", "test",
                                      "--episodes", "2", "--out", str(tmp_path / "x"), "--no-progress"])
    assert result.exit_code != 0
    assert "--critic" in (result.output + repr(result.exception))
