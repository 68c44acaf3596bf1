"""Tool-call parsing: every format, and every way an action can be malformed."""

from __future__ import annotations

import json

from agentgym.tool_calls import (
    MAX_ACTION_CHARS,
    HermesToolCalls,
    OpenAIToolCalls,
    TagToolCalls,
    ToolCall,
    ToolResult,
    parse_action,
)

SQL_TAGS = TagToolCalls("sql-tags", {"sql": ("execute_sql", "query"), "solution": ("submit_sql", "query")})
PARSERS = [OpenAIToolCalls(), HermesToolCalls(), SQL_TAGS]


def openai_call(name: str, args: str, call_id: str = "c1") -> dict:
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]}


def test_openai_field_parsed_with_ids_and_json_arguments():
    parsed = parse_action(openai_call("execute_sql", '{"query": "SELECT 1"}', "abc"), PARSERS)
    assert parsed.format == "openai"
    assert parsed.calls == [ToolCall("execute_sql", {"query": "SELECT 1"}, "abc")]
    assert parsed.errors == []


def test_openai_broken_json_becomes_an_error_answered_by_id():
    parsed = parse_action(openai_call("execute_sql", '{"query": "SELECT 1"', "c9"), PARSERS)
    assert parsed.calls == []
    assert len(parsed.errors) == 1 and parsed.errors[0].call.id == "c9"
    assert "not valid JSON" in parsed.errors[0].content
    rendered = OpenAIToolCalls().render(parsed.errors)
    assert rendered == [{"role": "tool", "tool_call_id": "c9", "name": "execute_sql",
                         "content": rendered[0]["content"]}]
    assert rendered[0]["content"].startswith("Error: ")


def test_hermes_text_format():
    text = 'Let me look.\n<tool_call>\n{"name": "execute_sql", "arguments": {"query": "SELECT 2"}}\n</tool_call>'
    parsed = parse_action(text, PARSERS, turn=3)
    assert parsed.format == "hermes"
    assert parsed.calls == [ToolCall("execute_sql", {"query": "SELECT 2"}, "call_3_0")]


def test_hermes_double_encoded_arguments_and_unclosed_tag():
    parsed = parse_action('<tool_call>{"name": "f", "arguments": "{\\"x\\": 1}"}</tool_call><tool_call>{"name"',
                          PARSERS)
    assert parsed.calls == [ToolCall("f", {"x": 1}, "call_0_0")]
    assert any("not closed" in e.content for e in parsed.errors)


def test_tags_in_order_and_think_is_ignored():
    text = "<think>maybe <solution>SELECT 0</solution></think><sql>SELECT a FROM t</sql> then <solution> SELECT b </solution>"
    parsed = parse_action(text, PARSERS)
    assert parsed.format == "sql-tags"
    assert [(c.name, c.arguments) for c in parsed.calls] == [
        ("execute_sql", {"query": "SELECT a FROM t"}), ("submit_sql", {"query": "SELECT b"})]


def test_tag_results_rendered_as_observation_tags():
    msgs = SQL_TAGS.render([ToolResult(ToolCall("execute_sql", {}, "x"), "a | b", False),
                            ToolResult(None, "bad", True)])
    assert msgs == [{"role": "user", "content": "<observation>a | b</observation>\n<observation>Error: bad</observation>"}]


def test_plain_text_has_no_call():
    assert parse_action("I think the answer is 42.", PARSERS) is None


def test_garbage_inputs_never_raise():
    for action in (None, 42, 3.5, b"bytes", ["list"], {"content": 7}, {"tool_calls": "nope"},
                   {"tool_calls": [None, 5, {"function": "x"}]}, {"content": [{"type": "image_url"}]}):
        parsed = parse_action(action, PARSERS)
        assert parsed is None or parsed.errors or parsed.calls == [] or parsed.calls


def test_absurdly_nested_json_is_an_error_not_a_crash():
    deep = "[" * 100_000 + "]" * 100_000
    parsed = parse_action(openai_call("f", deep), PARSERS)
    assert parsed.calls == [] and "not valid JSON" in parsed.errors[0].content


def test_overlong_action_refused_whole():
    parsed = parse_action("<sql>" + "x" * (MAX_ACTION_CHARS + 1) + "</sql>", PARSERS)
    assert parsed.calls == [] and "too long" in parsed.errors[0].content


def test_dict_arguments_accepted_as_is():
    action = {"content": "", "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": {"a": [1, 2]}}}]}
    assert parse_action(action, PARSERS).calls == [ToolCall("f", {"a": [1, 2]}, "1")]
    assert json.loads(json.dumps(action))  # still a JSON-able message
