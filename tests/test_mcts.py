"""MCTS: selection formulas and priors (§4.0 values), the single-rewarding-leaf tree, backup invariants, snapshot vs replay."""

from __future__ import annotations

import json
import math

import pytest

from agentgym.env import AsyncEnv, EnvSnapshot
from agentgym.policy import PolicyAction
from agentgym.replay import ReplayEnvAdapter
from agentgym.planning.mcts import MCTSConfig, puct_score, search, sequence_priors, uct_score, var_puct_score
from agentgym.search_tree import tree_from_json

# --- formulas -------------------------------------------------------------------------------------------


def test_uct_lats_form_matches_hand_value():
    assert uct_score(1 / 2, 2, 10, c=1.0) == pytest.approx(2.017427, abs=1e-6)
    assert uct_score(0.0, 0, 10) == math.inf


def test_puct_matches_hand_value():
    assert puct_score(0.5, 0.3, 3, 16, c=1.0) == pytest.approx(0.8, abs=1e-12)


def test_var_puct_matches_hand_value():
    assert var_puct_score(0.5, 0.5, 1, 10, c=4, c_base=10) == pytest.approx(2.298886, abs=1e-6)


def test_sequence_prior_from_fixed_logprobs():
    assert sequence_priors([[-0.1, -0.2, -0.3], [-1.0, -0.5]]) == pytest.approx([0.617442, 0.382558], abs=1e-6)
    assert sequence_priors([[-0.3], None]) == [0.5, 0.5]


# --- a complete tree env with one rewarding leaf ---------------------------------------------------------


class TreeEnv(AsyncEnv):
    """Complete b-ary tree of depth d; actions are the digits "0".."b-1"; reward 1 only at `goal` (a digit string)."""

    env_id = "test/tree-v0"

    def __init__(self, b: int = 3, d: int = 4, goal: str = "2102"):
        self.b, self.d, self.goal = b, d, goal
        self.path = ""
        self.tools = ()

    async def areset(self, *, seed=None, options=None):
        await super().areset(seed=seed)
        self.path = ""
        return {"messages": [{"role": "user", "content": "root"}]}, {"task_id": "tree"}

    async def astep(self, action):
        text = action if isinstance(action, str) else action["content"]
        assert len(self.path) < self.d, "stepped past a terminal node"
        self.path += text
        done = len(self.path) == self.d
        reward = 1.0 if self.path == self.goal else 0.0
        info = {"outcome": {"reward": reward, "success": reward > 0}} if done else {}
        return {"messages": [{"role": "user", "content": f"at {self.path}"}]}, reward, done, False, info

    async def snapshot(self):
        return EnvSnapshot(self.env_id, "tree", {"path": self.path})

    async def restore(self, snapshot):
        self.path = snapshot.payload["path"]


class FixedPriorPolicy:
    """Proposes every digit at once (``act_n``) with fixed log-probs: a prior that favours the goal's digit."""

    name = "fixed-prior"

    def __init__(self, goal: str, good: float | None = None, b: int = 3):
        self.goal, self.good, self.b = goal, good, b

    async def act_n(self, observation, tools, n):
        depth = observation.turn
        out = []
        for a in range(self.b):
            if self.good is None:
                p = 1.0 / self.b
            else:
                p = self.good if str(a) == self.goal[depth] else (1 - self.good) / (self.b - 1)
            out.append(PolicyAction({"role": "assistant", "content": str(a)}, logprobs=[math.log(p)]))
        return out

    async def act(self, observation, tools):
        return (await self.act_n(observation, tools, 1))[0]


@pytest.mark.parametrize("select", ["puct", "uct"])
async def test_uniform_prior_finds_the_single_leaf_within_121_simulations(select):
    goal = "2102"
    found = []
    for seed in range(40):
        res = await search(TreeEnv(goal=goal), FixedPriorPolicy(goal), MCTSConfig(
            simulations=121, k=3, select=select, c=1.0, max_depth=4, seed=seed, stop_on_success=True))
        assert res.first_success_simulation is not None, f"seed {seed}: not found in 121"
        found.append(res.first_success_simulation)
        assert res.success and [n.action["content"] for n in res.best_path] == list(goal)
    # no simulation is wasted (≤ 1 + 120) and the balanced descent needs at least 41 (§6.3)
    assert max(found) <= 121 and min(found) >= 41
    assert len(set(found)) > 1  # tie-breaking really varies with the seed


async def test_peaked_prior_finds_the_leaf_in_exactly_five_simulations():
    goal = "0212"
    for seed in range(5):
        res = await search(TreeEnv(goal=goal), FixedPriorPolicy(goal, good=0.9), MCTSConfig(
            simulations=50, k=3, select="puct", c=1.0, max_depth=4, seed=seed, stop_on_success=True))
        assert res.first_success_simulation == 5


