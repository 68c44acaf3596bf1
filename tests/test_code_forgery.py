"""Forged grades: submissions that attack the grading machinery instead of solving the task score 0.

Each attack is one generic submission module that defines every entry point of a suite at once, so the same
source is graded on every task. A control harness of the naive kind (asserts executed next to the candidate,
verdict read from the same process) shows that the in-process attacks are real: they reach a full score there.
Against the real grader they score 0 on every HumanEval task: all 164 for the attacks that fooled in-process
harnesses on every task (patched builtins, objects equal to anything) or that search the process for whatever
each task's tests leave in reach (frame and garbage-collector walking); a stratified sample of 24 (every 7th
problem) for the rest, whose effect does not depend on the task: exits, markers, threads and forks act at the
process level, and the machinery and data they rewrite are the same for every task. Every attack also scores 0 on
every task of an MBPP file written here, while HumanEval's canonical solutions still pass 164 of 164
(``test_code_grading.py``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentgym.envs.code.grading import GradeReport, grade
from agentgym.envs.code.harness import HARNESS
from agentgym.envs.code.sandbox import local
from agentgym.envs.code.suite import (grading_spec, load_code_suite, load_dataset_suite, load_humaneval_suite,
                                      task_tests)
from agentgym.tasks import Task

pytestmark = pytest.mark.skipif(not Path(local.BWRAP).exists(), reason="bubblewrap is not installed")


@pytest.fixture(autouse=True)
def _stop_harness_workers():
    yield
    HARNESS.close()  # each test owns the harness workers it started

# --- the attacks -------------------------------------------------------------------------------------
# Every attack ends by binding `_attack` to every entry name (ENTRY_NAMES is filled in per suite).
DEFINE_ENTRIES = "\nfor _name in ENTRY_NAMES:\n    globals()[_name] = _attack\n"

PASS_LINES = '''
def _pass_lines(n=400):
    lines = []
    for i in range(n):
        for obj in ({"i": i, "status": "pass"}, {"i": i, "status": "ok", "out": None},
                    {"i": i, "j": 0, "status": "ok", "v": ["b", 1]}):
            lines.append(obj)
    return lines


def _forge_everywhere(nonces=("",)):
    import os, json
    for nonce in nonces:
        for obj in _pass_lines(20):
            data = (json.dumps(dict(obj, nonce=nonce)) + "\\n").encode()
            for fd in range(0, 24):
                try:
                    os.write(fd, data)
                except OSError:
                    pass
    print("All tests passed. PASS OK 164/164")
'''

ALWAYS_EQUAL = '''
class _AlwaysEqual(int):
    """Equal to anything, never unequal; also what arithmetic and abs() return."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __le__(self, other): return True
    def __gt__(self, other): return True
    def __ge__(self, other): return True
    def __hash__(self): return 0
    def __bool__(self): return True
    def __abs__(self): return self
    def __add__(self, other): return self
    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __add__
    def __len__(self): return 0
    def __iter__(self): return iter(())
    def __getitem__(self, key): return self
'''

ATTACKS: dict[str, str] = {
    # replace the builtins an in-process harness calls: exec/compile run nothing, asserts compile away
    "patched_builtins": '''
import builtins
_real_compile = builtins.compile
builtins.exec = lambda *args, **kwargs: None
builtins.compile = lambda src, name, mode, *a, **k: _real_compile(src, name, mode, optimize=2)
builtins.AssertionError = type("AssertionError", (Exception,), {})
def _attack(*args, **kwargs):
    return None
''',
    # switch off assertion machinery: unittest's asserts, traceback formatting, json, assert statements
    "assert_machinery": '''
import builtins, sys, traceback, unittest
for _n in dir(unittest.TestCase):
    if _n.startswith("assert"):
        setattr(unittest.TestCase, _n, lambda *a, **k: None)
