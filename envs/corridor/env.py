"""The corridor env (``agentgym/corridor-v0``): T rooms, four doors each, one hidden decisive room per task.

Every turn the agent calls ``move(direction)``. In ordinary rooms every door leads to the next room; in the
task's decisive room only one door does, the other three lead into the flooded wing, an absorbing failure:
the episode goes on to the end but can no longer succeed. Success = leaving the last room on the good path
(outcome reward 1). A malformed call or an unknown direction is an invalid action: −0.01 and no move.
The observation is the position only ("room 3 of 6", plus "flooded wing" once trapped), so the same anchor
state recurs across a group: the test bed for GiGPO's step groups and a turn-level critic.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Literal

import numpy as np

from agentgym.env import EnvSnapshot
from agentgym.messages import Action, Message
from agentgym.tasks import SplitRule, Task, TaskSuite
from agentgym.tool_env import Outcome, ToolEnv, ToolOutput
from agentgym.tools import tool

DIRECTIONS: tuple[str, ...] = ("north", "east", "south", "west")
INVALID_PENALTY = -0.01
SPLIT_SEEDS = {"train": range(0, 200), "dev": range(200, 225), "test": range(225, 250)}

SYSTEM_PROMPT = ("You walk down a corridor of {horizon} rooms. In each room call move(direction) with one of "
                 "north, east, south, west. In one room a wrong door leads into the flooded wing, from which "
                 "the exit can no longer be reached.")


def make_task(horizon: int, seed: int) -> Task:
    """The task of a generator seed: its decisive room and good door are drawn from ``seed``."""
    rng = np.random.default_rng([horizon, seed])
    decisive = int(rng.integers(horizon))
    good = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
    return Task(kind="corridor", family=f"corridor-T{horizon}", template="decisive-door",
                params={"horizon": horizon, "seed": seed, "decisive": decisive, "good": good},
                difficulty=str(horizon))


@functools.lru_cache(maxsize=None)
def corridor_suite(horizon: int) -> TaskSuite:
    """The suite of one horizon: fixed seed ranges per split (built once per process and horizon)."""
    tasks, splits = [], {}
    for split, seeds in SPLIT_SEEDS.items():
        for seed in seeds:
            task = make_task(horizon, seed)
            tasks.append(task)
            splits[task.id] = split
    return TaskSuite(f"corridor-T{horizon}", "v0", tasks, SplitRule(), fixed_splits=splits)


def suite_for(*, horizon: int = 6, **_options: Any) -> TaskSuite:
    """The suite ``CorridorEnv(horizon=...)`` serves: the registry's loader and the env's."""
    return corridor_suite(horizon)


def room_text(room: int, horizon: int, trapped: bool) -> str:
    """The anchor observation: the position only."""
    where = f"You are in room {room + 1} of {horizon}"
    return where + (" of the flooded wing." if trapped else ".") + " Doors: north, east, south, west."


class CorridorEnv(ToolEnv):
    """T rooms, 4 doors per room, one hidden decisive room; see the module docstring."""

    env_id = "agentgym/corridor-v0"
    tool_parsers = ("openai", "hermes")
    max_calls_per_turn = 1
    remind_turns = False
    options_help = {
        "horizon": "number of rooms T = turns of an error-free episode (default 6)",
        "slack": "extra turns beyond T to absorb invalid actions (default 0)",
        "split": "task split to draw from: train (seeds 0-199) | dev (200-224) | test (225-249)",
    }

    def __init__(self, *, horizon: int = 6, slack: int = 0, **kwargs: Any):
        if horizon < 1 or slack < 0:
            raise ValueError("horizon must be >= 1 and slack >= 0")
        self.horizon = horizon
        kwargs.setdefault("max_turns", horizon + slack)
        super().__init__(**kwargs)
        self.room = 0
        self.trapped = False

    def load_suite(self) -> TaskSuite:
        return suite_for(horizon=self.horizon)

    async def begin_episode(self, task: Task) -> list[Message]:
        self.room, self.trapped = 0, False
        return [{"role": "system", "content": SYSTEM_PROMPT.format(horizon=self.horizon)},
                {"role": "user", "content": room_text(0, self.horizon, False)}]

    @tool("Walk through one of the four doors of this room.", params={"direction": "north, east, south or west"})
    async def move(self, direction: Literal["north", "east", "south", "west"]) -> ToolOutput:
        assert self.task is not None
        if self.room == self.task.params["decisive"] and direction != self.task.params["good"]:
            self.trapped = True
        self.room += 1
        if self.room >= self.horizon:
            success = not self.trapped
            text = "You reached the exit." if success else "The flooded wing ends in a dead end."
            return ToolOutput(text, outcome=Outcome(1.0 if success else 0.0, success))
        return ToolOutput(room_text(self.room, self.horizon, self.trapped))

    async def astep(self, action: Action):
        invalid_before = self.invalid_actions
        obs, reward, terminated, truncated, info = await super().astep(action)
        if self.invalid_actions > invalid_before:
            reward += INVALID_PENALTY
            info["invalid_action"] = True
        return obs, reward, terminated, truncated, info

    def extra_info(self) -> dict[str, Any]:
        return {"room": self.room, "trapped": self.trapped}

    # --- capabilities -----------------------------------------------------------------------------

    def good_direction(self) -> str:
        """The door that keeps the episode winnable in the current room."""
        assert self.task is not None
        return self.task.params["good"] if self.room == self.task.params["decisive"] else DIRECTIONS[0]

    async def oracle_action(self) -> Action | None:
        """Take the good door (any door outside the decisive room)."""
        if self.task is None:
            return None
        return move_call(self.good_direction())

    def sample_action(self, rng: np.random.Generator) -> Action:
        """A random door (1 in 10: an unknown direction, an invalid action)."""
        if rng.random() < 0.1:
            return move_call("up")
        return move_call(DIRECTIONS[int(rng.integers(len(DIRECTIONS)))])

    async def snapshot(self) -> EnvSnapshot:
        assert self.task is not None, "snapshot() needs a started episode"
        return EnvSnapshot(self.env_id, self.task.id, {"base": self._base_state(), "room": self.room,
                                                       "trapped": self.trapped})

    async def restore(self, snapshot: EnvSnapshot) -> None:
        if snapshot.env_id != self.env_id:
            raise ValueError(f"snapshot of {snapshot.env_id} cannot restore {self.env_id}")
        await self.aload_suite()
        self._load_base_state(snapshot.payload["base"])
        self.room, self.trapped = int(snapshot.payload["room"]), bool(snapshot.payload["trapped"])


def move_call(direction: str) -> Action:
    """A Hermes-format ``move`` call."""
    return "<tool_call>" + json.dumps({"name": "move", "arguments": {"direction": direction}}) + "</tool_call>"


__all__ = ["CorridorEnv", "DIRECTIONS", "INVALID_PENALTY", "make_task", "room_text", "move_call"]
