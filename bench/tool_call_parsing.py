"""Tool-call parsing on adversarial actions: the worst 200,000-character texts parse in well under 100 ms.

Each case is an action at the length limit built to defeat a parser (many unclosed tags, alternating
or nested tags, huge JSON, deep brackets, many ``<think>`` tags, many unclosed Python calls, unclosed
WebShop ``search[``, code fences over long blank runs, GUI actions with unclosed values ...). Every
case goes through ``parse_action`` with the parsers the SQL, search, web, WebShop, code and GUI envs use,
so the numbers include reasoning stripping (and, for the code env, stripping the fence around each call's
code). Target: each case's best of 5 runs under 100 ms on one core.

Run: python bench/tool_call_parsing.py  -> bench/results/tool_call_parsing.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from agentgym.envs.code.env import CODE_TAGS  # noqa: E402
from agentgym.envs.code.prompting import clean_code  # noqa: E402
from agentgym.envs.gui.actions import AitwFormat, AndroidWorldFormat, CogAgentFormat  # noqa: E402
from agentgym.envs.gui.coords import Screen  # noqa: E402
from agentgym.envs.web.shop.text_actions import WebShopText  # noqa: E402
from agentgym.python_calls import PythonCalls  # noqa: E402
from agentgym.tool_calls import (  # noqa: E402
    MAX_ACTION_CHARS,
    HermesToolCalls,
    OpenAIToolCalls,
    TagToolCalls,
    ToolCallParser,
    parse_action,
)

N = MAX_ACTION_CHARS
TARGET_MS = 100.0
SQL_TAGS = TagToolCalls("sql-tags", {"sql": ("execute_sql", "query"), "solution": ("submit_sql", "query")})
SEARCH_TAGS = TagToolCalls("search-r1", {"search": ("search", "query"), "access": ("open_page", "doc_id"),
                                         "answer": ("answer", "answer")})
WEB_CALLS = PythonCalls("browsergym", {"click": ("bid",), "fill": ("bid", "value"), "scroll": ("dx", "dy"),
                                       "noop": ()})
PHONE = Screen()
PARSER_SETS: dict[str, list[ToolCallParser]] = {
    "sql": [OpenAIToolCalls(), HermesToolCalls(), SQL_TAGS],
    "search": [OpenAIToolCalls(), HermesToolCalls(), SEARCH_TAGS],
    "web": [OpenAIToolCalls(), HermesToolCalls(), WEB_CALLS],
    "shop": [OpenAIToolCalls(), HermesToolCalls(), WEB_CALLS, WebShopText()],
    "code": [OpenAIToolCalls(), HermesToolCalls(), CODE_TAGS],
    "gui": [OpenAIToolCalls(), HermesToolCalls(), AndroidWorldFormat(PHONE), AitwFormat(PHONE), CogAgentFormat(PHONE)],
}


def read_action(env: str, text: str) -> None:
    """Parse `text` as env `env` does; the code env also strips the fence around each call's code."""
    parsed = parse_action(text, PARSER_SETS[env])
    if env == "code" and parsed is not None:
        for call in parsed.calls:
            clean_code(call.arguments["code"])


