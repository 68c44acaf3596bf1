"""Monte-Carlo tree search over real environments: LLM-proposed actions, UCT/PUCT/var-PUCT, snapshot or replay branching.

One simulation (AlphaZero style): descend from the root by the selection rule to a node never visited, step the
env into it (restore the parent's snapshot, apply the node's action), propose k candidate actions from the policy
(deduplicated; priors = length-normalised sequence probabilities, MCTS-DPO), evaluate the node (terminal reward,
a value function, or a policy rollout) and back the return up the path.

Conventions: a node's return counts the reward received on entering it, ``G(x) = r(x) + γ G(next)``;
``N(x)`` counts every simulation through x including the one that first visited it, so for an expanded non-terminal
node ``N = 1 + Σ N(children)``, for a leaf (terminal, depth limit) ``N`` = simulations that ended there;
``Q(x) = W(x) / N(x)`` (mean backup) or the largest return seen (max backup). Terminal nodes are never expanded.
Envs without native ``snapshot()``/``restore()`` are wrapped in ``agentgym.replay.ReplayEnvAdapter``.
The tree's node type, ``agentgym.search_tree.Node``, lives in the core so training can read trees without search.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentgym.env import AsyncEnv, SupportsSnapshot
from agentgym.errors import ContextOverflowError, InfrastructureError
from agentgym.messages import Message
from agentgym.planning.best_of_n import sample_candidates
from agentgym.policy import Policy, PolicyAction, PolicyObservation
from agentgym.replay import ReplayEnvAdapter
from agentgym.search_tree import Node

# --- selection rules and priors (pure; each pinned to hand-computed values in tests/test_mcts.py) ---------


def uct_score(q: float, visits: int, parent_visits: int, c: float = 1.0) -> float:
    """UCT in the LATS / ReST form: ``Q + c sqrt(2 ln N_p / n)`` (infinite for an unvisited child)."""
    if visits == 0:
        return math.inf
    return q + c * math.sqrt(2.0 * math.log(parent_visits) / visits)


def puct_score(q: float, prior: float, visits: int, parent_visits: int, c: float = 1.0) -> float:
    """AlphaZero PUCT: ``Q + c P sqrt(N_p) / (1 + n)``."""
    return q + c * prior * math.sqrt(parent_visits) / (1 + visits)


def var_puct_score(q: float, prior: float, visits: int, parent_visits: int, c: float = 4.0,
                   c_base: float = 10.0) -> float:
    """P-UCB with growing weight (PG-TD, RethinkMCTS): ``Q + β(N_p) P sqrt(ln N_p) / (1 + n)``, β = ln((N_p+c_base+1)/c_base) + c."""
    beta = math.log((parent_visits + c_base + 1) / c_base) + c
    return q + beta * prior * math.sqrt(math.log(parent_visits)) / (1 + visits) if parent_visits > 0 else q


def sequence_priors(logprobs: Sequence[Sequence[float] | None], alpha: float = 1.25) -> list[float]:
    """Sibling priors ``exp(Σ logp / L^alpha)`` normalised to sum 1 (uniform if any sibling has no log-probs)."""
    if not logprobs:
        return []
    if any(lp is None or len(lp) == 0 for lp in logprobs):
        return [1.0 / len(logprobs)] * len(logprobs)
    raw = [math.exp(sum(lp) / len(lp) ** alpha) for lp in logprobs]  # type: ignore[arg-type]
    total = sum(raw)
    return [r / total for r in raw]


# --- configuration and result -------------------------------------------------------------------------


@dataclass
class MCTSConfig:
    """Search hyper-parameters and budgets (any budget that is set stops the search when reached)."""

    simulations: int = 32                 # budget: number of simulations
    max_env_steps: int | None = None      # budget: env steps (replays and rollouts included)
    max_policy_calls: int | None = None   # budget: policy requests
    max_seconds: float | None = None      # budget: wall time
    k: int = 3                            # candidate actions sampled per expansion (deduplicated)
    select: str = "puct"                  # uct | puct | var_puct
    c: float = 1.0                        # exploration weight (var_puct: its c, 4 in RethinkMCTS)
    c_base: float = 10.0                  # var_puct's c_base
    backup: str = "mean"                  # mean | max
    gamma: float = 1.0                    # discount inside the tree
    max_depth: int = 8                    # nodes at this depth are leaves (evaluated, never expanded)
    evaluator: str = "terminal"           # terminal (0 until a terminal reward) | value | rollout
    rollout_depth: int = 8                # steps of a policy rollout from a leaf
    unvisited_value: float = 0.0          # Q used for unvisited children under PUCT
    prior_alpha: float = 1.25             # length penalty exponent of the sequence prior
    seed: int = 0                         # tie-breaking
    stop_on_success: bool = False         # LATS: stop at the first successful terminal
    step_timeout_s: float = 600.0
    policy_timeout_s: float = 300.0


ValueFn = Callable[[Sequence[Message]], float | Awaitable[float]]


@dataclass
class SearchResult:
    """The whole tree, the best trajectory found and what the search cost."""

    root: Node
    best_path: list[Node]
    simulations: int
    env_steps: int
    policy_calls: int
    seconds: float
    first_success_simulation: int | None
    trace: list[dict[str, Any]]   # per simulation: node ids on the path and the leaf value backed up

    @property
    def best_return(self) -> float:
        return path_return(self.best_path)

    @property
    def success(self) -> bool:
        return bool(self.best_path and self.best_path[-1].success)

    @property
    def actions(self) -> list[Message]:
        return [n.action for n in self.best_path if n.action is not None]

    def nodes(self) -> list[Node]:
        return sorted(self.root.walk(), key=lambda n: n.id)

    def to_json(self, *, with_snapshots: bool = False) -> dict[str, Any]:
        return {"best_path": [n.id for n in self.best_path], "best_return": self.best_return,
                "success": self.success, "simulations": self.simulations, "env_steps": self.env_steps,
                "policy_calls": self.policy_calls, "seconds": self.seconds,
                "first_success_simulation": self.first_success_simulation,
                "tree": [n.to_json(with_snapshots=with_snapshots) for n in self.nodes()]}


def path_return(path: Sequence[Node], gamma: float = 1.0) -> float:
    """Discounted sum of the rewards along a path (root excluded: it has none)."""
    return sum(gamma ** i * n.reward for i, n in enumerate(x for x in path if x.parent is not None))


def best_trajectory(root: Node, backup: str = "mean") -> list[Node]:
    """The best terminal path found (success first, then return, then fewer steps); else the most-visited descent."""
    ends = [n for n in root.walk() if n.terminal and n.visited]
    if ends:
        best = max(ends, key=lambda n: (bool(n.success), path_return(n.path()), -n.depth, -n.id))
        return best.path()[1:]
    path, x = [], root
    while x.children and any(c.visited for c in x.children):
        x = max((c for c in x.children if c.visited), key=lambda c: (c.N, c.q(backup), -c.id))
        path.append(x)
    return path


# --- the search ---------------------------------------------------------------------------------------


class MCTS:
    """MCTS over one task of an AsyncEnv: ``result = await MCTS(env, policy, cfg).search(seed=..., options=...)``."""

    def __init__(self, env: AsyncEnv, policy: Policy, config: MCTSConfig | None = None, *,
                 value_fn: ValueFn | None = None):
        self.cfg = config or MCTSConfig()
        if self.cfg.select not in ("uct", "puct", "var_puct"):
            raise ValueError(f"unknown selection rule {self.cfg.select!r}")
        if self.cfg.backup not in ("mean", "max"):
            raise ValueError(f"unknown backup {self.cfg.backup!r}")
        if self.cfg.evaluator == "value" and value_fn is None:
            raise ValueError("evaluator='value' needs a value_fn")
        self.env = env if isinstance(env, SupportsSnapshot) else ReplayEnvAdapter(env)
        self.policy = policy
        self.value_fn = value_fn
        self.rng = np.random.default_rng(self.cfg.seed)
        self.env_steps = 0
        self.policy_calls = 0
        self._ids = 0
        self._episode: dict[str, Any] = {}

    # budgets
    def _budget_left(self, sims: int, t0: float, found: bool) -> bool:
        c = self.cfg
        return (sims < c.simulations
                and (c.max_env_steps is None or self.env_steps < c.max_env_steps)
                and (c.max_policy_calls is None or self.policy_calls < c.max_policy_calls)
                and (c.max_seconds is None or time.perf_counter() - t0 < c.max_seconds)
                and not (c.stop_on_success and found))

    async def search(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> SearchResult:
        """Reset the env to the task (seed, options) and search until a budget runs out."""
        t0 = time.perf_counter()
        obs, info = await asyncio.wait_for(self.env.areset(seed=seed, options=options), self.cfg.step_timeout_s)
        self._episode = {"seed": seed, "task_id": str(info.get("task_id") or ""),
                         "env_id": str(info.get("env_id") or self.env.env_id)}
        root = self._new_node(None, None, 1.0)
        root.observation = list(obs["messages"])
        root.snapshot = await self.env.snapshot()
        sims, first_success, trace = 0, None, []
        while self._budget_left(sims, t0, first_success is not None):
            path, value = await self._simulate(root)
            sims += 1
            trace.append({"path": [n.id for n in path], "value": value})
            if first_success is None and path[-1].success:
                first_success = sims
        return SearchResult(root=root, best_path=best_trajectory(root, self.cfg.backup), simulations=sims,
                            env_steps=self.env_steps, policy_calls=self.policy_calls,
                            seconds=time.perf_counter() - t0, first_success_simulation=first_success, trace=trace)

    def _new_node(self, parent: Node | None, action: PolicyAction | None, prior: float) -> Node:
        node = Node(id=self._ids, parent=parent, prior=prior, depth=0 if parent is None else parent.depth + 1)
        if action is not None:
            node.action = dict(action.message)  # type: ignore[assignment]
            node.logprobs, node.token_ids = action.logprobs, action.token_ids
            node.prompt_token_ids = action.prompt_token_ids
        self._ids += 1
        return node

    async def _simulate(self, root: Node) -> tuple[list[Node], float]:
        node, path = root, [root]
        while node.visited and node.children:
            node = self._select(node)
            path.append(node)
        if not node.visited:
            if node is not root:
                await self._enter(node)
            if not node.terminal and node.depth < self.cfg.max_depth:
                await self._expand(node)
            node.leaf_value = 0.0 if node.terminal else await self._evaluate(node)
        value = node.leaf_value or 0.0
        g = value
        for x in reversed(path):  # G(x) = r(x) + γ G(next); the root's reward is 0
            g = x.reward + self.cfg.gamma * g
            x.N += 1
            x.W += g
            x.max_return = max(x.max_return, g)
        return path, value

    def _select(self, node: Node) -> Node:
        c = self.cfg
        scores = []
        for ch in node.children:
            q = ch.q(c.backup) if ch.visited else c.unvisited_value
            if c.select == "uct":
                s = uct_score(q, ch.N, node.N, c.c)
            elif c.select == "puct":
                s = puct_score(q, ch.prior, ch.N, node.N, c.c)
            else:
                s = var_puct_score(q, ch.prior, ch.N, node.N, c.c, c.c_base)
            scores.append(s)
        best = max(scores)
        ties = [i for i, s in enumerate(scores) if s == best or (math.isfinite(best) and best - s <= 1e-12)]
        return node.children[ties[int(self.rng.integers(len(ties)))] if len(ties) > 1 else ties[0]]

    async def _step(self, action: Message) -> tuple[dict, float, bool, bool, dict]:
        out = await asyncio.wait_for(self.env.astep(action), self.cfg.step_timeout_s)
        self.env_steps += 1
        if out[4].get("infra_error"):
            raise InfrastructureError(f"env failed during search: {out[4]['infra_error']}")
        return out

    async def _enter(self, node: Node) -> None:
        """Restore the parent's state and step into `node` (one env step, plus the replay cost if any)."""
        assert node.parent is not None and node.parent.snapshot is not None and node.action is not None
        await asyncio.wait_for(self.env.restore(node.parent.snapshot), self.cfg.step_timeout_s)
        obs, reward, terminated, truncated, info = await self._step(node.action)
        node.reward = float(reward)
        node.observation = list(obs["messages"])
        node.terminal = bool(terminated or truncated)
        if node.terminal:
            node.success = bool((info.get("outcome") or {}).get("success", False))
        else:
            node.snapshot = await self.env.snapshot()

    def _observation(self, node: Node) -> PolicyObservation:
        ctx = None
        if node.prompt_token_ids is not None and node.token_ids is not None:
            ctx = list(node.prompt_token_ids) + list(node.token_ids)
        return PolicyObservation(messages=node.messages(), turn=node.depth, episode_id=f"mcts-{id(self):x}",
                                 env_id=self._episode.get("env_id", ""), task_id=self._episode.get("task_id", ""),
                                 action_space=self.env.action_space,
                                 seed=self._episode.get("seed"), context_token_ids=ctx)

    async def _expand(self, node: Node) -> None:
        """Propose k candidate actions (deduplicated) and add them as unvisited children with sequence priors."""
        try:
            candidates, calls = await sample_candidates(self.policy, self._observation(node),
                                                        list(self.env.tools), self.cfg.k,
                                                        timeout_s=self.cfg.policy_timeout_s)
        except ContextOverflowError:  # the conversation no longer fits: a dead end, scored as failure
            node.expanded = True
            return
        self.policy_calls += calls
        priors = sequence_priors([c.logprobs for c in candidates], self.cfg.prior_alpha)
        node.children = [self._new_node(node, c, p) for c, p in zip(candidates, priors)]
        node.expanded = True

    async def _evaluate(self, node: Node) -> float:
        """Value of a non-terminal state: 0 (terminal evaluator), value_fn(messages), or a policy rollout's return."""
        if self.cfg.evaluator == "value":
            v = self.value_fn(node.messages())  # type: ignore[misc]
            return float(await v) if inspect.isawaitable(v) else float(v)
        if self.cfg.evaluator == "rollout":
            return await self._rollout(node)
        return 0.0

    async def _rollout(self, node: Node) -> float:
        """Play the policy (one sample per step) from `node`'s state, which the env is in right now."""
        messages, total, discount = node.messages(), 0.0, 1.0
        for t in range(self.cfg.rollout_depth):
            obs = PolicyObservation(messages=list(messages), turn=node.depth + t, episode_id=f"mcts-{id(self):x}",
                                    env_id=self._episode.get("env_id", ""), task_id=self._episode.get("task_id", ""),
                                    seed=self._episode.get("seed"))
            try:
                raw = await asyncio.wait_for(self.policy.act(obs, list(self.env.tools)),
                                             self.cfg.policy_timeout_s)
            except ContextOverflowError:
                break
            self.policy_calls += 1
            action = PolicyAction.of(raw)
            o, r, term, trunc, _ = await self._step(action.message)
            total += discount * float(r)
            discount *= self.cfg.gamma
            messages = [*messages, dict(action.message), *o["messages"]]
            if term or trunc:
                break
        return total


async def search(env: AsyncEnv, policy: Policy, config: MCTSConfig | None = None, *, seed: int | None = None,
                 options: dict[str, Any] | None = None, value_fn: ValueFn | None = None) -> SearchResult:
    """Run MCTS on one task (``options={"task_id": ...}``) of `env` with `policy` proposing actions."""
    return await MCTS(env, policy, config, value_fn=value_fn).search(seed=seed, options=options)
