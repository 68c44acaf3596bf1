"""The SQL environment (``agentgym/sql-v0``): answer questions over real, read-only SQLite databases.

Tools: ``execute_sql(query)`` shows a truncated result table or the error; ``submit_sql(query)`` ends the
episode. The reward is test-suite execution accuracy: the submitted query must match the gold query's
result on every instance of the database (bag semantics; order only when gold has ORDER BY; columns
may be permuted). Set-based EX (BIRD), syntax, schema-linking and n-gram scores are reported in
``info["reward_components"]`` and never mixed into the reward.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

import numpy as np

from agentgym.actions import random_tool_call
from agentgym.env import EnvSnapshot
from agentgym.envs.sql.evaluation import evaluate_sql
from agentgym.envs.sql.executor import SqlExecutor, shared_executor
from agentgym.envs.sql.prompting import SYSTEM_PROMPT, format_table, task_prompt
from agentgym.envs.sql.schemas import FAMILIES
from agentgym.envs.sql.suite import SqlWorld, load_world
from agentgym.errors import InfrastructureError, ToolError
from agentgym.messages import Action, Message
from agentgym.tasks import Task, TaskSuite
from agentgym.tool_calls import TagToolCalls
from agentgym.tool_env import Outcome, ToolEnv, ToolOutput
from agentgym.tools import tool

SQL_TAGS = TagToolCalls("sql-tags", {"sql": ("execute_sql", "query"), "solution": ("submit_sql", "query")},
                        response_tag="observation")


class SqlEnv(ToolEnv):
    """Text-to-SQL with exploration; see the module docstring for the protocol and reward."""

    env_id = "agentgym/sql-v0"
    max_turns = 5
    tool_parsers = ("openai", "hermes", SQL_TAGS)
    options_help = {
        "dataset": "generated (default) | spider | bird: which task suite to serve",
        "path": "directory of a Spider or BIRD dataset on disk (with dataset=spider|bird)",
        "split": "task split to draw from: train | dev | test (default train)",
        "max_turns": "turn budget (default 5)",
        "query_timeout_s": "deadline of one query in seconds (default 2.0)",
        "display_rows": "rows shown per query result (default 50)",
        "tool_parsers": "accepted tool-call formats (default: openai, hermes, sql-tags)",
    }

    def __init__(self, *, dataset: str = "generated", path: str | None = None, query_timeout_s: float = 2.0,
                 display_rows: int = 50, executor: SqlExecutor | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.dataset = dataset
        self.path = path
        self.query_timeout_s = query_timeout_s
        self.display_rows = display_rows
        self._executor = executor
        self.history: list[dict[str, Any]] = []

    # --- suite and episode ------------------------------------------------------------------------

    def load_suite(self) -> TaskSuite:
        return self.world.suite

    @cached_property
    def world(self) -> SqlWorld:
        """Databases and schemas shared by every episode (``load_world`` builds them once per process)."""
        return load_world(self.dataset, self.path)

    @property
    def executor(self) -> SqlExecutor:
        if self._executor is None:
            self._executor = shared_executor()
        return self._executor

    def _instances(self, task: Task) -> list:
        return self.world.databases[task.family]

    async def begin_episode(self, task: Task) -> list[Message]:
        self.history = []
        return [{"role": "system", "content": SYSTEM_PROMPT.format(max_turns=self.max_turns)},
                {"role": "user", "content": task_prompt(self.world.schemas[task.family], task.data["question"],
                                                        task.data.get("evidence"))}]

    # --- tools ------------------------------------------------------------------------------------

    @tool("Run one read-only SQLite query and see its result (truncated) or its error.",
          params={"query": "a single SQLite SELECT statement"})
    async def execute_sql(self, query: str) -> str:
        assert self.task is not None
        result = await self.executor.execute(self._instances(self.task)[0], query, timeout_s=self.query_timeout_s,
                                             max_rows=max(self.display_rows, 1000))
        self.history.append({"tool": "execute_sql", "query": query, "ok": result.ok})
        if not result.ok:
            raise ToolError(f"SQL error: {result.error}")
        return format_table(result.columns, result.rows, truncated=result.truncated, max_rows=self.display_rows)

    @tool("Submit your final SQL query; its result is checked against the expected answer and the episode ends.",
          params={"query": "the final SQLite SELECT statement"}, terminal=True)
    async def submit_sql(self, query: str) -> ToolOutput:
        assert self.task is not None
        ev = await evaluate_sql(self.executor, self._instances(self.task), self.task.data["gold_sql"], query,
                                timeout_s=max(self.query_timeout_s, 5.0))
        if ev.gold_errors:  # our data or machinery failed, not the agent: never score it
            raise InfrastructureError("; ".join(ev.gold_errors))
        self.history.append({"tool": "submit_sql", "query": query, "ok": ev.test_suite_match})
        if ev.test_suite_match:
            text = "Correct: your query's result matches the expected answer."
        elif ev.error:
            text = f"Incorrect: your query failed ({ev.error})."
        else:
            text = "Incorrect: your query's result does not match the expected answer."
        return ToolOutput(text, outcome=Outcome(1.0 if ev.test_suite_match else 0.0, ev.test_suite_match,
                                                ev.components()))

    # --- capabilities -----------------------------------------------------------------------------

    async def oracle_action(self) -> Action | None:
        """Submit the gold query (the reference solution)."""
        if self.task is None:
            return None
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": "oracle", "type": "function",
            "function": {"name": "submit_sql", "arguments": json.dumps({"query": self.task.data["gold_sql"]})}}]}

    async def snapshot(self) -> EnvSnapshot:
        """The databases are read-only, so the state is the episode counters and the query history."""
        assert self.task is not None, "snapshot() needs a started episode"
        return EnvSnapshot(self.env_id, self.task.id, {"base": self._base_state(),
                                                       "history": [dict(h) for h in self.history]})

    async def restore(self, snapshot: EnvSnapshot) -> None:
        if snapshot.env_id != self.env_id:
            raise ValueError(f"snapshot of {snapshot.env_id} cannot restore {self.env_id}")
        await self.aload_suite()
        self._load_base_state(snapshot.payload["base"])
        self.history = [dict(h) for h in snapshot.payload["history"]]

    def sample_action(self, rng: np.random.Generator) -> Action:
        """A random but well-formed query over the current schema, in a random tool-call format."""
        if self.task is not None:
            tables = self.world.tables[self.task.family]
        else:  # before the first reset: any generated family
            family = list(FAMILIES.values())[int(rng.integers(len(FAMILIES)))]
            tables = [(t.name, [c.name for c in t.columns]) for t in family.tables]
        table, cols = tables[int(rng.integers(len(tables)))]
        chosen = [cols[i] for i in sorted(set(rng.integers(len(cols), size=int(rng.integers(1, 3)))))]
        select = ", ".join(f'"{c}"' for c in chosen) if rng.random() < 0.7 else f'COUNT("{chosen[0]}")'
        query = f'SELECT {select} FROM "{table}"'
        if rng.random() < 0.5:
            query += f' WHERE "{cols[int(rng.integers(len(cols)))]}" > {int(rng.integers(0, 100))}'
        if rng.random() < 0.3:
            query += f" LIMIT {int(rng.integers(1, 20))}"
        tool_name = "submit_sql" if rng.random() < 0.5 else "execute_sql"
        tag = "solution" if tool_name == "submit_sql" else "sql"
        return random_tool_call(rng, tool_name, {"query": query}, tag=tag, thought="try this")