def fill(unit: str) -> str:
    """`unit` repeated up to the action limit."""
    return (unit * (N // len(unit) + 1))[:N]


def cases() -> dict[str, tuple[str, str]]:
    """Case name -> (parser set, action text), each exactly at the length limit."""
    huge_json = '<tool_call>{"name": "execute_sql", "arguments": {"query": "' + "x" * (N - 80) + '"}}</tool_call>'
    return {
        "hermes_unclosed_tool_call": ("sql", fill("<tool_call>")),
        "hermes_unclosed_tool_call_with_one_close_at_end": ("sql", fill("<tool_call>")[:-12] + "</tool_call>"),
        "hermes_many_bad_calls": ("sql", fill("<tool_call>{</tool_call>")),
        "hermes_huge_json": ("sql", huge_json),
        "hermes_deep_json_brackets": ("sql", "<tool_call>" + "[" * (N - 30) + "</tool_call>"),
        "sql_tags_unclosed": ("sql", fill("<sql>")),
        "sql_tags_alternating_unclosed": ("sql", fill("<sql><solution>")),
        "sql_tags_alternating_one_closed": ("sql", fill("<sql><solution>")[:-7] + "</sql>"),
        "search_tags_three_kinds_unclosed": ("search", fill("<search><access><answer>")),
        "think_unclosed": ("sql", fill("<think>")),
        "think_many_closes": ("sql", fill("</think>")),
        "think_open_then_tags": ("sql", fill("<think><sql>")),
        "web_unclosed_calls": ("web", fill("click(")),
        "web_calls_in_comments": ("web", "#" + fill("click(1) ")[1:]),
        "web_one_long_line_of_names": ("web", fill("clicks click_ x.click(1) ")),
        "web_long_identifier": ("web", "a" * (N - 1) + "("),
        "web_parens": ("web", fill("(")),
        "web_deep_brackets": ("web", "click(" + "[" * (N - 6)),
        "web_quotes_then_call": ("web", fill("'\"")[:-9] + "click(1)"),
        "web_many_small_calls": ("web", fill("click('1')\n")),
        "web_long_calls": ("web", fill("fill('1', '" + "y" * 19_000 + "')\n")),
        "shop_unclosed_search": ("shop", fill("search[")),
        "shop_openings_one_close_at_end": ("shop", fill("click[search[")[:-1] + "]"),
        "shop_many_small_actions": ("shop", fill("click[x] ")),
        "shop_openings_inside_words": ("shop", fill("xsearch[")),
        "code_fence_blank_run": ("code", "<execute>```\n" + " " * (N - 30) + "</execute>"),
        "code_fence_blank_lines": ("code", "<execute>```python\n" + fill(" \n")[:N - 40] + "x</execute>"),
        "code_fence_near_miss_closings": ("code", "<execute>```\n" + fill(" ``\n")[:N - 40] + "```x</execute>"),
        "code_fence_many_fence_lines": ("code", "<submit>" + fill("```\n")[:N - 20] + "</submit>"),
        "gui_androidworld_deep_brackets": ("gui", '{"action_type": "click", "index": ' + "[" * (N - 40)),
        "gui_aitw_type_fields_no_value": ("gui", "{" + fill('"action_type":  ')[:N - 1]),
        "gui_autoui_unclosed_values": ("gui", "Action Decision: " + fill('"typed_text": "a\\\n')[:N - 20]),
        "gui_autoui_escaped_quotes": ("gui", 'Action Decision: "action_type": "TYPE", "typed_text": "'
                                      + fill('\\"')[:N - 60]),
        "gui_cogagent_type_no_closer": ("gui", "type [" + "x" * (N - 6)),
        "gui_cogagent_type_of_closers": ("gui", "type [" + fill("]'\"")[:N - 6]),
        "gui_cogagent_long_coordinates": ("gui", "tap [[" + fill("1.")[:N - 6]),
        "gui_cogagent_blank_runs": ("gui", "swipe" + fill(" \t")[:N - 7] + "up"),
        "gui_cogagent_many_lines": ("gui", fill("tap [[500,120]]\n")),
    }


def best_ms(env: str, text: str, runs: int = 5) -> float:
    """The best of `runs` wall times of reading one action as env `env` does, in milliseconds."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        read_action(env, text)
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def main() -> None:
    results = {}
    for name, (env, text) in cases().items():
        assert len(text) <= N, name
        results[name] = {"parsers": env, "chars": len(text), "best_ms": round(best_ms(env, text), 3)}
        print(f"{name:50s} {results[name]['best_ms']:8.2f} ms", flush=True)
    worst = max(r["best_ms"] for r in results.values())
    write_results("tool_call_parsing", {"action_chars": N, "target_ms": TARGET_MS, "worst_ms": worst,
                                        "meets_target": worst < TARGET_MS, "cases": results})
    if worst >= TARGET_MS:
        print(json.dumps({"worst_ms": worst, "target_ms": TARGET_MS}), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
