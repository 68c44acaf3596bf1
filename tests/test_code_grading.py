"""Grading: per-test verdicts from a fresh sandbox process, decided on the host or in the trusted harness; exits,
forks, forged result lines and monkeypatching cannot raise a score; plain data crosses the boundary type-strictly;
every reference solution and HumanEval's 164 canonical solutions pass. (The full forge suite: test_code_forgery.)"""

from __future__ import annotations

import asyncio

import pytest

from agentgym.envs.code._plaindata import MAX_DEPTH, NotPlainData, decode, encode
from agentgym.envs.code.grading import GradingSpec, TestCase, grade, harness_job, text_matches, values_match
from agentgym.envs.code.harness import HARNESS
from agentgym.envs.code.suite import grading_spec, load_code_suite, load_humaneval_suite, task_tests


@pytest.fixture(autouse=True)
def _stop_harness_workers():
    yield
    HARNESS.close()  # each test owns the harness workers it started

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


# --- plain data and assert-style tests ---------------------------------------------------------------------

def test_plain_data_round_trips_type_strictly_and_refuses_everything_else():
    values = [None, True, 0, -(10 ** 5000), 1.5, float("inf"), 2j, "é\x00", b"\xff", [1, (2, 3)], {4, 5},
              frozenset({6}), {"a": [1], (1, 2): {True: None}}, ()]
    for value in values:
        back = decode(encode(value))
        assert back == value and type(back) is type(value)
    assert type(decode(encode((1,)))) is tuple and type(decode(encode(True))) is bool
    nan = decode(encode(float("nan")))
    assert nan != nan

    class Sneaky(int):
        def __eq__(self, other):
            return True

    for bad in (Sneaky(1), [Sneaky(1)], object(), print, type("S", (str,), {})("x"), {"k": Sneaky(0)}):
        with pytest.raises(NotPlainData):
            encode(bad)
    deep: list = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(NotPlainData):
        encode(deep)
    for malformed in (["i", 3], ["b", 2], ["S", [["l", []]]], ["d", [["N"]]], ["?", 1], "s", ["f", None]):
        with pytest.raises(NotPlainData):
            decode(malformed)


HELPERS = 'def double(xs):\n    """Double every item."""\n'
SPEC = GradingSpec(mode="script", entry="double", per_test_timeout_s=1.0, reference="def double(xs):\n    "
                   "return [2 * x for x in xs]\n", helpers=HELPERS)


def asserts(*sources: str) -> list[TestCase]:
    return [TestCase(src=src) for src in sources]


async def test_asserts_are_replayed_on_the_candidates_answers_with_partial_credit():
    tests = asserts("assert candidate([1, 2]) == [2, 4]", "assert candidate([]) == []",
                    "for n in range(5):\n    assert candidate([n]) == [2 * n]")
    right = await grade("def double(xs):\n    return [x + x for x in xs]\n", SPEC, tests)
    assert [r.status for r in right.results] == ["pass"] * 3
    partial = await grade("def double(xs):\n    return [2 * x for x in xs] if xs else None\n", SPEC, tests)
    assert [r.status for r in partial.results] == ["pass", "fail", "pass"]
    assert "assertion failed" in partial.results[1].error
    # a tuple is not a list, and a list subclass that equals anything cannot even cross the boundary
    tuple_answer = await grade("def double(xs):\n    return tuple(2 * x for x in xs)\n", SPEC, tests)
    assert [r.passed for r in tuple_answer.results] == [False, False, False]
    sneaky = ("class L(list):\n    def __eq__(self, other):\n        return True\n"
              "def double(xs):\n    return L()\n")
    assert (await grade(sneaky, SPEC, tests)).passed == 0


