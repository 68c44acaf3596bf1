"""Declaring tools: OpenAI function schemas built from handler signatures, and argument validation."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_STRING_ARGUMENT = 100_000  # characters; longer arguments are refused before any tool runs

_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}


@dataclass(frozen=True)
class Tool:
    """One tool an env offers: its OpenAI function schema plus whether calling it ends the episode."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}, "required": []})
    terminal: bool = False
    runs_in: str = "loop"  # "loop" (async def), "thread" (plain def) or "process" (isolate="process"); see watchdog.py

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": _copy(self.parameters)}}

    def validate(self, arguments: Any) -> tuple[dict[str, Any], str | None]:
        """Check arguments against the schema; return (arguments, None) or ({}, agent-readable problem)."""
        if not isinstance(arguments, Mapping):
            return {}, f"arguments of {self.name} must be a JSON object, got {_json_type_name(arguments)}"
        props: Mapping[str, Any] = self.parameters.get("properties", {})
        required = list(self.parameters.get("required", []))
        missing = [name for name in required if name not in arguments]
        if missing:
            return {}, f"{self.name} is missing required argument(s): {', '.join(missing)}"
        unknown = [str(name) for name in arguments if name not in props]
        if unknown:
            return {}, f"{self.name} got unknown argument(s): {', '.join(unknown)}; expected: {', '.join(props) or 'none'}"
        clean: dict[str, Any] = {}
        for name, value in arguments.items():
            value = _coerce_numeric_string(value, props[name])
            problem = _type_problem(value, props[name])
            if problem:
                return {}, f"argument '{name}' of {self.name}: {problem}"
            clean[name] = float(value) if props[name].get("type") == "number" and isinstance(value, int) else value
        return clean, None


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _coerce_numeric_string(value: Any, schema: Mapping[str, Any]) -> Any:
    """Tag formats deliver every argument as text: read "42" as 42 where the schema wants a number."""
    if not isinstance(value, str) or schema.get("type") not in ("integer", "number"):
        return value
    text = value.strip()
    try:
        return int(text) if schema["type"] == "integer" else float(text)
    except ValueError:
        return value


def _json_type_name(value: Any) -> str:
    for py, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                     (list, "array"), (Mapping, "object")):
        if isinstance(value, py):
            return name
    return "null" if value is None else type(value).__name__


def _type_problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    if "anyOf" in schema:  # a union: fine when any branch accepts the value
        problems = [_type_problem(value, branch) for branch in schema["anyOf"]]
        if all(problems):
            kinds = " or ".join(str(b.get("type", "any")) for b in schema["anyOf"])
            return f"expected {kinds}, got {_json_type_name(value)}"
        return None
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {list(schema['enum'])}"
    ok = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, Mapping),
        None: lambda v: True,
    }.get(kind, lambda v: True)
    if not ok(value):
        return f"expected {kind}, got {_json_type_name(value)}"
    if isinstance(value, str) and len(value) > MAX_STRING_ARGUMENT:
        return f"string too long ({len(value)} characters; the limit is {MAX_STRING_ARGUMENT})"
    if kind == "array" and "items" in schema:
        for item in value:
            problem = _type_problem(item, schema["items"])
            if problem:
                return f"array item {problem}"
    return None


class SchemaError(TypeError):
    """A handler annotation has no JSON-schema counterpart (the message names the parameter and the fix)."""


def _annotation_schema(annotation: Any) -> dict[str, Any]:
    """JSON schema of one annotation: str/int/float/bool/list/dict, Literal, list[X], X | None and unions of them."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _annotation_schema(args[0])
        if set(args) == {int, float}:  # a number either way
            return {"type": "number"}
        return {"anyOf": [_annotation_schema(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(annotation))}
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return {"type": "array", **({"items": _annotation_schema(args[0])} if args else {})}
    if origin is dict:
        return {"type": "object"}
    if annotation in _JSON_TYPES:
        return {"type": _JSON_TYPES[annotation]}
    if annotation is Any or annotation is inspect.Parameter.empty:
        return {}
    raise SchemaError(f"no JSON schema type for annotation {annotation!r}; use str, int, float, bool, list, dict, "
                      "Literal[...], list[X], X | None or a union of these")


def schema_from_signature(fn: Callable[..., Any], descriptions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A JSON-schema ``parameters`` object from a handler's signature (self excluded) and per-argument text."""
    descriptions = descriptions or {}
    hints = typing.get_type_hints(fn)
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, param in inspect.signature(fn).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        try:
            prop = _annotation_schema(hints.get(name, Any))
        except SchemaError as exc:
            raise SchemaError(f"parameter {name!r} of {fn.__name__}: {exc}") from None
        if name in descriptions:
            prop["description"] = descriptions[name]
        props[name] = prop
        if param.default is inspect.Parameter.empty:
            required.append(name)
    unknown = set(descriptions) - set(props)
    if unknown:
        raise TypeError(f"descriptions for unknown parameters of {fn.__name__}: {sorted(unknown)}")
    return {"type": "object", "properties": props, "required": required}


TOOL_ATTRIBUTE = "__agentgym_tool__"


def tool(description: str, *, name: str | None = None, terminal: bool = False,
         params: Mapping[str, str] | None = None,
         isolate: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an env method as a tool; its signature becomes the function schema.

    ``params`` describes each argument. ``terminal=True`` declares a tool whose every successful call must
    end the episode: its handler returns ``ToolOutput(..., outcome=Outcome(...))`` (a terminal tool that
    returns no outcome is an env bug, recorded as an infrastructure failure); a ``ToolError`` it raises is
    an agent mistake and the episode goes on. Where a handler runs: an ``async def`` on the event loop (it
    must not block), a plain ``def`` in a worker thread, and either one in a killable child process with
    ``isolate="process"`` (untrusted or CPU-heavy code; it works on a copy of the env, see watchdog.py).
    ``isolate="thread"`` moves a blocking ``async def`` onto a worker thread with its own event loop.
    """
    if isolate not in (None, "thread", "process"):
        raise ValueError(f"isolate is None, 'thread' or 'process', not {isolate!r}")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        runs_in = isolate or ("loop" if inspect.iscoroutinefunction(fn) else "thread")
        spec = Tool(name=name or fn.__name__, description=description,
                    parameters=schema_from_signature(fn, params), terminal=terminal, runs_in=runs_in)
        setattr(fn, TOOL_ATTRIBUTE, spec)
        return fn

    return mark
