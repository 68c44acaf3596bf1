"""Reading tool calls out of actions: pluggable, shared parsers for every env.

Formats: the OpenAI ``tool_calls`` field; the Hermes/Qwen text format
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; and tag formats from the literature
(``<sql>...</sql>``, ``<search>...</search>``). Each parser also renders tool results back in its own
format, so a model that speaks tags gets tag-shaped observations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentgym.messages import Message, message_text
from agentgym.tag_scan import scan_tags, strip_tag_blocks

MAX_ACTION_CHARS = 200_000  # longer actions are refused whole, before any parsing
MAX_CALLS_PER_ACTION = 64   # calls read from one action; the rest get one error (an env runs only a few anyway)


def strip_reasoning(text: str) -> str:
    """Remove reasoning: closed ``<think>`` blocks, everything before a dangling ``</think>`` (templates that open
    the block in the prompt), and everything after an unclosed ``<think>`` (generation stopped while thinking)."""
    text = strip_tag_blocks(text, "think")  # linear: a lazy regex here is quadratic in unclosed <think> tags
    close = text.rfind("</think>")
    if close >= 0:
        text = text[close + len("</think>"):]
    opening = text.find("<think>")
    if opening >= 0:
        text = text[:opening]
    return text


@dataclass(frozen=True)
class ToolCall:
    """One parsed call: a tool name, its JSON arguments and an id to answer it by."""

    name: str
    arguments: Any
    id: str


@dataclass(frozen=True)
class ToolResult:
    """What one call produced: text for the agent, or an error text; ``call`` is None for action-level errors."""

    call: ToolCall | None
    content: str
    is_error: bool = False


@dataclass
class ParsedAction:
    """The outcome of parsing one action: calls, per-call or action-level errors, and which format matched."""

    format: str
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[ToolResult] = field(default_factory=list)  # errors that still get answered (bad call JSON ...)


class ToolCallParser(Protocol):
    """A tool-call format: detects itself in an action, parses calls, renders results back."""

    name: str

    def detect(self, message: Mapping[str, Any], text: str) -> bool: ...

    def parse(self, message: Mapping[str, Any], text: str, turn: int) -> ParsedAction: ...

    def render(self, results: Sequence[ToolResult]) -> list[Message]: ...


def _error(text: str) -> ToolResult:
    return ToolResult(call=None, content=text, is_error=True)


_TOO_MANY = f"more than {MAX_CALLS_PER_ACTION} tool calls in one action: only the first {MAX_CALLS_PER_ACTION} are read"


def _at_most(items: list[Any], parsed: ParsedAction) -> list[Any]:
    """The first ``MAX_CALLS_PER_ACTION`` calls of an action; one error says the rest were ignored."""
    if len(items) > MAX_CALLS_PER_ACTION:
        parsed.errors.append(_error(_TOO_MANY))
    return items[:MAX_CALLS_PER_ACTION]


def _load_json(raw: str) -> tuple[Any, str | None]:
    try:
        return json.loads(raw), None
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested input
        return None, f"invalid JSON ({type(exc).__name__}: {str(exc)[:120]})"


class OpenAIToolCalls:
    """The OpenAI ``tool_calls`` field of an assistant message; results go back as ``tool`` messages."""

    name = "openai"

    def detect(self, message: Mapping[str, Any], text: str) -> bool:
        calls = message.get("tool_calls")
        if calls is None:
            return False
        try:
            return len(calls) > 0
        except TypeError:  # not a sized container: malformed, let parse() explain
            return True

    def parse(self, message: Mapping[str, Any], text: str, turn: int) -> ParsedAction:
        parsed = ParsedAction(self.name)
        calls = message.get("tool_calls")
        if not isinstance(calls, Sequence) or isinstance(calls, (str, bytes)):
            parsed.errors.append(_error("tool_calls must be a list of {id, type: 'function', function: {name, arguments}}"))
            return parsed
        for index, raw in enumerate(_at_most(list(calls), parsed)):
            call_id = f"call_{turn}_{index}"
            if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) and raw["id"]:
                call_id = raw["id"][:128]
            fn = raw.get("function") if isinstance(raw, Mapping) else None
            if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
                parsed.errors.append(ToolResult(ToolCall("?", None, call_id),
                                                "malformed tool call: expected {function: {name, arguments}}", True))
                continue
            args = fn.get("arguments", "{}")
            if isinstance(args, str):
                args, problem = _load_json(args or "{}")
                if problem:
                    parsed.errors.append(ToolResult(ToolCall(fn["name"], None, call_id),
                                                    f"arguments of {fn['name']} are not valid JSON: {problem}", True))
                    continue
            parsed.calls.append(ToolCall(fn["name"], args, call_id))
        return parsed

    def render(self, results: Sequence[ToolResult]) -> list[Message]:
        messages: list[Message] = []
        loose: list[str] = []
        for r in results:
            if r.call is None:
                loose.append(r.content)
            else:
                messages.append({"role": "tool", "tool_call_id": r.call.id, "name": r.call.name,
                                 "content": ("Error: " + r.content) if r.is_error else r.content})
        if loose:
            messages.append({"role": "user", "content": "\n".join("Error: " + t for t in loose)})
        return messages


class HermesToolCalls:
    """Hermes/Qwen text format ``<tool_call>{"name", "arguments"}</tool_call>``; results in ``<tool_response>``."""

    name = "hermes"

    def detect(self, message: Mapping[str, Any], text: str) -> bool:
        return "<tool_call>" in text

    def parse(self, message: Mapping[str, Any], text: str, turn: int) -> ParsedAction:
        parsed = ParsedAction(self.name)
        scan = scan_tags(text, ("tool_call",), MAX_CALLS_PER_ACTION)  # linear in the text, unlike a lazy regex
        bodies = [span.body for span in scan.spans]
        if scan.unclosed():
            parsed.errors.append(_error("a <tool_call> tag is not closed with </tool_call>"))
        if scan.more:
            parsed.errors.append(_error(_TOO_MANY))
        for index, body in enumerate(bodies):
            call_id = f"call_{turn}_{index}"
            data, problem = _load_json(body.strip())
            if problem:
                parsed.errors.append(_error(f"<tool_call> body is not valid JSON: {problem}"))
                continue
            if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
                parsed.errors.append(_error('<tool_call> must hold {"name": ..., "arguments": {...}}'))
                continue
            args = data.get("arguments", data.get("parameters", {}))
            if isinstance(args, str):  # some models double-encode
                args, problem = _load_json(args)
                if problem:
                    parsed.errors.append(_error(f"arguments of {data['name']} are not valid JSON: {problem}"))
                    continue
            parsed.calls.append(ToolCall(data["name"], args, call_id))
        return parsed

    def render(self, results: Sequence[ToolResult]) -> list[Message]:
        body = "\n".join(f"<tool_response>\n{'Error: ' if r.is_error else ''}{r.content}\n</tool_response>" for r in results)
        return [{"role": "user", "content": body}]


@dataclass(frozen=True)
class TagToolCalls:
    """A tag format such as SkyRL-SQL's ``<sql>Q</sql>`` / ``<solution>Q</solution>``.

    ``tags`` maps a tag to (tool name, argument name); the tag body becomes that one string argument.
    Results come back wrapped in ``response_tag``.
    """

    name: str
    tags: Mapping[str, tuple[str, str]]
    response_tag: str = "observation"

    def detect(self, message: Mapping[str, Any], text: str) -> bool:
        return any(f"<{tag}>" in text for tag in self.tags)

    def parse(self, message: Mapping[str, Any], text: str, turn: int) -> ParsedAction:
        parsed = ParsedAction(self.name)
        scan = scan_tags(text, tuple(self.tags), MAX_CALLS_PER_ACTION)  # linear in the text, unlike a lazy regex
        for tag in scan.unclosed():
            parsed.errors.append(_error(f"a <{tag}> tag is not closed with </{tag}>"))
        if scan.more:
            parsed.errors.append(_error(_TOO_MANY))
        for index, span in enumerate(scan.spans):
            tool_name, arg = self.tags[span.tag]
            parsed.calls.append(ToolCall(tool_name, {arg: span.body.strip()}, f"call_{turn}_{index}"))
        return parsed

    def render(self, results: Sequence[ToolResult]) -> list[Message]:
        tag = self.response_tag
        body = "\n".join(f"<{tag}>{'Error: ' if r.is_error else ''}{r.content}</{tag}>" for r in results)
        return [{"role": "user", "content": body}]


PARSERS: dict[str, ToolCallParser] = {"openai": OpenAIToolCalls(), "hermes": HermesToolCalls()}


def register_parser(parser: ToolCallParser) -> None:
    """Make a parser available by name to every env (``tool_parsers = ("openai", "my-format")``)."""
    PARSERS[parser.name] = parser


def resolve_parsers(parsers: Iterable[str | ToolCallParser]) -> list[ToolCallParser]:
    """Turn names and parser objects into parser objects, in order."""
    out: list[ToolCallParser] = []
    for p in parsers:
        if isinstance(p, str):
            if p not in PARSERS:
                raise KeyError(f"unknown tool-call parser {p!r}; known: {sorted(PARSERS)}")
            out.append(PARSERS[p])
        else:
            out.append(p)
    return out


def parse_action(action: Any, parsers: Sequence[ToolCallParser], turn: int = 0) -> ParsedAction | None:
    """Parse an action with the first parser whose format is present; None when the action has no tool call.

    Never raises: garbage input yields a ParsedAction whose ``errors`` say what was wrong.
    """
    if isinstance(action, str):
        message: Mapping[str, Any] = {"role": "assistant", "content": action}
    elif isinstance(action, Mapping):
        message = action
    else:
        return ParsedAction("invalid", errors=[_error(
            f"an action must be a string or an assistant message dict, got {type(action).__name__}")])
    try:
        text = message_text(message)
    except Exception:  # content of the wrong shape
        return ParsedAction("invalid", errors=[_error("the message content must be a string or a list of text parts")])
    if len(text) > MAX_ACTION_CHARS:
        return ParsedAction("invalid", errors=[_error(
            f"the action is too long ({len(text)} characters; the limit is {MAX_ACTION_CHARS})")])
    visible = strip_reasoning(text)
    for parser in parsers:
        if parser.detect(message, visible):
            return parser.parse(message, visible, turn)
    return None
