"""The literal-only Python-call parser (agentgym.python_calls): BrowserGym action text -> tool calls, never executed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentgym.python_calls import PythonCalls
from agentgym.tool_calls import parse_action

TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {p: {} for p in ps}}}}
         for n, ps in {"click": ("bid", "button"), "fill": ("bid", "value"), "noop": ("wait_ms",),
                       "select_option": ("bid", "options"), "scroll": ("delta_x", "delta_y")}.items()]
PARSER = PythonCalls.from_tools("browsergym", TOOLS)


def calls(text: str):
    parsed = parse_action(text, [PARSER], turn=3)
    assert parsed is not None
    return [(c.name, c.arguments) for c in parsed.calls], [e.content for e in parsed.errors]


def test_positional_arguments_map_onto_schema_order_and_keywords_by_name():
    assert calls("click('12')") == ([("click", {"bid": "12"})], [])
    assert calls('fill("3", value="hi \\"there\\"")') == ([("fill", {"bid": "3", "value": 'hi "there"'})], [])
    assert calls("scroll(0, -200.5)") == ([("scroll", {"delta_x": 0, "delta_y": -200.5})], [])
    assert calls("select_option('4', ['a', 'b'])") == ([("select_option", {"bid": "4", "options": ["a", "b"]})], [])
    assert calls("noop()") == ([("noop", {})], [])


def test_calls_are_found_inside_prose_code_fences_and_comments_and_keep_order():
    text = "I will first fill the box.\n```python\nfill('7', 'a) b') # a comment with click(\nclick('8')\n```"
    assert calls(text)[0] == [("fill", {"bid": "7", "value": "a) b"}), ("click", {"bid": "8"})]


def test_non_literals_are_refused_with_a_reason_and_nothing_is_evaluated():
    for text in ["click(__import__('os').system('echo pwned'))", "click(bid)", "click('1' + '2')",
                 "click(*args)", "fill(**{'bid': '1'})", "click(lambda: 1)", "click(f'{x}')"]:
        found, errors = calls(text)
        assert found == [] and len(errors) == 1 and "cannot read" in errors[0], text


def test_errors_for_too_many_arguments_duplicates_and_unclosed_calls():
    assert "at most 2 positional" in calls("click('1', 'left', 3)")[1][0]
    assert "given twice" in calls("click('1', bid='2')")[1][0]
    assert "not closed" in calls("click('1'")[1][0]


def test_unknown_names_and_methods_are_not_actions():
    assert parse_action("print('x') and obj.click('1')", [PARSER]) is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300),
                 st.builds(lambda a, b: f"click({a}{b}", st.text(max_size=50), st.sampled_from(["", ")", "))", "'"])),
                 st.builds(lambda n: "fill(" + "[" * n + "'1'" + "]" * n + ")", st.integers(0, 3000))))
def test_fuzzed_text_never_raises(text):
    parsed = parse_action(text, [PARSER])
    assert parsed is None or all(isinstance(c.arguments, dict) for c in parsed.calls)
