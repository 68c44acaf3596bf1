"""Step-level preference pairs and ReST-MCTS* value targets on hand-built trees (and on a real search tree)."""

from __future__ import annotations

import pytest

from agentgym.planning.mcts import MCTSConfig, search
from agentgym.search_tree import Node
from agentgym.trainers.preferences import rest_value_targets, step_preference_pairs


def mk(nid: int, parent: Node | None, *, N: int = 1, W: float = 0.0, terminal: bool = False,
       success: bool | None = None) -> Node:
    node = Node(id=nid, parent=parent, action={"role": "assistant", "content": f"a{nid}"} if parent else None,
                depth=parent.depth + 1 if parent else 0, N=N, W=W, terminal=terminal, success=success)
    if parent is not None:
        parent.children.append(node)
    return node


def test_pairs_are_best_vs_worst_sibling_and_equal_values_give_none():
    root = mk(0, None, N=8)
    a, b, c = mk(1, root, N=4, W=2.0), mk(2, root, N=2, W=0.0), mk(3, root, N=1, W=1.0)  # Q .5, 0, 1
    mk(4, a, N=2, W=1.0), mk(5, a, N=1, W=0.5)      # equal Q 0.5: no pair
    mk(6, b, N=1, W=0.0), mk(7, b, N=0)             # one visited child: no pair
    del c
    pairs = step_preference_pairs(root)
    assert [(p.node_id, p.chosen["content"], p.rejected["content"], p.q_chosen, p.q_rejected) for p in pairs] == \
        [(0, "a3", "a2", 1.0, 0.0)]
    assert pairs[0].messages == root.messages()
    assert len(step_preference_pairs(root, margin=0.5)) == 1
    assert step_preference_pairs(root, margin=1.0) == []  # the gap must exceed the margin


def test_rest_value_targets_follow_the_recursion():
    root = mk(0, None, N=10)
    a = mk(1, root)
    a1 = mk(2, a)
    mk(3, a1, terminal=True, success=True)           # A11: the correct answer
    a12 = mk(4, a1)
    mk(5, a12, terminal=True, success=False)         # A121
    mk(6, a, terminal=True, success=False)           # A2
    b = mk(7, root)
    mk(8, b, terminal=True, success=False)           # B1
    mk(9, b, N=0)                                    # unvisited: no target
    v = rest_value_targets(root)
    # v_k = max(0, v_{k-1} + (1 - v_{k-1}) r_k / m_k): A m=3, A1 m=2, A11 m=1; A12 r=-1 m=2; ...
    want = {1: 1 / 3, 2: 2 / 3, 3: 1.0, 4: 0.5, 5: 0.0, 6: 0.0, 7: 0.0, 8: 0.0}
    assert v == pytest.approx(want)


async def test_pairs_from_a_real_search_prefer_the_rewarding_branch():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_mcts import FixedPriorPolicy, TreeEnv

    res = await search(TreeEnv(goal="1201"), FixedPriorPolicy("1201"), MCTSConfig(simulations=150, seed=0))
    pairs = step_preference_pairs(res.root, margin=0.0)
    on_path = {n.id for n in res.best_path} | {res.root.id}
    goal_pairs = [p for p in pairs if p.node_id in on_path]
    assert goal_pairs and all(p.chosen["content"] == "1201"[p.depth] for p in goal_pairs)
    assert all(p.q_chosen > p.q_rejected for p in pairs)
