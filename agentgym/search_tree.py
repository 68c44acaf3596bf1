"""The search tree as data: env states reached by actions, with visit statistics; built by search, read by training.

``agentgym.planning.mcts`` grows it; ``agentgym.trainers.preferences`` turns it into step-level preference pairs and
value targets. It lives in the core so that both read one type while training never imports the search.
Conventions (AlphaZero style): a node's return counts the reward received on entering it; ``N`` counts every
simulation through the node; ``Q = W / N`` under mean backup, or the best return seen under max backup.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentgym.env import EnvSnapshot
from agentgym.jsonutil import to_jsonable
from agentgym.messages import Message, message_text


@dataclass(eq=False)
class Node:
    """One env state reached by `action` from `parent`; statistics N, W and the best return seen."""

    id: int
    parent: Node | None = None
    action: Message | None = None
    prior: float = 1.0
    depth: int = 0
    logprobs: list[float] | None = None
    token_ids: list[int] | None = None
    prompt_token_ids: list[int] | None = None
    N: int = 0
    W: float = 0.0
    max_return: float = -math.inf
    reward: float = 0.0                      # reward received when the env stepped into this node
    terminal: bool = False                   # terminated or truncated: never expanded
    success: bool | None = None
    observation: list[Message] = field(default_factory=list)  # new env messages on entering
    snapshot: EnvSnapshot | None = None
    children: list[Node] = field(default_factory=list)
    expanded: bool = False
    leaf_value: float | None = None          # evaluator's value of this state (cached)

    def q(self, backup: str = "mean") -> float:
        """The backed-up value: mean return (``W/N``) or the best return (max backup); 0 when unvisited."""
        if self.N == 0:
            return 0.0
        return self.max_return if backup == "max" else self.W / self.N

    @property
    def visited(self) -> bool:
        """Whether any simulation has passed through this node."""
        return self.N > 0

    def path(self) -> list[Node]:
        """Nodes from the root to this node (inclusive)."""
        out, x = [], self
        while x is not None:
            out.append(x)
            x = x.parent
        return out[::-1]

    def messages(self) -> list[Message]:
        """The conversation a policy sees at this node: first messages, then each action and its observation."""
        out: list[Message] = []
        for x in self.path():
            if x.action is not None:
                out.append(dict(x.action))  # type: ignore[arg-type]
            out.extend(x.observation)
        return out

    def walk(self) -> Iterator[Node]:
        """This node and all descendants, depth first."""
        stack = [self]
        while stack:
            x = stack.pop()
            yield x
            stack.extend(reversed(x.children))

    def to_json(self, *, with_snapshots: bool = False) -> dict[str, Any]:
        """This node as JSON: statistics, action, observation and child ids (the env snapshot only if asked)."""
        d = {"id": self.id, "parent": self.parent.id if self.parent else None, "depth": self.depth,
             "action": to_jsonable(self.action), "action_text": message_text(self.action) if self.action else None,
             "prior": self.prior, "N": self.N, "W": self.W,
             "max_return": self.max_return if self.N else None, "reward": self.reward, "terminal": self.terminal,
             "success": self.success, "expanded": self.expanded, "leaf_value": self.leaf_value,
             "logprobs": self.logprobs, "observation": to_jsonable(self.observation),
             "children": [c.id for c in self.children]}
        if with_snapshots and self.snapshot is not None:
            d["snapshot"] = {"env_id": self.snapshot.env_id, "task_id": self.snapshot.task_id,
                             "payload": to_jsonable(self.snapshot.payload)}
        return d


def tree_from_json(nodes: Sequence[Mapping[str, Any]]) -> Node:
    """Rebuild a tree (without snapshots) from a saved list of ``Node.to_json()`` dicts; returns the root."""
    built: dict[int, Node] = {}
    for d in nodes:
        built[d["id"]] = Node(id=d["id"], action=d["action"], prior=d["prior"], depth=d["depth"], N=d["N"], W=d["W"],
                              max_return=d["max_return"] if d["max_return"] is not None else -math.inf,
                              reward=d["reward"], terminal=d["terminal"], success=d["success"],
                              expanded=d["expanded"], leaf_value=d["leaf_value"], logprobs=d.get("logprobs"),
                              observation=list(d.get("observation") or []))
    root = None
    for d in nodes:
        node = built[d["id"]]
        node.children = [built[c] for c in d["children"]]
        for c in node.children:
            c.parent = node
        if d["parent"] is None:
            root = node
    assert root is not None, "no root in tree"
    return root
