"""What the coding agent reads: the system prompt, the task statement, and tool outputs truncated with a note."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from agentgym.envs.code.grading import GradeReport, TestCase
from agentgym.envs.code.sandbox.base import Execution
from agentgym.tasks import Task

OUTPUT_CHARS = 4000

SYSTEM_PROMPT = """You solve programming tasks in Python 3.11 (standard library only).
Tools:
- run_python(code): run code in a persistent Python interpreter (state is kept between calls; no network).
- run_tests(code): run your complete solution against the public examples.
- submit_code(code): submit your complete solution; it is graded on hidden tests and the episode ends.
Without native tool calls, write <execute>CODE</execute> to run code and <submit>CODE</submit> to submit; you may think in <think>...</think> first.
You have {max_turns} turns; submitting ends the episode."""

# The opening fence: blanks, three backticks, a language tag, then blanks up to and including the last
# newline before the code. One anchored try with possessive repeats reads each character once. The closing
# fence is found without a regex: the lazy (.*?) this replaces retried "blanks then backticks" at every
# character of the code, which is O(n^2) on a long run of blanks.
_FENCE_OPENING = re.compile(r"\s*+```[a-zA-Z0-9_+-]*+(?:[^\S\n]*+\n)++")


def clean_code(code: str) -> str:
    """Strip one surrounding Markdown code fence, which agents often put around tagged code.

    The code is what lies between the opening fence's line and a closing fence followed only by blanks, less its
    trailing blanks; text without both fences is returned unchanged.
    """
    opening = _FENCE_OPENING.match(code)
    if opening is None:
        return code
    rest = code[opening.end():].rstrip()  # str.rstrip strips exactly the characters the regex \s matches
    if not rest.endswith("```"):
        return code
    return rest[:-3].rstrip()


def truncate(text: str, limit: int = OUTPUT_CHARS) -> str:
    """`text`, cut to `limit` characters with a note saying how much was dropped."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [output truncated: {len(text) - limit} more characters not shown]"


def _show(value: object) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def task_prompt(task: Task) -> str:
    """The first user message: the spec, the signature or I/O contract, and the public examples."""
    d = task.data
    if d["mode"] == "script":  # HumanEval: the prompt is the function to complete
        return ("Complete this Python function. Submit the whole function (signature included) with any imports "
                f"and helpers it needs.\n\n```python\n{d['question']}```")
    lines = [d["question"], ""]
    if d["mode"] == "call":
        lines += ["Write this function (you may add helpers and imports):", "", f"```python\n{d['signature']}:\n    ...\n```"]
    else:
        lines += ["Write a complete program that reads standard input and writes standard output."]
    if d["public"]:
        lines += ["", "Examples:"]
        for case in d["public"]:
            if d["mode"] == "call":
                args = ", ".join(_show(a) for a in case["args"])
                lines.append(f"- {d['entry']}({args}) == {_show(case['expected'])}")
            else:
                lines.append(f"- input:\n{case['stdin']}  output:\n{case['expected']}")
    return "\n".join(lines)


def format_execution(execution: Execution, limit: int = OUTPUT_CHARS) -> str:
    """Stdout, stderr, the last expression's value and the error of one run, truncated with a note."""
    parts = []
    stdout, stderr = "".join(execution.logs.stdout), "".join(execution.logs.stderr)
    if stdout:
        parts.append(f"stdout:\n{stdout.rstrip(chr(10))}")
    if stderr:
        parts.append(f"stderr:\n{stderr.rstrip(chr(10))}")
    if execution.text is not None:
        parts.append(f"Out[{execution.execution_count}]: {execution.text}")
    if execution.error is not None:
        err = execution.error
        parts.append(err.traceback.rstrip() if err.traceback else f"{err.name}: {err.value}")
    text = "\n".join(parts) if parts else "(no output)"
    if execution.truncated_chars:
        text += f"\n... [output truncated in the sandbox: {execution.truncated_chars} more characters not kept]"
    return truncate(text, limit)


def format_report(report: GradeReport, tests: Sequence[TestCase] | None = None, limit: int = OUTPUT_CHARS) -> str:
    """A per-test summary; with `tests` (public ones) it shows inputs, expected and actual outputs."""
    lines = [f"{report.passed}/{report.total} tests passed."]
    for result in report.results:
        if result.passed and tests is None:
            continue
        line = f"- test {result.index + 1}: {result.status}"
        if tests is not None:
            case = tests[result.index]
            shown = case.stdin if case.stdin is not None else case.args
            line += f"; input {_show(shown)}; expected {_show(case.expected)}"
            if result.status == "wrong_answer":
                line += f"; got {_show(result.got)}"
        if result.error:
            line += f"; {result.error.splitlines()[-1] if result.error.strip() else result.error}"
        lines.append(line)
    return truncate("\n".join(lines), limit)
