"""Action parsing costs linear work: adversarial texts of size n and 4n, measured by counting characters read.

A lazy regex (``<tool_call>(.*?)</tool_call>``) restarted at every unclosed tag made a 200,000-character
action take 44 s. These tests meter the work deterministically instead of timing it: the text is a
``str`` subclass that counts the characters each ``find``, slice and index reads (and charges a whole
pass for ``in``, ``strip``, ``splitlines`` and ``lower``, whose results stay metered), and refuses any
other str method (so no unmetered scan can hide), and every regex the parsers use must be free of
backtracking. The meter cannot see inside the regex engine, which is why the regex rule exists. Covered:
the shared parsers and the env-specific text formats (WebShop, the code env's fences, the GUI formats).
The wall-clock numbers are in bench/tool_call_parsing.py.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from agentgym import python_calls, tag_scan, tool_calls
from agentgym.envs.code import prompting
from agentgym.envs.code.prompting import clean_code
from agentgym.envs.gui import actions as gui_actions
from agentgym.envs.gui.actions import AitwFormat, AndroidWorldFormat, CogAgentFormat
from agentgym.envs.gui.coords import Screen
from agentgym.envs.web.shop import text_actions
from agentgym.envs.web.shop.text_actions import WebShopText
from agentgym.python_calls import PythonCalls
from agentgym.tag_scan import scan_tags
from agentgym.tool_calls import HermesToolCalls, TagToolCalls, parse_action, strip_reasoning

try:  # Python 3.11+ names the regex parser modules privately
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

_METERED = {"find", "rfind", "startswith", "meter", "strip", "rstrip", "splitlines", "lower"}


class MeteredText(str):
    """A str that adds up the characters its searches, slices and indexing read; other str methods are refused."""

    def __new__(cls, value: str, meter: list[int] | None = None) -> MeteredText:
        self = super().__new__(cls, value)
        self.meter = [0] if meter is None else meter
        return self

    def _pass(self, result: str) -> MeteredText:
        """Charge one pass over the text for a whole-text method; its result is metered on the same meter."""
        self.meter[0] += len(self)
        return MeteredText(result, self.meter)

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name not in _METERED:
            raise AssertionError(f"the parser used str.{name}, which this test cannot meter")
        return super().__getattribute__(name)

    def _end(self, end: int | None) -> int:
        return len(self) if end is None else min(end, len(self))

    def find(self, sub: str, start: int = 0, end: int | None = None) -> int:  # type: ignore[override]
        stop = self._end(end)
        found = str.find(self, sub, start, stop)
        self.meter[0] += max(0, (found + len(sub) if found >= 0 else stop) - start)
        return found

    def rfind(self, sub: str, start: int = 0, end: int | None = None) -> int:  # type: ignore[override]
        stop = self._end(end)
        found = str.rfind(self, sub, start, stop)
        self.meter[0] += max(0, stop - (found if found >= 0 else start))
        return found

    def startswith(self, prefix: Any, start: int = 0, end: int | None = None) -> bool:  # type: ignore[override]
        self.meter[0] += max(map(len, prefix)) if isinstance(prefix, tuple) else len(prefix)
        return str.startswith(self, prefix, start, self._end(end))

    def __getitem__(self, key: Any) -> str:  # type: ignore[override]
        piece = str.__getitem__(self, key)
        self.meter[0] += max(1, len(piece))
        return piece

    def __contains__(self, sub: object) -> bool:  # type: ignore[override]
        self.meter[0] += len(self)
        return str.__contains__(self, sub)  # type: ignore[operator]

    def strip(self, chars: str | None = None) -> MeteredText:  # type: ignore[override]
        return self._pass(str.strip(self, chars))

    def rstrip(self, chars: str | None = None) -> MeteredText:  # type: ignore[override]
        return self._pass(str.rstrip(self, chars))

    def lower(self) -> MeteredText:  # type: ignore[override]
        return self._pass(str.lower(self))

    def splitlines(self, keepends: bool = False) -> list[MeteredText]:  # type: ignore[override]
        self.meter[0] += len(self)
        return [MeteredText(line, self.meter) for line in str.splitlines(self, keepends)]


def work(parse: Callable[[str], Any], text: str) -> int:
    """Characters read while parsing `text`."""
    metered = MeteredText(text)
    parse(metered)
    return metered.meter[0]


def fill(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


SQL_TAGS = TagToolCalls("sql-tags", {"sql": ("execute_sql", "query"), "solution": ("submit_sql", "query")})
SEARCH_TAGS = TagToolCalls("search-r1", {"search": ("search", "query"), "access": ("open_page", "doc_id"),
                                         "answer": ("answer", "answer")})
WEB_CALLS = PythonCalls("browsergym", {"click": ("bid",), "fill": ("bid", "value"), "noop": ()})

N = 20_000
CASES: dict[str, tuple[Callable[[str], Any], Callable[[int], str]]] = {
    "hermes: many unclosed <tool_call>": (
        lambda t: HermesToolCalls().parse({}, t, 0), lambda n: fill("<tool_call>", n)),
    "hermes: unclosed tags, one close at the end": (
        lambda t: HermesToolCalls().parse({}, t, 0), lambda n: fill("<tool_call>", n) + "</tool_call>"),
    "hermes: many closed calls of bad JSON": (
        lambda t: HermesToolCalls().parse({}, t, 0), lambda n: fill("<tool_call>{</tool_call>", n)),
    "hermes: one huge JSON call": (
        lambda t: HermesToolCalls().parse({}, t, 0),
        lambda n: '<tool_call>{"name": "f", "arguments": {"q": "' + "x" * n + '"}}</tool_call>'),
    "hermes: deep JSON brackets": (
        lambda t: HermesToolCalls().parse({}, t, 0), lambda n: "<tool_call>" + "[" * n + "</tool_call>"),
    "tags: many unclosed <sql>": (lambda t: SQL_TAGS.parse({}, t, 0), lambda n: fill("<sql>", n)),
    "tags: alternating unclosed tags": (lambda t: SQL_TAGS.parse({}, t, 0), lambda n: fill("<sql><solution>", n)),
    "tags: alternating, one tag closed at the end": (
        lambda t: SQL_TAGS.parse({}, t, 0), lambda n: fill("<solution><sql>", n) + "</sql>"),
    "tags: nested tags closed at the end": (
        lambda t: SQL_TAGS.parse({}, t, 0), lambda n: fill("<sql><solution>", n) + "</solution></sql>"),
    "tags: three kinds unclosed": (
        lambda t: SEARCH_TAGS.parse({}, t, 0), lambda n: fill("<search><access><answer>", n)),
    "think: many unclosed <think>": (strip_reasoning, lambda n: fill("<think>", n)),
    "think: opens then one close at the end": (strip_reasoning, lambda n: fill("<think>", n) + "</think>"),
    "think: many closed blocks": (strip_reasoning, lambda n: fill("<think>a</think>", n)),
    "python: many unclosed calls": (lambda t: WEB_CALLS.parse({}, t, 0), lambda n: fill("click(", n)),
    "python: calls behind a comment on one long line": (
        lambda t: WEB_CALLS.parse({}, t, 0), lambda n: "x = 1  # " + fill("click(1) ", n)),
    "python: calls after a long line of quotes": (
        lambda t: WEB_CALLS.parse({}, t, 0), lambda n: fill("'\"", n) + " click('1')" * 80),
    "python: many small calls on one line": (lambda t: WEB_CALLS.parse({}, t, 0), lambda n: fill("click('1') ", n)),
    "python: deep brackets": (lambda t: WEB_CALLS.parse({}, t, 0), lambda n: "click(" + "[" * n),
    "python: a long unclosed string": (lambda t: WEB_CALLS.parse({}, t, 0), lambda n: "click('" + "x" * n),
    "python: parentheses only": (lambda t: WEB_CALLS.parse({}, t, 0), lambda n: fill("(", n)),
}

# The env-specific text formats, each through parse_action as its env runs it (reasoning stripping, detect, parse).
PHONE = Screen()
ENV_FORMATS = {"webshop": WebShopText(), "androidworld": AndroidWorldFormat(PHONE), "aitw": AitwFormat(PHONE),
               "cogagent": CogAgentFormat(PHONE)}


def in_env(fmt: str) -> Callable[[str], Any]:
    """Parse an action with one env format, as ``parse_action`` does in that env."""
    return lambda t: parse_action(t, [ENV_FORMATS[fmt]])


CASES.update({
    "webshop: many unclosed search[": (in_env("webshop"), lambda n: fill("search[", n)),
    "webshop: many openings, one ] at the end": (in_env("webshop"), lambda n: fill("click[search[", n) + "]"),
    "webshop: many small actions": (in_env("webshop"), lambda n: fill("click[x] ", n)),
    "webshop: openings inside words": (in_env("webshop"), lambda n: fill("xsearch[", n) + "]"),
    "code fence: a long run of blanks, no closing fence": (clean_code, lambda n: "```\n" + fill(" ", n)),
    "code fence: blank lines after the opening": (clean_code, lambda n: "```python\n" + fill(" \n", n) + "x"),
    "code fence: near-miss closing fences": (clean_code, lambda n: "```\n" + fill(" ``\n", n) + "```x"),
    "code fence: many fence lines": (clean_code, lambda n: fill("```\n", n)),
    "code fence: a long language tag": (clean_code, lambda n: "```" + fill("py", n) + "\nx\n```"),
    "androidworld: deep brackets": (
        in_env("androidworld"), lambda n: '{"action_type": "click", "index": ' + "[" * n),
    "androidworld: many action_type keys": (in_env("androidworld"), lambda n: "{" + fill('"action_type" : ', n)),
    "aitw: many type fields with no value": (in_env("aitw"), lambda n: fill('"action_type":  ', n)),
    "aitw: deep brackets": (in_env("aitw"), lambda n: '{"action_type": "DUAL_POINT", "touch_yx": ' + "[" * n),
    "autoui: many unclosed values": (
        in_env("aitw"), lambda n: "Action Decision: " + fill('"typed_text": "a\\\n', n)),
    "autoui: one value of escaped quotes": (
        in_env("aitw"), lambda n: 'Action Decision: "action_type": "TYPE", "typed_text": "' + fill('\\"', n)),
    "autoui: one long value": (
        in_env("aitw"), lambda n: 'Action Decision: "action_type": "TYPE", "typed_text": "' + "x" * n + '"'),
    "cogagent: type with no closer": (in_env("cogagent"), lambda n: "type [" + "x" * n),
    "cogagent: type of closers": (in_env("cogagent"), lambda n: "type [" + fill("]'\"", n)),
    "cogagent: long coordinates": (in_env("cogagent"), lambda n: "tap [[" + fill("1.", n)),
    "cogagent: long blank runs": (in_env("cogagent"), lambda n: "swipe" + fill(" \t", n) + "up"),
    "cogagent: many command lines": (in_env("cogagent"), lambda n: fill("tap [[500,120]]\n", n)),
})


@pytest.mark.parametrize("case", sorted(CASES))
def test_adversarial_action_costs_linear_work(case: str) -> None:
    parse, make = CASES[case]
    small, large = work(parse, make(N)), work(parse, make(4 * N))
    # Linear: a few reads per character per tag looked for, and 4x the text costs about 4x the work
    # (a quadratic parser reads about n^2 / 10 characters here: 16x, and ~40 million at n = 20,000).
    assert small <= 10 * (N + 2_000), (case, small)
    assert large <= 10 * (4 * N + 2_000), (case, large)
    assert large <= 4.5 * small + 2_000, (case, small, large)


def test_the_meter_sees_a_quadratic_parser() -> None:
    """The measure can fail: a scan that restarts from every opening tag is caught by it."""
    def quadratic(text: str) -> int:
        found, i = 0, text.find("<sql>")
        while i >= 0:
            found += text.find("</sql>", i) >= 0
            i = text.find("<sql>", i + 1)
        return found

    small, large = work(quadratic, fill("<sql>", N)), work(quadratic, fill("<sql>", 4 * N))
    assert large > 10 * small


def test_scan_matches_the_lazy_regex_it_replaces() -> None:
    texts = ["<a>1</a><b>2</b>", "<a>1<a>2</a>3</a>", "<a><b>x</a></b>", "<b></a><a>y</b></a>", "<a>open",
             "x</a><a>", "<a></a><a>q</a>", "<b>1</b><a>2</a><b>3", "<a>\n multi\nline</a>"]
    pattern = re.compile(r"<(a|b)>(.*?)</\1>", re.DOTALL)
    for text in texts:
        expected = [(m.start(), m.end(), m.group(1), m.group(2)) for m in pattern.finditer(text)]
        got = [(s.start, s.end, s.tag, s.body) for s in scan_tags(text, ("a", "b")).spans]
        assert got == expected, text


def _texts(pieces: Sequence[str], up_to: int) -> Iterator[str]:
    """Every concatenation of up to `up_to` pieces."""
    for size in range(up_to + 1):
        for combo in itertools.product(pieces, repeat=size):
            yield "".join(combo)


def test_webshop_actions_read_as_the_lazy_regex_they_replace() -> None:
    lazy = re.compile(r"\b(search|click)\[(.*?)\]", re.DOTALL)
    for text in _texts(["search[", "click[", "]", "x", "\n", "\u00e9", "["], 5):
        assert list(text_actions.find_actions(text)) == [m.groups() for m in lazy.finditer(text)], text
        assert WebShopText().detect({}, text) == (lazy.search(text) is not None), text


def test_code_fences_strip_as_the_lazy_regex_they_replace() -> None:
    lazy = re.compile(r"^\s*```[a-zA-Z0-9_+-]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)
    for code in _texts(["```", "`", "\n", " ", "\xa0", "py", "x"], 6):
        match = lazy.match(code)
        assert clean_code(code) == (match.group(1) if match else code), code


def test_gui_text_reads_as_the_backtracking_regexes_it_replaces() -> None:
    greedy_type = re.compile(r"^type\s*[\[\"'](.*)[\]\"']$", re.I | re.S)
    for line in _texts(["type", " ", "[", "]", "'", "\n", "x"], 6):
        match = greedy_type.match(line)
        assert gui_actions._typed_text(line) == (match.group(1) if match else None), line
    field = re.compile(r'"(action_type|typed_text)"\s*:\s*"((?:[^"\\]|\\.)*)"')
    for text in _texts(['"typed_text"', ":", " ", '"', "\\", "\n", "x"], 6):
        assert [f for f in gui_actions._AUTOUI_FIELD.findall(text) if f[0] == "typed_text"] == field.findall(text), text


def test_reasoning_stripped_as_before() -> None:
    assert strip_reasoning("<think>a</think>B<think>c</think>D") == "BD"
    assert strip_reasoning("plan</think>answer") == "answer"
    assert strip_reasoning("answer<think>still thinking") == "answer"
    assert strip_reasoning("<thi<think>x</think>nk>y") == ""  # a tag formed by the removal still opens a block


def _unbounded_repeats(parsed: Any) -> list[str]:
    """Names of backtracking (greedy or lazy) unbounded repeats anywhere in a parsed regex."""
    bad: list[str] = []
    for op, av in parsed:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and av[1] == sre_constants.MAXREPEAT:
            bad.append(str(op))
        for item in av if isinstance(av, (list, tuple)) else [av]:
            if isinstance(item, sre_parse.SubPattern):
                bad += _unbounded_repeats(item)
            elif isinstance(item, list):
                bad += [b for sub in item if isinstance(sub, sre_parse.SubPattern) for b in _unbounded_repeats(sub)]
    return bad


PARSER_MODULES = [tool_calls, tag_scan, python_calls, text_actions, prompting, gui_actions]


def _compiled_patterns(module: Any) -> list[re.Pattern[str]]:
    """The regexes a module holds at module level or as class attributes of its classes."""
    values = list(vars(module).values())
    values += [v for cls in values if isinstance(cls, type) and cls.__module__ == module.__name__
               for v in vars(cls).values()]
    return [v for v in values if isinstance(v, re.Pattern)]


@pytest.mark.parametrize("module", PARSER_MODULES, ids=lambda m: m.__name__)
def test_parser_regexes_never_backtrack(module: Any) -> None:
    """Every regex is compiled once at import (module or class level), and its unbounded repeats are possessive
    (``*+``, ``++``)."""
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) \
                        and isinstance(inner.func.value, ast.Name) and inner.func.value.id == "re":
                    raise AssertionError(f"{module.__name__}.{node.name} builds or runs a regex at call time")
    patterns = _compiled_patterns(importlib.import_module(module.__name__))
    for pattern in patterns:
        assert _unbounded_repeats(sre_parse.parse(pattern.pattern)) == [], pattern.pattern


def test_the_regex_check_sees_a_lazy_pattern() -> None:
    assert _unbounded_repeats(sre_parse.parse(r"<a>(.*?)</a>"))
    assert _unbounded_repeats(sre_parse.parse(r"(?:x|[ab]+)y"))
    assert not _unbounded_repeats(sre_parse.parse(r"(?<![\w.])([A-Za-z_]\w*+)\s*+\(x?"))


def test_an_action_of_many_calls_reads_only_the_first_ones_and_says_so() -> None:
    from agentgym.tool_calls import MAX_CALLS_PER_ACTION

    parsed = HermesToolCalls().parse({}, '<tool_call>{"name": "f", "arguments": {}}</tool_call>' * 1000, 0)
    assert len(parsed.calls) == MAX_CALLS_PER_ACTION
    assert [e.content for e in parsed.errors] == [
        f"more than {MAX_CALLS_PER_ACTION} tool calls in one action: only the first {MAX_CALLS_PER_ACTION} are read"]
    tags = SQL_TAGS.parse({}, "<sql>1</sql>" * 100 + "<sql>", 0)  # an unclosed tag after the cap is not judged
    assert len(tags.calls) == MAX_CALLS_PER_ACTION and len(tags.errors) == 1
