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


def test_sync_handlers_run_in_a_thread_and_unknown_descriptions_are_refused():
    def plain(self, a: int) -> str: ...

    async def coroutine(self, a: int) -> str: ...

    assert getattr(tool("x")(plain), TOOL_ATTRIBUTE).runs_in == "thread"
    assert getattr(tool("x")(coroutine), TOOL_ATTRIBUTE).runs_in == "loop"
    assert getattr(tool("x", isolate="process")(plain), TOOL_ATTRIBUTE).runs_in == "process"
    with pytest.raises(ValueError, match="isolate"):
        tool("x", isolate="container")
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


class Unions:
    @tool("Set a value.")
    async def put(self, value: str | int | float, count: int | float = 1, note: str | None = None) -> str:
        return str(value)


def test_union_annotations_map_to_any_of_and_validate_each_branch():
    spec: Tool = getattr(Unions.put, TOOL_ATTRIBUTE)
    props = spec.schema()["function"]["parameters"]["properties"]
    assert props["value"] == {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "number"}]}
    assert props["count"] == {"type": "number"} and props["note"] == {"type": "string"}
    assert spec.validate({"value": "a"}) == ({"value": "a"}, None)
    assert spec.validate({"value": 2.5}) == ({"value": 2.5}, None)
    assert spec.validate({"value": [1]})[1] == "argument 'value' of put: expected string or integer or number, got array"


class Point:
    """A class with no JSON-schema counterpart."""


def test_annotations_without_a_json_type_are_refused_with_the_parameter_named():
    async def move(self, to: Point) -> str: ...

    with pytest.raises(TypeError, match="parameter 'to' of move: no JSON schema type"):
        tool("Move.")(move)
