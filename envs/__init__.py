"""Built-in environments. Registered through the ``agentgym.envs`` entry point, lazily (nothing heavy is imported)."""

from __future__ import annotations


def register_builtin_envs() -> None:
    """Register every built-in env with lazy "module:Class" entry points."""
    from agentgym.registry import register

    register("agentgym/sql-v0", "agentgym.envs.sql.env:SqlEnv",
             description="Text-to-SQL against real SQLite databases: explore with execute_sql, answer with "
                         "submit_sql; reward = test-suite execution accuracy over 3 database instances.",
             source="agentgym")
