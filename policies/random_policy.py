"""The random policy: samples the env's own action space (a floor for every benchmark)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agentgym.messages import Action
from agentgym.policy import PolicyObservation
from agentgym.spaces import default_sample


class RandomPolicy:
    """Draws ``action_space.sample()`` with a generator seeded from (seed, episode seed, turn): reproducible."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    async def act(self, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]]) -> Action:
        rng = np.random.default_rng([self.seed, observation.seed or 0, observation.turn])
        space = observation.action_space
        sampler = getattr(space, "sampler", None)
        if sampler is not None:
            return sampler(rng)
        return default_sample(rng, tools)
