"""Training signal from a search tree: step-level preference pairs (best vs worst sibling) and ReST-MCTS* value targets.

Pairs (MCTS-DPO, Agent Q, Step-level Q-VM): at every node with at least two visited children, the highest-Q child
is chosen and the lowest-Q child rejected when their values differ by more than ``margin``; equal values give no
pair. Value targets (ReST-MCTS*): along a path, ``v_k = max(0, v_{k−1} + (1 − v_{k−1}) r_k / m_k)`` with v_root = 0,
``r_k = +1`` if a successful terminal is reachable below node k else −1, and ``m_k`` = the number of steps from
k's parent to the nearest successful terminal through k (a successful terminal has m = 1, so v = 1 there); for a
node that cannot reach success, ``m_k`` = steps from its parent to the nearest terminal or leaf below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentgym.jsonutil import to_jsonable
from agentgym.messages import Message
from agentgym.search_tree import Node


@dataclass
class StepPair:
    """One step-level preference: at the conversation `messages`, `chosen` beat `rejected` by value."""

    node_id: int
    depth: int
    messages: list[Message]
    chosen: Message
    rejected: Message
    q_chosen: float
    q_rejected: float
    chosen_token_ids: list[int] | None = None
    rejected_token_ids: list[int] | None = None
    prompt_token_ids: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(self.__dict__)


def step_preference_pairs(root: Node, *, margin: float = 0.0, min_visits: int = 1,
                          backup: str = "mean") -> list[StepPair]:
    """(best, worst) sibling pairs over the whole tree, in node-id order; only gaps larger than `margin`."""
    pairs = []
    for node in sorted(root.walk(), key=lambda n: n.id):
        kids = [c for c in node.children if c.N >= min_visits]
        if len(kids) < 2:
            continue
        best = max(kids, key=lambda c: (c.q(backup), -c.id))
        worst = min(kids, key=lambda c: (c.q(backup), c.id))
        if best.q(backup) - worst.q(backup) <= margin:
            continue
        same_prompt = best.prompt_token_ids is not None and best.prompt_token_ids == worst.prompt_token_ids
        pairs.append(StepPair(node_id=node.id, depth=node.depth, messages=node.messages(),
                              chosen=best.action, rejected=worst.action,  # type: ignore[arg-type]
                              q_chosen=best.q(backup), q_rejected=worst.q(backup),
                              chosen_token_ids=best.token_ids, rejected_token_ids=worst.token_ids,
                              prompt_token_ids=best.prompt_token_ids if same_prompt else None))
    return pairs


def _steps_to(node: Node, want_success: bool) -> int | None:
    """Fewest steps from `node` down to a successful terminal (or, if not `want_success`, to any leaf); None if none."""
    if want_success:
        if node.terminal and node.success:
            return 0
    elif node.terminal or not any(c.visited for c in node.children):
        return 0  # a leaf of the explored tree
    below = [s for c in node.children if c.visited for s in [_steps_to(c, want_success)] if s is not None]
    return 1 + min(below) if below else None


def rest_value_targets(root: Node) -> dict[int, float]:
    """ReST-MCTS* process-value targets ``v_k`` for every visited non-root node, keyed by node id."""
    targets: dict[int, float] = {}

    def visit(node: Node, v_parent: float) -> None:
        for child in node.children:
            if not child.visited:
                continue
            to_success = _steps_to(child, True)
            if to_success is not None:
                r, m = 1.0, 1 + to_success
            else:
                r, m = -1.0, 1 + (_steps_to(child, False) or 0)
            v = max(0.0, v_parent + (1.0 - v_parent) * r / m)
            targets[child.id] = v
            visit(child, v)

    visit(root, 0.0)
    return targets
