"""Dynamic-sampling group filters and the intermediate-success curriculum."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from agentgym.records import EpisodeRecord
from agentgym.trainers.curriculum import CurriculumSampler
from agentgym.trainers.group_filter import (drop_zero_variance, filter_indices, filter_records, group_std,
                                            top_fraction_by_std)

GROUPS = ["a", "a", "b", "b", "c", "c", "d", "d", "e"]
REWARDS = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.2, 0.4, 1.0]


def test_zero_variance_groups_and_singletons_are_dropped():
    assert drop_zero_variance(GROUPS, REWARDS) == [2, 3, 6, 7]


def test_top_fraction_by_std_keeps_the_most_informative_groups():
    stds = group_std(GROUPS, REWARDS)
    assert stds["b"] == pytest.approx(0.5) and stds["d"] == pytest.approx(0.1) and stds["a"] == 0.0
    assert top_fraction_by_std(GROUPS, REWARDS, 0.2) == [2, 3]          # 1 of 5 groups: b
    assert top_fraction_by_std(GROUPS, REWARDS, 0.4) == [2, 3, 6, 7]    # 2 of 5 groups: b, d
    assert top_fraction_by_std(GROUPS, REWARDS, 0.01) == [2, 3]         # at least one group
    with pytest.raises(ValueError):
        top_fraction_by_std(GROUPS, REWARDS, 0.0)


def test_filter_specs_and_records():
    assert filter_indices(GROUPS, REWARDS, "none") == list(range(9))
    assert filter_indices(GROUPS, REWARDS, "top:0.4") == [2, 3, 6, 7]
    with pytest.raises(ValueError):
        filter_indices(GROUPS, REWARDS, "bogus")
    recs = [EpisodeRecord(episode_id=str(i), env_id="e", task_id=g, split="train", seed=i, group_id=g, reward=r)
            for i, (g, r) in enumerate(zip(GROUPS, REWARDS))]
    assert [r.episode_id for r in filter_records(recs)] == ["2", "3", "6", "7"]


def test_curriculum_favours_intermediate_success():
    cur = CurriculumSampler(["easy", "hard", "mid"], epsilon=0.01, decay=1.0, seed=0)
    cur.update([("easy", 1.0)] * 30 + [("hard", 0.0)] * 30 + [("mid", 1.0)] * 15 + [("mid", 0.0)] * 15)
    w = dict(zip(cur.families, cur.weights()))
    assert w["mid"] > 5 * w["easy"] and w["mid"] > 5 * w["hard"]
    assert cur.success_rate("mid") == pytest.approx(0.5) and cur.success_rate("easy") == pytest.approx(31 / 32)
    counts = {f: 0 for f in cur.families}
    for f in cur.sample(2000):
        counts[f] += 1
    assert counts["mid"] / 2000 == pytest.approx(w["mid"], abs=0.04)
    assert min(counts.values()) > 0  # ε keeps every family alive


def test_curriculum_forgets_old_results():
    cur = CurriculumSampler(["x"], decay=0.5, seed=0)
    cur.update([("x", 0.0)] * 10)
    cur.update([("x", 1.0)] * 10)
    assert cur.success_rate("x") > 0.6  # the recent successes dominate


@dataclass(frozen=True)
class _Task:
    id: str
    family: str


def test_curriculum_is_deterministic_and_resumes_exactly():
    tasks = [_Task(f"{f}{i}", f) for f in "abc" for i in range(3)]
    a = CurriculumSampler("abc", seed=7)
    b = CurriculumSampler("abc", seed=7)
    assert a.sample_tasks(tasks, 20) == b.sample_tasks(tasks, 20)
    a.update([("a", 1.0), ("b", 0.0), ("c", 1.0)])
    state = json.loads(json.dumps(a.state_dict()))  # survives a checkpoint file
    expected = [t.id for t in a.sample_tasks(tasks, 50)]
    resumed = CurriculumSampler("abc", seed=999)
    resumed.load_state_dict(state)
    assert [t.id for t in resumed.sample_tasks(tasks, 50)] == expected
    assert np.allclose(resumed.weights(), a.weights())
    with pytest.raises(ValueError):
        CurriculumSampler("ab").load_state_dict(state)
    with pytest.raises(ValueError):
        CurriculumSampler("ab").sample_tasks(tasks, 1)
