"""Building actions in code: the assistant messages an oracle, a scripted policy or a test sends to an env."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agentgym.messages import Message


def tool_call_message(name: str, arguments: Mapping[str, Any] | None = None, *, content: str = "",
                      call_id: str = "call_0") -> Message:
    """An assistant message with one OpenAI-format tool call: ``tool_call_message("submit", {"answer": "42"})``.

    Every env accepts this format (``"openai"`` is always among a ToolEnv's parsers unless it removes it),
    so an env's ``oracle_action()`` can return it without knowing which text formats it also reads.
    """
    return {"role": "assistant", "content": content, "tool_calls": [
        {"id": call_id, "type": "function",
         "function": {"name": name, "arguments": json.dumps(dict(arguments or {}))}}]}
