"""Best-of-N at inference: bandit success probability 1 − (1 − p)^N, the margin rule, candidate sampling and dedupe."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentgym.policy import PolicyAction, PolicyObservation
from agentgym.planning.best_of_n import BestOfNPolicy, argmax_with_margin, sample_candidates

Q_ARMS = [1.0, 0.5, 0.2, 0.0]  # arm 0 is best


def obs() -> PolicyObservation:
    return PolicyObservation(messages=[{"role": "user", "content": "pull an arm"}], turn=0, episode_id="e",
                             env_id="bandit", task_id="t")


class BanditPolicy:
    """Behaviour policy π_β over the arms; each act() returns one arm as text."""

    name = "bandit"

    def __init__(self, probs, seed=0):
        self.probs, self.rng = probs, np.random.default_rng(seed)

    async def act(self, observation, tools):
        return {"role": "assistant", "content": f"arm {int(self.rng.choice(len(self.probs), p=self.probs))}"}


class AllArms:
    name = "all-arms"

    async def act_n(self, observation, tools, n):
        return [PolicyAction({"role": "assistant", "content": f"arm {i}"}) for i in (3, 1, 0, 2)]


class KnownQ:
    def score(self, messages, actions):
        return [Q_ARMS[int(a["content"].split()[1])] for a in actions]


@pytest.mark.parametrize("n", [1, 4])
async def test_best_of_n_picks_the_best_arm_with_probability_one_minus_one_minus_p_to_the_n(n):
    p_best, trials = 0.1, 1500
    policy = BestOfNPolicy(BanditPolicy([p_best, 0.3, 0.3, 0.3], seed=n), KnownQ(), n=n)
    hits = 0
    for _ in range(trials):
        hits += (await policy.act(obs(), [])).message["content"] == "arm 0"
    want = 1 - (1 - p_best) ** n
    se = math.sqrt(want * (1 - want) / trials)
    assert abs(hits / trials - want) < 4 * se
    assert policy.policy_calls == n * trials


async def test_argmax_over_the_full_candidate_set_is_deterministic():
    policy = BestOfNPolicy(AllArms(), KnownQ(), n=4)
    chosen = [(await policy.act(obs(), [])) for _ in range(5)]
    assert {a.message["content"] for a in chosen} == {"arm 0"}
    assert chosen[0].extra["best_of_n"]["q"] == [0.0, 0.5, 1.0, 0.2] and policy.policy_calls == 5
    assert argmax_with_margin([0.3, 0.7, 0.7]) == 1  # ties: the first maximum


def test_margin_rule_keeps_the_base_sample_unless_beaten_by_more_than_the_margin():
    assert argmax_with_margin([0.5, 0.55], margin=0.1) == 0
    assert argmax_with_margin([0.5, 0.65], margin=0.1) == 1


async def test_candidates_are_deduplicated_ignoring_tool_call_ids():
    class Dup:
        name = "dup"
        i = 0

        async def act(self, observation, tools):
            Dup.i += 1
            return {"role": "assistant", "content": None, "tool_calls": [{"id": f"c{Dup.i}", "type": "function",
                    "function": {"name": "f", "arguments": '{"x": 1}' if Dup.i % 2 else '{"x":2}'}}]}

    cands, calls = await sample_candidates(Dup(), obs(), [], 6)
    assert calls == 6 and len(cands) == 2


async def test_a_seeded_policy_gets_a_distinct_seed_per_candidate_so_samples_differ():
    class Seeded:  # deterministic given the seed, like a server sampling with a request seed
        name = "seeded"

        async def act(self, observation, tools):
            return {"role": "assistant", "content": f"arm {np.random.default_rng(observation.seed).integers(10**6)}"}

    seeded = PolicyObservation(messages=[{"role": "user", "content": "pull"}], turn=0, episode_id="e",
                               env_id="bandit", task_id="t", seed=42)
    cands, calls = await sample_candidates(Seeded(), seeded, [], 4)
    assert calls == 4 and len(cands) == 4
    # candidate 0 keeps the episode's own seed (what the base policy alone would have done); reruns are identical
    assert cands[0].message["content"] == (await Seeded().act(seeded, []))["content"]
    again, _ = await sample_candidates(Seeded(), seeded, [], 4)
    assert [c.message for c in again] == [c.message for c in cands]
