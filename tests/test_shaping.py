"""Reward shaping for training: per-turn penalties land on the turn that earned them, components on the last."""

from __future__ import annotations

import pytest

from agentgym.records import EpisodeRecord, TurnRecord
from agentgym.trainers.shaping import parse_shaping, shaped_turn_rewards


def _record(infos, rewards, components=None):
    turns = [TurnRecord(turn=i + 1, observation=[], action={"role": "assistant", "content": ""}, action_text="",
                        reward=r, info=info) for i, (info, r) in enumerate(zip(infos, rewards))]
    return EpisodeRecord(episode_id="e", env_id="x", task_id="t", split="train", seed=0, turns=turns,
                         reward_components=components or {})


def test_parse_shaping_reads_weights_and_rejects_malformed_terms():
    assert parse_shaping("invalid_action=-0.1, syntax_ok=0.25") == {"invalid_action": -0.1, "syntax_ok": 0.25}
    assert parse_shaping("") == {} and parse_shaping(None) == {}
    assert parse_shaping({"a": 1}) == {"a": 1.0}
    with pytest.raises(ValueError, match="NAME=WEIGHT"):
        parse_shaping("invalid_action")
    with pytest.raises(ValueError, match="not a number"):
        parse_shaping("x=abc")


def test_turn_penalties_follow_the_cumulative_counters_and_components_go_to_the_last_turn():
    # turn 1 malformed, turn 2 a failing tool call, turn 3 fine and submitted with reward 1
    record = _record([{"invalid_actions": 1, "tool_errors": 0}, {"invalid_actions": 1, "tool_errors": 1},
                      {"invalid_actions": 1, "tool_errors": 1}], [0.0, 0.0, 1.0],
                     {"syntax_ok": 1.0, "schema_jaccard": 0.5})
    got = shaped_turn_rewards([record], {"invalid_action": -0.1, "tool_error": -0.05, "syntax_ok": 0.2,
                                         "schema_jaccard": 0.4, "missing_component": 3.0})
    assert got == [pytest.approx([-0.1, -0.05, 1.0 + 0.2 + 0.2])]
    assert shaped_turn_rewards([record], {}) == [[0.0, 0.0, 1.0]]  # no shaping: the env's rewards
