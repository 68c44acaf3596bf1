"""Grading: per-test verdicts from a fresh sandbox process, decided on the host; exits, forks, forged result lines
and monkeypatching cannot raise a score; every reference solution and HumanEval's 164 canonical solutions pass."""

from __future__ import annotations

import asyncio

import pytest

from agentgym.envs.code.grading import GradingSpec, TestCase, grade, text_matches, values_match
from agentgym.envs.code.suite import grading_spec, load_code_suite, load_humaneval_suite, task_tests

ADD = GradingSpec(mode="call", entry="add")
ADD_TESTS = [TestCase(args=[1, 2], expected=3), TestCase(args=[-5, 5], expected=0), TestCase(args=[10, 0], expected=10)]


async def test_per_test_results_are_counted_not_the_exit_code():
    right = await grade("def add(a, b):\n    return a + b\n", ADD, ADD_TESTS)
    assert (right.passed, right.total, right.all_passed) == (3, 3, True)
    partial = await grade("def add(a, b):\n    return a + b if a != 10 else 0\n", ADD, ADD_TESTS)
    assert [r.status for r in partial.results] == ["pass", "pass", "wrong_answer"] and partial.passed == 2
    wrong = await grade("def add(a, b):\n    return a - b\n", ADD, ADD_TESTS)
    assert [r.passed for r in wrong.results] == [False, False, True] and wrong.frac_passed == pytest.approx(1 / 3)
    assert wrong.results[0].status == "wrong_answer" and wrong.results[0].got == -1


@pytest.mark.parametrize("code, statuses", [
    ("import sys\nsys.exit(0)\n", ["error"] * 3),                                    # exits at import
    ("import os\nos._exit(0)\n", ["no_result"] * 3),                                 # dies at import
    ("def add(a, b):\n    if a == -5:\n        import os; os._exit(0)\n    return a + b\n",
     ["pass", "no_result", "no_result"]),                                            # dies mid-way
    ("def add(a, b):\n    while a == -5:\n        pass\n    return a + b\n", ["pass", "timeout", "pass"]),
    ("def add(a, b):\n    try:\n        while True: pass\n    except Exception:\n        return a + b\n",
     ["timeout"] * 3),                                                               # cannot swallow the timer
    ("def add(a, b):\n    return {a, b}\n", ["error"] * 3),                              # not JSON data
    ("def add(a, b):\n    import os\n    if os.fork() == 0:\n        return 999\n    return a + b\n", ["pass"] * 3),
    ("syntax error here", ["error"] * 3),
])
async def test_exits_crashes_timeouts_and_forks_fail_only_the_affected_tests(code, statuses):
    report = await grade(code, GradingSpec(mode="call", entry="add", per_test_timeout_s=0.5), ADD_TESTS)
    assert [r.status for r in report.results] == statuses


FORGERIES = [
    # print result lines that look like the harness's, to stdout and straight to every descriptor
    'import os, json\nfor fd in range(0, 20):\n    for i in range(3):\n        try:\n'
    '            os.write(fd, (json.dumps({"i": i, "status": "ok", "out": 0, "nonce": "x"}) + "\\n").encode())\n'
    '        except OSError:\n            pass\ndef add(a, b):\n    return 0\n',
    # monkeypatch the comparison tools it can reach (the comparison happens on the host)
    'import json, builtins\njson.dumps = lambda *a, **k: "3"\nbuiltins.isinstance = lambda *a: True\n'
    'def add(a, b):\n    return 0\n',
    # read the expected outputs (they never enter the sandbox)
    'import sys\ndef add(a, b):\n    return sys.stdin.read() or 0\n',
]


@pytest.mark.parametrize("code", FORGERIES)
async def test_forged_results_and_monkeypatching_do_not_raise_the_score(code):
    report = await grade(code, ADD, ADD_TESTS)
    assert report.passed <= 1  # only add(-5, 5) == 0 is honestly right for `return 0`
    assert not report.all_passed


async def test_humaneval_asserts_cannot_be_forged_by_printing_pass_lines():
    suite = load_humaneval_suite()
    task = suite.get(next(t.id for t in suite.tasks() if t.template == "HumanEval/0"))
    forged = ('import os, json\nfor i in range(20):\n    os.write(1, (json.dumps({"i": i, "status": "pass", '
              '"nonce": "guess"}) + "\\n").encode())\n' + task.data["question"] + "    return False\n")
    report = await grade(forged, grading_spec(task), task_tests(task, "hidden"))
    assert not report.all_passed and report.passed < report.total


async def test_stdio_programs_and_float_tolerance():
    spec = GradingSpec(mode="stdio", float_tol=1e-6)
    tests = [TestCase(stdin="3\n", expected="1.0000000\n"), TestCase(stdin="2\n", expected="0.5\n")]
    report = await grade("n = int(input())\nprint(1 / n * (n == 3) * 3 if n == 3 else 1 / n)\n", spec, tests)
    assert report.all_passed
    exact = await grade("print(int(input()) * 2)\nimport sys\nsys.exit(0)\n", GradingSpec(mode="stdio"),
                        [TestCase(stdin="4\n", expected="8\n"), TestCase(stdin="1\n", expected="3\n")])
    assert [r.status for r in exact.results] == ["pass", "wrong_answer"]
    assert values_match([1.0, [2.0000001]], [1, [2]], 1e-6) and not values_match([1.0], [1], None)
    assert not values_match(True, 1, None) and text_matches("1.0 2\n\n", "1.0000001 2", 1e-6)
    assert not text_matches("1 2", "1 2 3", None)


async def test_every_reference_solution_passes_its_hidden_tests():
    suite = load_code_suite()
    gate = asyncio.Semaphore(4)

    async def check(task):
        async with gate:
            return task, await grade(task.data["reference"], grading_spec(task), task_tests(task, "hidden"))

    results = await asyncio.gather(*(check(t) for t in suite.tasks()))
    failed = [(t.template, t.params["variant"]) for t, r in results if not r.all_passed]
    assert failed == [] and len(results) == len(suite) >= 120
    assert min(r.total for _, r in results) >= 12


async def test_humaneval_canonical_solutions_pass_164_of_164_in_the_sandbox():
    suite = load_humaneval_suite()
    gate = asyncio.Semaphore(4)

    async def check(task):
        async with gate:
            return task, await grade(task.data["reference"], grading_spec(task), task_tests(task, "hidden"))

    results = await asyncio.gather(*(check(t) for t in suite.tasks()))
    assert len(results) == 164
    assert [t.template for t, r in results if not r.all_passed] == []
    # and an empty body fails: the tests are real
    empty = await grade(results[0][0].data["question"] + "    pass\n", grading_spec(results[0][0]),
                        task_tests(results[0][0], "hidden"))
    assert not empty.all_passed
