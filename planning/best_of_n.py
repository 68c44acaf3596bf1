"""Best-of-N at inference time: sample N candidate actions from a policy and execute the one a critic values most.

``sample_candidates`` draws N actions from any policy (one ``act_n`` request or N concurrent ``act`` calls) and
drops duplicates; MCTS expands its nodes with it too. ``BestOfNPolicy`` wraps a base policy with a critic and keeps
the base policy's own first sample unless another beats it by more than a margin (Step-level Q-VM, Digi-Q
inference). Training the policy from a critic's values instead is ``agentgym.trainers.policy_extraction``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from agentgym.jsonutil import canonical_json
from agentgym.messages import Message, message_text
from agentgym.policy import Policy, PolicyAction, PolicyObservation

# --- choosing among candidates (pure) -----------------------------------------------------------------


def argmax_with_margin(q: Sequence[float], margin: float = 0.0, default: int = 0) -> int:
    """Index of the highest value (lowest index on ties); keeps `default` unless the best beats it by more than `margin`."""
    q = np.asarray(q, dtype=float)
    best = int(np.argmax(q))  # numpy's argmax returns the first maximum: deterministic
    return best if q[best] - q[default] > margin else default


# --- sampling candidates from a policy ---------------------------------------------------------------


def action_key(message: Mapping[str, Any]) -> str:
    """Identity of an action for deduplication: its text and tool calls (name + parsed arguments), ids ignored."""
    calls = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function", {})
        args = fn.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass
        calls.append([fn.get("name"), args])
    return canonical_json({"text": (message_text(message) or "").strip(), "calls": calls})


def candidate_observation(observation: PolicyObservation, i: int) -> PolicyObservation:
    """The observation for candidate i: the same, with a distinct derived seed for i > 0 when it is seeded.

    A seeded policy (a server sampling with ``seed``) would otherwise return n copies of one sample.
    """
    if i == 0 or observation.seed is None:
        return observation
    return dataclasses.replace(observation, seed=(observation.seed * 1_000_003 + 7919 * i) % 2**31)


async def sample_candidates(policy: Policy, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]],
                            n: int, *, timeout_s: float = 300.0, dedupe: bool = True) -> tuple[list[PolicyAction], int]:
    """Sample n actions (one ``act_n`` request if the policy has it, else n concurrent ``act`` calls).

    Returns (distinct candidates in sampling order, number of policy calls made).
    """
    act_n = getattr(policy, "act_n", None)
    async with asyncio.timeout(timeout_s):
        if callable(act_n):
            raw = list(await act_n(observation, tools, n))
            calls = 1
        else:
            raw = list(await asyncio.gather(*(policy.act(candidate_observation(observation, i), tools)
                                              for i in range(n))))
            calls = n
    actions = [PolicyAction.of(a) for a in raw]
    if not dedupe:
        return actions, calls
    seen: set[str] = set()
    out = []
    for a in actions:
        k = action_key(a.message)
        if k not in seen:
            seen.add(k)
            out.append(a)
    return out, calls


# --- the wrapper policy ----------------------------------------------------------------------------------


class ActionScorer(Protocol):
    """What BestOfNPolicy needs from a critic: Q values of candidate actions at the observed state."""

    def score(self, messages: Sequence[Message], actions: Sequence[Message]) -> Sequence[float]: ...


class BestOfNPolicy:
    """Samples N candidate actions from `base_policy` and returns the one the critic values most.

    ``margin``: the first sample (what the base policy would have done) is kept unless the best beats it by more
    than `margin`. The chosen action keeps its token ids and log-probs; ``extra["best_of_n"]`` holds the values.
    """

    def __init__(self, base_policy: Policy, critic: ActionScorer, n: int = 8, margin: float = 0.0,
                 *, timeout_s: float = 300.0):
        if n < 1:
            raise ValueError("n must be >= 1")
        self.base_policy = base_policy
        self.critic = critic
        self.n = n
        self.margin = margin
        self.timeout_s = timeout_s
        self.name = f"best-of-{n}({getattr(base_policy, 'name', 'policy')})"
        self.privileged = bool(getattr(base_policy, "privileged", False))
        self.policy_calls = 0

    async def act(self, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]]) -> PolicyAction:
        candidates, calls = await sample_candidates(self.base_policy, observation, tools, self.n,
                                                    timeout_s=self.timeout_s)
        self.policy_calls += calls
        if len(candidates) == 1:
            chosen, q = 0, [math.nan]
        else:
            scored = self.critic.score(list(observation.messages), [c.message for c in candidates])
            if inspect.isawaitable(scored):
                scored = await scored
            q = [float(v) for v in scored]
            chosen = argmax_with_margin(q, self.margin)
        action = candidates[chosen]
        action.extra = {**action.extra, "best_of_n": {"q": q, "chosen": chosen, "candidates": len(candidates)}}
        return action
