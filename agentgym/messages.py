"""Chat messages in the OpenAI format: what observations carry and what actions are.

An observation's ``messages`` are the *new* messages of that turn (the first user prompt on reset, tool
results on a step); the rollout engine appends them to the conversation. An action is an assistant
message: plain text, or ``{"content": ..., "tool_calls": [...]}``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, Union

Role = Literal["system", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImageURL(TypedDict):
    url: str  # "data:image/png;base64,..." for images an env renders itself


class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


class FunctionCall(TypedDict):
    name: str
    arguments: str  # JSON text, exactly as OpenAI sends it


class ToolCallDict(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class Message(TypedDict, total=False):
    role: Role
    content: Union[str, list[Union[TextPart, ImagePart]], None]
    tool_calls: list[ToolCallDict]
    tool_call_id: str
    name: str


# An action: the assistant's raw text, or an assistant message dict.
Action = Union[str, Mapping[str, Any]]


def text_message(role: Role, text: str) -> Message:
    """A plain-text message."""
    return {"role": role, "content": text}


def image_part(png: bytes) -> ImagePart:
    """An OpenAI image content part holding a PNG as a data URL."""
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}}


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message, joining the text parts of multi-part content; never raises on odd shapes."""
    content = message.get("content") if isinstance(message, Mapping) else None
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        return "".join(str(part.get("text", "")) for part in content
                       if isinstance(part, Mapping) and part.get("type") == "text")
    return str(content)


def message_problem(message: Any) -> str | None:
    """Why `message` is not a valid chat message, or None if it is."""
    if not isinstance(message, Mapping):
        return f"a message must be a dict, got {type(message).__name__}"
    role = message.get("role")
    if role not in ROLES:
        return f"unknown role {role!r}"
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        if not isinstance(content, Sequence) or isinstance(content, (bytes, bytearray)):
            return "content must be a string, a list of parts, or None"
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") not in ("text", "image_url"):
                return "content parts must be {'type': 'text'|'image_url', ...}"
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                return "a text part needs a string 'text'"
            if part["type"] == "image_url":
                image = part.get("image_url")
                if not isinstance(image, Mapping) or not isinstance(image.get("url"), str):
                    return "an image part needs image_url.url"
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        return "a tool message needs a string tool_call_id"
    calls = message.get("tool_calls")
    if calls is not None:
        if role != "assistant":
            return "only assistant messages carry tool_calls"
        if not isinstance(calls, Sequence) or isinstance(calls, (str, bytes)):
            return "tool_calls must be a list"
        for call in calls:
            fn = call.get("function") if isinstance(call, Mapping) else None
            if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) \
                    or not isinstance(fn.get("arguments", "{}"), (str, Mapping)):
                return "each tool call needs function.name (string) and function.arguments (JSON text)"
    return None


def assistant_message(action: Action) -> Message:
    """Normalise an action into an assistant message dict (a copy; the caller's object is never kept)."""
    if isinstance(action, str):
        return {"role": "assistant", "content": action}
    if isinstance(action, Mapping):
        message: Message = {"role": "assistant", "content": action.get("content")}
        if action.get("tool_calls"):
            message["tool_calls"] = [dict(c) if isinstance(c, Mapping) else c for c in action["tool_calls"]]  # type: ignore[misc]
        return message
    return {"role": "assistant", "content": repr(action)}