traceback.format_exception_only = lambda *a, **k: ["ok"]
sys.excepthook = lambda *a: None
_real_compile = builtins.compile
builtins.compile = lambda src, name, mode, *a, **k: _real_compile(src, name, mode, optimize=2)
def _attack(*args, **kwargs):
    raise AssertionError("swallowed?")
''',
    # walk the stack: rewrite every test list in reach, call every reporting function in reach
    "frame_walking": PASS_LINES + '''
import sys
def _walk():
    frame = sys._getframe()
    while frame is not None:
        for name, value in list(frame.f_locals.items()):
            if name == "tests" and isinstance(value, list):
                value[:] = ["pass" if isinstance(t, str) else {"src": "pass"} if isinstance(t, dict) else []
                            for t in value]
            elif callable(value) and name in ("send", "report", "emit", "write"):
                for obj in _pass_lines():
                    try:
                        value(dict(obj))
                    except Exception:
                        pass
        frame = frame.f_back
_walk()
def _attack(*args, **kwargs):
    _walk()
    return None
''',
    # walk the garbage collector: the job, its nonce, its tests and every reporting closure
    "gc_walking": PASS_LINES + '''
import gc
def _walk():
    nonces = [""]
    for obj in gc.get_objects():
        if isinstance(obj, dict):
            if isinstance(obj.get("nonce"), str):
                nonces.append(obj["nonce"])
            if isinstance(obj.get("tests"), list):
                obj["tests"][:] = ["pass" if isinstance(t, str) else {"src": "pass"} if isinstance(t, dict) else []
                                   for t in obj["tests"]]
        elif isinstance(obj, list) and obj and all(isinstance(t, str) and "assert" in t for t in obj):
            obj[:] = ["pass"] * len(obj)
        elif callable(obj) and getattr(obj, "__name__", "") == "send":
            for line in _pass_lines():
                try:
                    obj(dict(line))
                except Exception:
                    pass
    _forge_everywhere(nonces)
_walk()
def _attack(*args, **kwargs):
    _walk()
    return None
''',
    # rewrite the harness itself: its functions, its job, its module globals
    "rewrite_harness": PASS_LINES + '''
import sys
_main = sys.modules.get("__main__")
for _mod in list(sys.modules.values()):
    for _n in ("run_calls", "judge", "timed", "replay", "record"):
        if hasattr(_mod, _n):
            try:
                setattr(_mod, _n, lambda *a, **k: True)
            except Exception:
                pass
import gc
for _obj in gc.get_objects():
    if isinstance(_obj, dict) and "mode" in _obj and "tests" in _obj:
        _obj["mode"], _obj["tests"], _obj["code"] = "none", [], ""
def _attack(*args, **kwargs):
    return None
''',
    # objects that compare equal to anything (a subclass of int, so a type-blind check accepts it too)
    "always_equal": ALWAYS_EQUAL + '''
def _attack(*args, **kwargs):
    return _AlwaysEqual(0)
''',
    # objects that are true, less than everything, iterable as empty
    "always_true": '''
class _Truthy:
    def __bool__(self): return True
    def __eq__(self, other): return True
    def __lt__(self, other): return True
    def __abs__(self): return 0
    def __len__(self): return 0
    def __iter__(self): return iter(())
def _attack(*args, **kwargs):
    return _Truthy()
''',
    "sys_exit_at_import": "import sys\ndef _attack(*a, **k):\n    return None\n" + DEFINE_ENTRIES + "sys.exit(0)\n",
    "os_exit_at_import": "import os\ndef _attack(*a, **k):\n    return None\n" + DEFINE_ENTRIES + "os._exit(0)\n",
    "exit_in_first_call": '''
import os, sys
def _attack(*args, **kwargs):
    sys.stdout.write("PASS\\n")
    os._exit(0)
''',
    "os_exit_midway": PASS_LINES + '''
import os
_calls = [0]
def _attack(*args, **kwargs):
    _calls[0] += 1
    if _calls[0] == 3:
        _forge_everywhere()
        os._exit(0)
    return None
