"""Snapshot/restore for any deterministic env, by replaying its action prefix (tree search over envs without native snapshots).

``ReplayEnvAdapter(env)`` records the ``(seed, options)`` of the last reset and every action since. A snapshot is
that prefix; ``restore`` resets with the same seed and options and replays the actions, comparing every replayed
observation (messages, reward, terminated, truncated) with the one recorded the first time. Any difference means
the env is not replay-safe and raises ``NotReplaySafeError`` instead of silently branching from a wrong state.
Cost: restoring a state at depth d costs d env steps (``replay_steps`` counts them; ``env_steps`` counts all).
"""

from __future__ import annotations

import copy
from typing import Any

from agentgym.env import AsyncEnv, EnvSnapshot, StepReturn
from agentgym.errors import AgentGymError
from agentgym.jsonutil import canonical_json, sha256_hex, to_jsonable
from agentgym.messages import Action
from agentgym.wrappers import AsyncWrapper


class NotReplaySafeError(AgentGymError):
    """Replaying an action prefix from the same seed gave a different observation: the env is not deterministic."""


def step_fingerprint(obs: dict[str, Any], reward: float = 0.0, terminated: bool = False, truncated: bool = False) -> str:
    """A stable hash of what the agent sees after a reset or a step (observation messages, reward, end flags)."""
    return sha256_hex(canonical_json(to_jsonable({"messages": obs.get("messages", []), "reward": float(reward),
                                                  "terminated": bool(terminated), "truncated": bool(truncated)})))


class ReplayEnvAdapter(AsyncWrapper):
    """Wraps a deterministic AsyncEnv and gives it ``snapshot()``/``restore()`` by reset-and-replay.

    ``check_determinism=True`` (default) compares each replayed step with the recorded one and raises
    ``NotReplaySafeError`` on the first difference. Everything else (tools, spaces, env_id, the wrapped env's
    capabilities) is forwarded to the wrapped env by ``AsyncWrapper``.
    """

    def __init__(self, env: AsyncEnv, *, check_determinism: bool = True):
        super().__init__(env)
        self.check_determinism = check_determinism
        self._seed: int | None = None
        self._options: dict[str, Any] | None = None
        self._actions: list[Action] = []
        self._fingerprints: list[str] = []   # [after reset, after action 1, ...]
        self._task_id: str = ""
        self.env_steps = 0      # every astep sent to the wrapped env (replays included)
        self.replay_steps = 0   # the steps spent replaying prefixes in restore()
        self.resets = 0

    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Reset the wrapped env and start recording a new action prefix."""
        obs, info = await self.env.areset(seed=seed, options=copy.deepcopy(options))
        self.resets += 1
        self._seed, self._options = seed, copy.deepcopy(options)
        self._actions = []
        self._fingerprints = [step_fingerprint(obs)]
        self._task_id = str(info.get("task_id") or "")
        return obs, info

    async def astep(self, action: Action) -> StepReturn:
        """Step the wrapped env and record the action and what it showed."""
        obs, reward, terminated, truncated, info = await self.env.astep(action)
        self.env_steps += 1
        self._actions.append(copy.deepcopy(action))
        self._fingerprints.append(step_fingerprint(obs, reward, terminated, truncated))
        return obs, reward, terminated, truncated, info

    async def snapshot(self) -> EnvSnapshot:
        """The current state as (seed, options, action prefix, fingerprints); costs nothing."""
        if not self._fingerprints:
            raise RuntimeError("snapshot() needs a started episode (call areset first)")
        return EnvSnapshot(self.env_id, self._task_id, {
            "seed": self._seed, "options": copy.deepcopy(self._options),
            "actions": copy.deepcopy(self._actions), "fingerprints": list(self._fingerprints)})

    async def restore(self, snapshot: EnvSnapshot) -> None:
        """Reset with the snapshot's seed and options and replay its actions (len(actions) env steps)."""
        if snapshot.env_id != self.env_id:
            raise ValueError(f"snapshot of {snapshot.env_id} cannot restore {self.env_id}")
        p = snapshot.payload
        expected: list[str] = p["fingerprints"]
        obs, info = await self.env.areset(seed=p["seed"], options=copy.deepcopy(p["options"]))
        self.resets += 1
        seen = [step_fingerprint(obs)]
        self._check(seen[0], expected[0], 0)
        for i, action in enumerate(p["actions"], start=1):
            obs, reward, terminated, truncated, _ = await self.env.astep(copy.deepcopy(action))
            self.env_steps += 1
            self.replay_steps += 1
            seen.append(step_fingerprint(obs, reward, terminated, truncated))
            self._check(seen[-1], expected[i], i)
        self._seed, self._options = p["seed"], copy.deepcopy(p["options"])
        self._actions = copy.deepcopy(p["actions"])
        self._fingerprints = seen
        self._task_id = snapshot.task_id

    def _check(self, got: str, want: str, index: int) -> None:
        if self.check_determinism and got != want:
            where = "the reset observation" if index == 0 else f"the observation after action {index}"
            raise NotReplaySafeError(
                f"{self.env_id}: replaying from seed {self._seed!r} changed {where}; this env is not "
                "deterministic under reset(seed) + replay, so it cannot be searched without native snapshot()")

    async def check_replay_safe(self) -> None:
        """Replay the current prefix twice and compare; raises NotReplaySafeError if the env is not deterministic."""
        snap = await self.snapshot()
        await self.restore(snap)
        await self.restore(snap)