async def test_exceptions_mutations_and_a_diverging_course_replay_faithfully():
    spec = GradingSpec(mode="script", entry="pop_first", per_test_timeout_s=1.0,
                       reference="def pop_first(xs):\n    if not xs:\n        raise ValueError('empty')\n"
                                 "    return xs.pop(0)\n")
    tests = asserts("try:\n    candidate([])\n    assert False\nexcept ValueError:\n    pass",
                    "xs = [1, 2]\nassert candidate(xs) == 1 and xs == [2]",
                    "xs = [3, 4, 5]\nwhile candidate(xs) != 5:\n    pass\nassert xs == []")
    right = await grade("def pop_first(xs):\n    if not xs:\n        raise ValueError\n    return xs.pop(0)\n",
                        spec, tests)
    assert right.all_passed, right.results
    # no mutation: the test sees its list unchanged; a different answer sends the test on a course not recorded
    wrong = await grade("def pop_first(xs):\n    if not xs:\n        raise ValueError\n    return xs[0]\n",
                        spec, tests)
    assert [r.passed for r in wrong.results] == [True, False, False]
    assert "differs from the recorded calls" in wrong.results[2].error
    raises_other = await grade("def pop_first(xs):\n    raise KeyError('no')\n", spec, tests)
    assert not raises_other.results[0].passed


async def test_tests_that_cannot_cross_the_boundary_are_unsafe_for_everyone():
    spec = GradingSpec(mode="script", entry="area", per_test_timeout_s=1.0, prelude="class Box:\n    w = h = 2",
                       reference="def area(box):\n    return box.w * box.h\n\ndef same(x):\n    return x\n")
    tests = asserts("assert area(Box()) == 4", "assert area(Box()) == 5")
    report = await grade("def area(box):\n    return 4\n", spec, tests)
    assert [r.status for r in report.results] == ["unsafe", "unsafe"]
    assert "only plain data" in report.results[0].error and "reference solution fails" in report.results[1].error
    no_reference = GradingSpec(mode="script", entry="area", reference=None)
    assert (await grade("def area(b):\n    return 4\n", no_reference, tests)).results[0].status == "unsafe"


async def test_a_call_never_sees_later_arguments_that_hold_its_expected_answer():
    # call 2's argument is the reference's answer to call 1: a candidate that could read the calls to come
    # would answer call 1 with it; this one searches its whole heap for them, and finds nothing to copy
    spec = GradingSpec(mode="script", entry="rev", per_test_timeout_s=1.0,
                       reference="def rev(s):\n    return s[::-1]\n")
    tests = asserts("assert candidate(candidate('hello world')) == 'hello world'")
    peek = ("import gc, json\n"
            "def rev(s):\n"
            "    for obj in gc.get_objects():\n"
            "        for item in (obj if isinstance(obj, list) else [obj] if isinstance(obj, str) else []):\n"
            "            try:\n"
            "                text = item if isinstance(item, str) else json.dumps(item)\n"
            "            except Exception:\n"
            "                continue\n"
            "            if 'dlrow' in text:\n"
            "                return 'dlrow olleh'\n"
            "    return s\n")
    assert (await grade(peek, spec, tests)).passed == 0
    assert (await grade("def rev(s):\n    return ''.join(reversed(s))\n", spec, tests)).all_passed
    # the harness saw that the test chains answers into arguments, so its calls go one at a time; a test whose
    # arguments are fixed in advance may go at once
    both = asserts(tests[0].src, "assert candidate('abc') == 'cba'")
    recorded = await HARNESS.recording("bwrap", {**harness_job(spec, both), "reference": spec.reference})
    assert [r.batch for r in recorded] == [False, True]
    namespace: dict = {}
    exec(peek, namespace)  # the peek works wherever the later call is in memory
    bait = [["rev", ["t", [["s", "dlrow olleh"]]], ["d", []]]]
    assert namespace["rev"]("hello world") == "dlrow olleh" and bait


async def test_answers_that_choke_the_harness_fail_the_test_not_the_grader():
    tests = asserts("assert candidate([1]) == [2]", "assert len(candidate([1]) * 10 ** 9) == 0")
    huge = await grade("def double(xs):\n    return 'x' * (1 << 19)\n", SPEC, tests)
    assert [r.passed for r in huge.results] == [False, False]
    deep = await grade("def double(xs):\n    out = []\n    for _ in range(100000):\n        out = [out]\n"
                       "    return out\n", SPEC, tests)
    assert deep.passed == 0 and deep.total == 2
