"""Python-call action text (``click('12')``, ``fill('3', "hi")``) read as tool calls, literals only, never executed.

BrowserGym-style agents answer with function calls written as Python. ``PythonCalls`` finds such calls
in the action text (also inside prose or a code fence), parses each one with ``ast`` and accepts only
literal arguments (strings, numbers, booleans, None, lists/tuples/dicts of literals). Positional
arguments map onto the tool's parameters in the order of its schema; keyword arguments by name. The
result is ordinary ``ToolCall``s, so the env validates and dispatches them like any other format.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentgym.messages import Message
from agentgym.tool_calls import ParsedAction, ToolCall, ToolResult

MAX_CALL_CHARS = 20_000   # one call's source text; longer ones are refused before ``ast`` sees them
MAX_NESTING = 20          # bracket depth of one call (ast recursion guard)


def _literal(node: ast.AST) -> Any:
    """The value of a literal-only expression; ValueError otherwise (names, calls, operators ...)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)) \
            and not isinstance(node.operand.value, bool):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("** in a dict is not a literal")
        keys = [_literal(k) for k in node.keys]  # type: ignore[arg-type]
        if not all(isinstance(k, str) for k in keys):
            raise ValueError("dict keys must be strings")
        return dict(zip(keys, (_literal(v) for v in node.values)))
    raise ValueError(f"{type(node).__name__} is not a literal")


MAX_CANDIDATES = 64  # known call names examined per action; more calls than this are never useful


# Possessive quantifiers (``*+``, ``++``) never give back what they matched, so these patterns do
# bounded work per start position and scan action text in linear time (tests check every pattern here).
# The lookbehind (no word character or dot before the name) is checked after the name's first letter, not
# before it at every position: the same matches, several times faster on text with few letters.
_NAME = re.compile(r"([A-Za-z_](?<![\w.][A-Za-z_])\w*+)\s*+\(")
# Code up to a comment or an unclosed quote on one line (quotes as plain pairs, as before).
_CODE = re.compile(r"(?:[^'\"#\n]++|'[^'\n]*+'|\"[^\"\n]*+\")*+")
_SPECIAL = re.compile(r"[()\[\]{}'\"#\\]")  # the characters a bracket scan must look at


class _CommentState:
    """Whether call names are inside a '#' comment of their line, read forward only so each character is read once.

    Positions asked about only grow, and the scan restarts after each whole call (its quotes and
    brackets are balanced, so nothing is open at its end) or after a known comment's line.
    """

    def __init__(self, text: str):
        self.text = text
        self.clean_from = 0      # no quote or comment is open at this position
        self.comment_end = -1    # positions in (comment start, comment_end] are inside a known comment

    def at(self, pos: int) -> bool:
        """Whether `pos` is inside a comment."""
        if pos <= self.comment_end:
            return True
        text = self.text
        begin = max(self.clean_from, self.comment_end)
        newline = text.rfind("\n", begin, pos)
        line_start = begin if newline < 0 else newline + 1
        if text.find("#", line_start, pos) < 0:  # no '#' before it on its line: no comment to look for
            return False
        code = _CODE.match(text, line_start, pos)
        stop = code.end() if code is not None else line_start
        if stop < pos and text[stop] == "#":
            line_end = text.find("\n", stop)
            self.comment_end = len(text) if line_end < 0 else line_end
            return True
        return False

    def skip_to(self, pos: int) -> None:
        """Continue the scan after a whole call that ends at `pos`."""
        self.clean_from = pos


def _call_end(text: str, open_paren: int) -> int | None:
    """Index just past the parenthesis closing the one at `open_paren`, skipping string literals and comments.

    None when the call is not closed within ``MAX_CALL_CHARS`` (or nests deeper than ``MAX_NESTING``), so one
    call never costs more than that however long the text. Jumps between the characters that matter.
    """
    depth = 0
    limit = min(len(text), open_paren + MAX_CALL_CHARS)
    i = open_paren
    quote: str | None = None
    while True:
        m = _SPECIAL.search(text, i, limit)
        if m is None:
            return None
        i = m.start()
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
        elif ch in "'\"":
            quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else ch
            i += len(quote)
            continue
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                return None
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        elif ch == "#" and depth > 0:  # a comment runs to the end of the line
            newline = text.find("\n", i, limit)
            if newline < 0:
                return None
            i = newline
            continue
        i += 1


