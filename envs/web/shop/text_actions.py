"""WebShop's text actions, ``search[keywords]`` and ``click[value]``, read as calls of the shop's tools."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agentgym.messages import Message
from agentgym.tool_calls import ParsedAction, ToolCall, ToolResult

_ACTION = re.compile(r"\b(search|click)\[(.*?)\]", re.DOTALL)


class WebShopText:
    """``search[...]`` -> tool ``search(keywords)``, ``click[...]`` -> tool ``click_text(value)``."""

    name = "webshop"

    def detect(self, message: Mapping[str, Any], text: str) -> bool:
        return _ACTION.search(text) is not None

    def parse(self, message: Mapping[str, Any], text: str, turn: int) -> ParsedAction:
        parsed = ParsedAction(self.name)
        for index, m in enumerate(_ACTION.finditer(text)):
            tool, arg = ("search", "keywords") if m.group(1) == "search" else ("click_text", "value")
            parsed.calls.append(ToolCall(tool, {arg: m.group(2).strip()}, f"call_{turn}_{index}"))
        return parsed

    def render(self, results: Sequence[ToolResult]) -> list[Message]:
        return [{"role": "user", "content": "\n\n".join(("Error: " if r.is_error else "") + r.content for r in results)}]
