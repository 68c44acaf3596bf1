"""The template contract, oracle plan steps, and the state comparison every success check uses."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agentgym.envs.gui.device.store import TABLES, digits
from agentgym.envs.gui.tasks.world import Pools, background


@dataclass(frozen=True)
class Step:
    """One oracle step: ``op`` in open/tap/long/type/back/answer/done; ``target`` matches a UI element by fields."""

    op: str
    target: Mapping[str, str] = field(default_factory=dict)   # resource_id / text / content_description
    value: str = ""


def tap(rid: str | None = None, **match: str) -> Step:
    return Step("tap", {**({"resource_id": rid} if rid else {}), **match})


def type_into(rid: str, text: str) -> Step:
    return Step("type", {"resource_id": rid}, str(text))


def open_app(name: str) -> Step:
    return Step("open", value=name)


DONE = Step("done")
BACK = Step("back")


def canonical(state: Mapping[str, Any]) -> dict[str, Any]:
    """The committed data, ids dropped and phone numbers reduced to digits, rows as sorted multisets."""
    out: dict[str, Any] = {"settings": dict(state["settings"])}
    for table in TABLES:
        rows = []
        for row in state[table]:
            r = {k: v for k, v in row.items() if k != "id"}
            for key in ("phone", "number"):
                if key in r:
                    r[key] = digits(r[key])
            rows.append(json.dumps(r, sort_keys=True))
        out[table] = sorted(rows)
    return out


def differing(a: Mapping[str, Any], b: Mapping[str, Any]) -> set[str]:
    """Tables (and 'settings') whose canonical contents differ."""
    ca, cb = canonical(a), canonical(b)
    return {k for k in ca if ca[k] != cb[k]}


class Template:
    """A task template. Subclasses set ``app``, ``name``, ``touches`` and implement the hooks."""

    app: ClassVar[str] = ""
    name: ClassVar[str] = ""
    touches: ClassVar[frozenset[str]] = frozenset()   # tables the task may change
    info: ClassVar[bool] = False                      # ends with `answer`
    difficulty: ClassVar[str] = "easy"

    @property
    def family(self) -> str:
        return f"{self.app}/{self.name}"

    def sample(self, rng: random.Random, pools: Pools) -> dict[str, Any]:
        """Random parameters (must include everything the goal and the initial state depend on)."""
        raise NotImplementedError

    def group(self, params: Mapping[str, Any]) -> str:
        """The near-duplicate group (IID split key): by default the family plus the target entity."""
        return f"{self.family}:{params.get('key', '')}"

    def setup(self, state: dict[str, Any], params: Mapping[str, Any], rng: random.Random) -> None:
        """Put the task's own rows into the background state (in place)."""

    def goal(self, params: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def expected(self, initial: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """The state after a correct solution (information tasks: unchanged)."""
        return json.loads(json.dumps(initial))

    def answers(self, params: Mapping[str, Any], initial: Mapping[str, Any]) -> list[str]:
        """Accepted answers of an information task."""
        return []

    def plan(self, params: Mapping[str, Any], initial: Mapping[str, Any]) -> list[Step]:
        """The oracle's steps through the UI."""
        raise NotImplementedError

    def goal_met(self, final: Mapping[str, Any], initial: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
        """The intended change is present (ignoring other damage)."""
        have, want = canonical(final), canonical(self.expected(initial, params))
        return all(have[t] == want[t] for t in self.touches)

    def initial_state(self, params: Mapping[str, Any], pools: Pools) -> dict[str, Any]:
        """Background data with distractors (seeded by params['seed']) plus the task's own rows."""
        rng = random.Random(params["seed"])
        state = background(rng, pools)
        self.setup(state, params, rng)
        return state


def new_id(state: Mapping[str, Any]) -> int:
    return 1 + max((r["id"] for t in TABLES for r in state[t]), default=0)
