"""WebShop's text actions, ``search[keywords]`` and ``click[value]``, read as calls of the shop's tools."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from agentgym.messages import Message
from agentgym.tool_calls import ParsedAction, ToolCall, ToolResult

# Only the opening is a regex (no repeats: each try costs O(1)). The lazy ``\b(search|click)\[(.*?)\]`` it
# replaces re-scanned to the end of the text from every unclosed opening: O(n^2) on many ``search[``.
_OPENING = re.compile(r"\b(search|click)\[")


def find_actions(text: str) -> Iterator[tuple[str, str]]:
    """(verb, raw argument) of each ``verb[argument]``, as ``re.finditer(r"\\b(search|click)\\[(.*?)\\]", DOTALL)``
    reads them, in one forward pass: an argument ends at the first ``]`` and may span lines."""
    pos = 0
    while (opening := _OPENING.search(text, pos)) is not None:
        close = text.find("]", opening.end())
        if close < 0:
            return  # no "]" after this opening, so none after any later one either
        yield opening.group(1), text[opening.end():close]
        pos = close + 1


class WebShopText:
    """``search[...]`` -> tool ``search(keywords)``, ``click[...]`` -> tool ``click_text(value)``."""

    name = "webshop"

    def detect(self, message: Mapping[str, Any], text: str) -> bool:
        return next(find_actions(text), None) is not None

    def parse(self, message: Mapping[str, Any], text: str, turn: int) -> ParsedAction:
        parsed = ParsedAction(self.name)
        for index, (verb, argument) in enumerate(find_actions(text)):
            tool, arg = ("search", "keywords") if verb == "search" else ("click_text", "value")
            parsed.calls.append(ToolCall(tool, {arg: argument.strip()}, f"call_{turn}_{index}"))
        return parsed

    def render(self, results: Sequence[ToolResult]) -> list[Message]:
        return [{"role": "user", "content": "\n\n".join(("Error: " if r.is_error else "") + r.content for r in results)}]