@pytest.mark.parametrize("c", [1.0, 2.0])
async def test_after_200_simulations_the_most_visited_root_child_is_on_the_rewarding_path(c):
    goal = "1220"
    for seed in range(8):
        res = await search(TreeEnv(goal=goal), FixedPriorPolicy(goal), MCTSConfig(
            simulations=200, k=3, select="puct", c=c, max_depth=4, seed=seed))
        best = max(res.root.children, key=lambda ch: ch.N)
        assert best.action["content"] == goal[0]
        assert res.simulations == 200


async def test_visit_counts_and_values_satisfy_the_backup_invariants():
    goal = "1011"
    res = await search(TreeEnv(goal=goal), FixedPriorPolicy(goal), MCTSConfig(simulations=90, k=3, seed=3))
    returns: dict[int, list[float]] = {}
    by_id = {n.id: n for n in res.root.walk()}
    for sim in res.trace:  # recompute every node's returns from the trace: G(x) = r(x) + G(next), γ = 1
        g = sim["value"]
        for nid in reversed(sim["path"]):
            g = by_id[nid].reward + g
            returns.setdefault(nid, []).append(g)
    assert res.root.N == res.simulations
    for node in res.root.walk():
        if not node.visited:
            assert node.children == [] and returns.get(node.id) is None
            continue
        assert node.N == len(returns[node.id])
        assert node.q() == pytest.approx(sum(returns[node.id]) / node.N)
        assert node.q("max") == pytest.approx(max(returns[node.id]))
        if node.terminal:
            assert node.children == [] and not node.expanded  # terminal nodes are never expanded
        else:
            assert node.N == 1 + sum(ch.N for ch in node.children)  # N convention: the first visit counts


async def test_budget_by_env_steps_and_json_round_trip():
    goal = "2222"
    res = await search(TreeEnv(goal=goal), FixedPriorPolicy(goal), MCTSConfig(simulations=1000, max_env_steps=10))
    assert res.env_steps == 10
    data = json.loads(json.dumps(res.to_json()))
    root = tree_from_json(data["tree"])
    assert [n.N for n in sorted(root.walk(), key=lambda n: n.id)] == [n.N for n in res.nodes()]


async def test_max_backup_and_rollout_evaluator_find_the_leaf():
    goal = "0000"
    res = await search(TreeEnv(goal=goal), FixedPriorPolicy(goal, good=0.6), MCTSConfig(
        simulations=30, evaluator="rollout", backup="max", max_depth=4, seed=1))
    assert res.root.q("max") == 1.0  # a rollout along the prior's favourite reached the goal
    assert res.success


# --- the real SQL env: native snapshot and the replay adapter give the same tree -------------------------


class ScriptedSqlCandidates:
    """Deterministic candidates for a SQL task: explore, submit gold, submit a corrupted query, fixed log-probs."""

    name = "scripted-sql"

    def __init__(self, gold: str = ""):
        self.gold = gold  # the test reads it from the env's task

    async def act_n(self, observation, tools, n):
        table = "streams" if "streams" in observation.messages[1]["content"] else "sqlite_master"
        acts = [(f"SELECT COUNT(*) FROM {table}", "execute_sql", [-0.2, -0.3]),
                (self.gold, "submit_sql", [-0.1, -0.1, -0.4]),
                (self.gold + " LIMIT 1", "submit_sql", [-1.0, -0.5])]
        return [PolicyAction({"role": "assistant", "content": None, "tool_calls": [{
            "id": f"c{i}", "type": "function", "function": {"name": name, "arguments": json.dumps({"query": q})}}]},
            logprobs=lp) for i, (q, name, lp) in enumerate(acts)]

    async def act(self, observation, tools):
        return (await self.act_n(observation, tools, 1))[0]


def _tree_signature(res):
    return [(d["id"], d["parent"], d["action_text"], d["N"], round(d["W"], 9), d["reward"], d["terminal"],
             json.dumps(d["observation"], sort_keys=True), d["prior"]) for d in res.to_json()["tree"]]


async def test_native_snapshot_and_replay_adapter_give_identical_trees_on_sql():
    from agentgym.envs.sql.env import SqlEnv

    policy = ScriptedSqlCandidates()
    cfg = MCTSConfig(simulations=14, k=3, max_depth=3, select="puct", seed=7)
    native = SqlEnv(split="train")
    try:
        obs, info = await native.areset(seed=0, options={"split": "train"})
        task_id = info["task_id"]
        policy.gold = native.task.data["gold_sql"]
        res_native = await search(native, policy, cfg, seed=0, options={"task_id": task_id})
    finally:
        await native.aclose()
    replay = ReplayEnvAdapter(SqlEnv(split="train"))
    try:
        res_replay = await search(replay, policy, cfg, seed=0, options={"task_id": task_id})
    finally:
        await replay.aclose()
    assert _tree_signature(res_native) == _tree_signature(res_replay)
    assert res_native.success and res_replay.success
    entered = [n for n in res_replay.root.walk() if n.visited and n.parent is not None]
    assert res_native.env_steps == len(entered)  # native: one step per new node
    # replay: restoring the parent at depth d-1 replays d-1 actions, then one step: Σ depth over expansions
    assert replay.env_steps == sum(n.depth for n in entered)
    assert replay.replay_steps == sum(n.depth - 1 for n in entered)
