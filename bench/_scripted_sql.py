"""A scripted stochastic SQL behaviour policy (stand-in for the tiny model): gold, corrupted gold, exploration, junk.

Each call samples one option with fixed probabilities and reports its log-probability as a one-token log-prob,
so MCTS priors and best-of-N see realistic (if crude) policy statistics. ``greedy=True`` takes the mode.
Swap in a model-backed policy with the scripts' ``--policy`` flag once the tiny model and its server exist.
"""

from __future__ import annotations

import json
import math

import numpy as np

from agentgym.policy import PolicyAction

OPTIONS = (("gold", 0.2), ("limit1", 0.3), ("no_where_or_group", 0.15), ("explore", 0.2), ("junk", 0.15))


def _call(name: str, query: str) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {
        "name": name, "arguments": json.dumps({"query": query})}}]}


class ScriptedSqlPolicy:
    name = "scripted-sql"

    def __init__(self, gold_of, seed: int = 0, greedy: bool = False):
        self.gold_of, self.greedy = gold_of, greedy
        self.rng = np.random.default_rng(seed)

    def _option(self, kind: str, gold: str) -> dict:
        if kind == "gold":
            return _call("submit_sql", gold)
        if kind == "limit1":
            return _call("submit_sql", gold + " LIMIT 1")
        if kind == "no_where_or_group":
            cut = min([i for i in (gold.find(" WHERE "), gold.find(" GROUP BY "), gold.find(" ORDER BY ")) if i > 0],
                      default=len(gold))
            return _call("submit_sql", gold[:cut] + (" LIMIT 3" if cut == len(gold) else ""))
        if kind == "explore":
            return _call("execute_sql", gold + " LIMIT 5")
        return {"role": "assistant", "content": "I think the answer is in the table."}

    async def act(self, observation, tools):
        names, probs = zip(*OPTIONS)
        i = int(np.argmax(probs)) if self.greedy else int(self.rng.choice(len(names), p=probs))
        return PolicyAction(self._option(names[i], self.gold_of(observation.task_id)), logprobs=[math.log(probs[i])])