''',
    "sys_exit_in_every_call": '''
import sys
def _attack(*args, **kwargs):
    sys.exit(0)
''',
    # print success markers everywhere, in every format a harness might read, then exit cleanly
    "print_markers": PASS_LINES + '''
_forge_everywhere()
def _attack(*args, **kwargs):
    _forge_everywhere()
    return None
''',
    # a thread that keeps forging results after the call has returned
    "thread_outlives_test": PASS_LINES + '''
import threading, time
def _spam():
    for _ in range(200):
        _forge_everywhere()
        time.sleep(0.01)
def _attack(*args, **kwargs):
    threading.Thread(target=_spam, daemon=False).start()
    return None
''',
    # a forked child that carries on as the harness and reports for the submission
    "fork_reporter": PASS_LINES + '''
import os, gc
def _attack(*args, **kwargs):
    if os.fork() == 0:
        nonces = [""] + [o["nonce"] for o in gc.get_objects()
                         if isinstance(o, dict) and isinstance(o.get("nonce"), str)]
        _forge_everywhere(nonces)
        return _AlwaysEqual(0) if "_AlwaysEqual" in globals() else True
    os._exit(0)
''',
}
ALL_TASKS = ("patched_builtins", "frame_walking", "gc_walking", "always_equal")
SAMPLED = tuple(name for name in ATTACKS if name not in ALL_TASKS)
IN_PROCESS = ("patched_builtins", "assert_machinery", "gc_walking", "always_equal")  # potent against the control


def submission(attack: str, entries: set[str]) -> str:
    """The attack as one module that defines every entry point of a suite."""
    source = f"ENTRY_NAMES = {sorted(entries)!r}\n" + ATTACKS[attack]
    return source if "ENTRY_NAMES:\n" in source else source + DEFINE_ENTRIES


def entry_names(tasks: list[Task]) -> set[str]:
    return {name for t in tasks for name in [t.data["entry"], *t.data.get("entries", [])]}


async def grade_all(code: str, tasks: list[Task]) -> list[GradeReport]:
    gate = asyncio.Semaphore(2)

    async def one(task: Task) -> GradeReport:
        async with gate:
            return await grade(code, grading_spec(task), task_tests(task, "hidden"))

    return await asyncio.gather(*(one(t) for t in tasks))


def humaneval_sample(tasks: list[Task], n: int = 24) -> list[Task]:
    """Every k-th problem: spread over the file, so over its kinds of tests."""
    return tasks[:: max(1, len(tasks) // n)][:n]


# --- the control: an in-process harness of the naive kind ---------------------------------------------

NAIVE_HARNESS = '''
import json, sys
job = json.loads(sys.stdin.read())
ns = {"__name__": "solution"}
exec(job["code"], ns)
exec(job["prelude"], ns)
ns[job["candidate"]] = ns[job["entry"]]
tests = job["tests"]
for i, src in enumerate(list(tests)):
    try:
        exec(compile(tests[i], "<test>", "exec"), ns)
        print(json.dumps({"i": i, "status": "pass"}), flush=True)
    except Exception:
        print(json.dumps({"i": i, "status": "fail"}), flush=True)