@dataclass(frozen=True)
class PythonCalls:
    """A ``ToolCallParser`` for literal-only Python calls of known tools.

    ``signatures`` maps each tool name to its parameter names in schema order (build it from OpenAI
    tool schemas with ``PythonCalls.from_tools``). Only names in ``signatures`` are recognised, so prose
    such as "print(x)" is not mistaken for an action.
    """

    name: str
    signatures: Mapping[str, Sequence[str]] = field(default_factory=dict)
    response_prefix: str = ""

    @classmethod
    def from_tools(cls, name: str, tools: Iterable[Mapping[str, Any]], response_prefix: str = "") -> PythonCalls:
        """Build the parser from OpenAI ``tools`` entries (parameter order = order of ``properties``)."""
        sigs: dict[str, tuple[str, ...]] = {}
        for entry in tools:
            fn = entry.get("function", entry)
            sigs[str(fn["name"])] = tuple(fn.get("parameters", {}).get("properties", {}))
        return cls(name, sigs, response_prefix)

    def _spans(self, text: str) -> list[tuple[int, int, str]]:
        spans: list[tuple[int, int, str]] = []
        pos = 0
        candidates = 0
        comments = _CommentState(text)
        while True:
            m = _NAME.search(text, pos)
            if m is None or candidates >= MAX_CANDIDATES:  # bounded work however long the text
                return spans
            if m.group(1) not in self.signatures:
                pos = m.end()
                continue
            candidates += 1
            if comments.at(m.start()):
                pos = m.end()
                continue
            end = _call_end(text, m.end() - 1)
            if end is None:
                spans.append((m.start(), -1, m.group(1)))
                return spans
            spans.append((m.start(), end, m.group(1)))
            comments.skip_to(end)
            pos = end

    def detect(self, message: Mapping[str, Any], text: str) -> bool:
        return any(m.group(1) in self.signatures for m in _NAME.finditer(text))

    def parse(self, message: Mapping[str, Any], text: str, turn: int) -> ParsedAction:
        parsed = ParsedAction(self.name)
        for index, (start, end, fname) in enumerate(self._spans(text)):
            if end < 0:
                parsed.errors.append(ToolResult(
                    None, f"the call {fname}( is not closed with ')' within {MAX_CALL_CHARS} characters", True))
                break
            call_id = f"call_{turn}_{index}"
            source = text[start:end]
            try:
                arguments = self.arguments(fname, source)
            except ValueError as exc:
                parsed.errors.append(ToolResult(ToolCall(fname, None, call_id), f"cannot read {source[:80]!r}: {exc}",
                                                True))
                continue
            parsed.calls.append(ToolCall(fname, arguments, call_id))
        return parsed

    def arguments(self, fname: str, source: str) -> dict[str, Any]:
        """The keyword arguments of one call's source text; ValueError when it is not a literal-only call."""
        if len(source) > MAX_CALL_CHARS:
            raise ValueError(f"the call is too long ({len(source)} characters; the limit is {MAX_CALL_CHARS})")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise ValueError(f"not a valid call ({type(exc).__name__})") from None
        call = tree.body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.func.id != fname:
            raise ValueError("expected a single call like name('arg', ...)")
        params = list(self.signatures[fname])
        if len(call.args) > len(params):
            raise ValueError(f"{fname} takes at most {len(params)} positional argument(s)")
        out: dict[str, Any] = {}
        for pname, node in zip(params, call.args):
            if isinstance(node, ast.Starred):
                raise ValueError("*args is not allowed")
            out[pname] = _literal(node)
        for kw in call.keywords:
            if kw.arg is None:
                raise ValueError("**kwargs is not allowed")
            if kw.arg in out:
                raise ValueError(f"argument {kw.arg!r} given twice")
            out[kw.arg] = _literal(kw.value)
        return out

    def render(self, results: Sequence[ToolResult]) -> list[Message]:
        parts = [("Error: " if r.is_error else "") + r.content for r in results]
        return [{"role": "user", "content": self.response_prefix + "\n\n".join(parts)}]
