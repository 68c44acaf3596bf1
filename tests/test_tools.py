"""Tool declaration: schemas from signatures, and argument validation with agent-readable errors."""

from __future__ import annotations

from typing import Literal

import pytest

from agentgym.tools import MAX_STRING_ARGUMENT, TOOL_ATTRIBUTE, Tool, tool


class Holder:
    @tool("Run a query.", params={"query": "SQL text", "limit": "max rows"})
    async def execute(self, query: str, limit: int = 50, mode: Literal["fast", "slow"] = "fast",
                      tags: list[str] | None = None) -> str:
        return query


def test_schema_from_signature():
    spec: Tool = getattr(Holder.execute, TOOL_ATTRIBUTE)
    assert spec.schema() == {"type": "function", "function": {
        "name": "execute", "description": "Run a query.",
        "parameters": {"type": "object", "required": ["query"], "properties": {
            "query": {"type": "string", "description": "SQL text"},
            "limit": {"type": "integer", "description": "max rows"},
            "mode": {"enum": ["fast", "slow"]},
            "tags": {"type": "array", "items": {"type": "string"}}}}}}


def test_sync_handlers_and_unknown_descriptions_are_refused():
    with pytest.raises(TypeError, match="async def"):
        tool("x")(lambda self: None)
    with pytest.raises(TypeError, match="unknown parameters"):
        async def f(self, a: int) -> str: ...
        tool("x", params={"b": "?"})(f)


@pytest.mark.parametrize("args, problem", [
    ({}, "missing required argument(s): query"),
    ({"query": 5}, "argument 'query' of execute: expected string, got integer"),
    ({"query": "q", "nope": 1}, "unknown argument(s): nope"),
    ({"query": "q", "mode": "medium"}, "must be one of ['fast', 'slow']"),
    ({"query": "q", "tags": ["a", 3]}, "array item expected string, got integer"),
    ({"query": "q", "limit": True}, "expected integer, got boolean"),
    ({"query": "x" * (MAX_STRING_ARGUMENT + 1)}, "string too long"),
    ("not a dict", "must be a JSON object, got string"),
])
def test_validation_problems(args, problem):
    spec: Tool = getattr(Holder.execute, TOOL_ATTRIBUTE)
    clean, found = spec.validate(args)
    assert clean == {} and found is not None and problem in found


def test_numeric_strings_are_read_as_numbers():
    spec: Tool = getattr(Holder.execute, TOOL_ATTRIBUTE)
    assert spec.validate({"query": "q", "limit": " 7 "}) == ({"query": "q", "limit": 7}, None)
    assert spec.validate({"query": "q", "limit": "seven"})[1] == "argument 'limit' of execute: expected integer, got string"
