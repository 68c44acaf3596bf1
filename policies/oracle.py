"""The oracle policy: plays the task's reference solution (proves tasks are solvable, bounds the benchmark)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentgym.errors import PolicyError
from agentgym.messages import Action
from agentgym.policy import PolicyObservation


class OraclePolicy:
    """Returns the env's reference next action (privileged information the engine passes only to it)."""

    name = "oracle"
    privileged = True

    async def act(self, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]]) -> Action:
        if observation.oracle_action is None:
            raise PolicyError(f"{observation.env_id} offers no reference action for task {observation.task_id}")
        return observation.oracle_action
