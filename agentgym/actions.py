"""Building actions in code: the assistant messages an oracle, a scripted or random policy or a test sends."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from agentgym.messages import Action, Message


def tool_call_message(name: str, arguments: Mapping[str, Any] | None = None, *, content: str | None = "",
                      call_id: str = "call_0") -> Message:
    """An assistant message with one OpenAI-format tool call: ``tool_call_message("submit", {"answer": "42"})``.

    Every env accepts this format (``"openai"`` is always among a ToolEnv's parsers unless it removes it),
    so an env's ``oracle_action()`` can return it without knowing which text formats it also reads.
    """
    return {"role": "assistant", "content": content, "tool_calls": [
        {"id": call_id, "type": "function",
         "function": {"name": name, "arguments": json.dumps(dict(arguments or {}))}}]}


def random_tool_call(rng: np.random.Generator, name: str, arguments: Mapping[str, Any], *, tag: str | None = None,
                     thought: str = "try") -> Action:
    """One call of `name` in a format drawn by `rng`: OpenAI ``tool_calls``, Hermes ``<tool_call>`` text, or a tag.

    The tag format (``<think>{thought}</think><{tag}>{value}</{tag}>``, drawn only when `tag` is given) carries the
    call's single argument value; it is how envs with SkyRL-style tag parsers exercise them from a random policy.
    """
    style = int(rng.integers(3 if tag is not None else 2))
    if style == 0:
        return tool_call_message(name, arguments, content=None, call_id=f"call_{int(rng.integers(1 << 30)):x}")
    if style == 1:
        return "<tool_call>" + json.dumps({"name": name, "arguments": dict(arguments)}) + "</tool_call>"
    return f"<think>{thought}</think><{tag}>{next(iter(arguments.values()))}</{tag}>"
