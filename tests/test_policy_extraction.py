"""Policy extraction from a critic's candidate values: Digi-Q's threshold rule, AWR weights and Q-ranked pairs."""

from __future__ import annotations

import math

import pytest

from agentgym.trainers.policy_extraction import awr_weights, best_of_n_imitation, preference_pair_from_q


def test_threshold_rule_imitates_nothing_when_the_best_advantage_is_not_above_it():
    assert best_of_n_imitation([0.02, 0.05, -0.3], threshold=0.05) is None
    assert best_of_n_imitation([0.02, 0.06, -0.3], threshold=0.05) == 1
    assert best_of_n_imitation([3.0, 0.9], threshold=0.95) == 0  # clamped to 1 > thr


def test_awr_weights_and_q_pairs():
    assert awr_weights([0.0, 0.1, 10.0], beta=0.1, max_weight=20.0) == pytest.approx([1.0, math.e, 20.0])
    assert preference_pair_from_q([0.2, 0.9, 0.1]) == (1, 2)
    assert preference_pair_from_q([0.4, 0.4]) is None and preference_pair_from_q([0.9, 0.1], margin=0.8) is None