'''


def naive_verdict(code: str, task: Task) -> bool:
    """Whether the naive in-process harness (run as a plain subprocess) reports every test passed."""
    tests = [t["src"] for t in task.data["hidden"]]
    job = {"code": code, "prelude": task.data["prelude"], "candidate": task.data["candidate"],
           "entry": task.data["entry"], "tests": tests}
    run = subprocess.run([sys.executable, "-I", "-c", NAIVE_HARNESS], input=json.dumps(job), capture_output=True,
                         text=True, timeout=60)
    passed = set()
    for line in run.stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("status") == "pass" and isinstance(obj.get("i"), int):
            passed.add(obj["i"])
    return passed >= set(range(len(tests)))


@pytest.mark.parametrize("attack", IN_PROCESS)
def test_the_in_process_attacks_fool_a_naive_harness(attack):
    task = load_humaneval_suite().tasks()[0]
    assert naive_verdict(submission(attack, {task.data["entry"]}), task), attack
    assert not naive_verdict(task.data["question"] + "    return None\n", task)  # the control does check


# --- the real grader ----------------------------------------------------------------------------------

@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_attacks_score_zero_on_humaneval(attack):
    tasks = load_humaneval_suite().tasks()
    if attack not in ALL_TASKS:
        tasks = humaneval_sample(tasks)
    reports = await grade_all(submission(attack, entry_names(tasks)), tasks)
    won = [t.template for t, r in zip(tasks, reports) if r.all_passed]
    assert won == [], f"{attack} scored 1.0 on {won}"
    assert len(reports) == (164 if attack in ALL_TASKS else 24)


MBPP = [
    {"task_id": 1, "text": "Return the sum of a list.", "code": "def total(xs):\n    return sum(xs)",
     "test_list": ["assert total([1, 2, 3]) == 6", "assert total([]) == 0", "assert total([-1, 1]) == 0"]},
    {"task_id": 2, "text": "Is n prime?",
     "code": "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))",
     "test_list": ["assert is_prime(7)", "assert not is_prime(8)", "assert is_prime(2) == True"]},
    {"task_id": 3, "text": "Reverse a list in place and return it.",
     "code": "def rev(xs):\n    xs.reverse()\n    return xs",
     "test_list": ["xs = [1, 2, 3]\nassert rev(xs) == [3, 2, 1] and xs == [3, 2, 1]", "assert rev([]) == []"]},
    {"task_id": 4, "text": "The shared elements of two tuples, as a tuple.",
     "code": "def shared(a, b):\n    return tuple(sorted(set(a) & set(b)))",
     "test_list": ["assert set(shared((3, 4, 5), (5, 4, 10))) == {4, 5}", "assert shared((1,), (2,)) == ()"]},
    {"task_id": 5, "text": "Scale every value by FACTOR.",
     "code": "def scale(xs):\n    return [x * FACTOR for x in xs]",
     "test_setup_code": "FACTOR = 3", "test_list": ["assert scale([1, 2]) == [3, 6]", "assert scale([]) == []"]},
    {"task_id": 6, "text": "Words of a sentence, and their count.",
     "code": "def words(s):\n    return s.split()\ndef count(s):\n    return len(words(s))",
     "test_list": ["assert words('a b') == ['a', 'b'] and count('a b c') == 3",
                   "import math\nassert math.isclose(count('x') / 2, 0.5)"]},
]


@pytest.fixture(scope="module")
def mbpp_tasks(tmp_path_factory) -> list[Task]:
    path = tmp_path_factory.mktemp("mbpp") / "mbpp_test.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in MBPP))
    return load_dataset_suite("mbpp", path).tasks()


async def test_mbpp_reference_solutions_pass_and_doing_nothing_fails(mbpp_tasks):
    reports = await grade_all("", mbpp_tasks)
    assert [r.all_passed for r in reports] == [False] * len(MBPP)
    for task in mbpp_tasks:
        report = (await grade_all(task.data["reference"], [task]))[0]
        assert report.all_passed, (task.template, report.results)


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_attacks_score_zero_on_an_mbpp_file(attack, mbpp_tasks):
    reports = await grade_all(submission(attack, entry_names(mbpp_tasks)), mbpp_tasks)
    assert [t.template for t, r in zip(mbpp_tasks, reports) if r.all_passed] == []


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_attacks_score_zero_on_generated_call_and_stdio_tasks(attack):
    tasks = load_code_suite().tasks("test")
    sample = [t for t in tasks if t.data["mode"] == "stdio"][:2] + [t for t in tasks if t.data["mode"] == "call"][:6]
    reports = await grade_all(submission(attack, entry_names(sample)), sample)
    assert [t.id for t, r in zip(sample, reports) if r.all_passed] == []
