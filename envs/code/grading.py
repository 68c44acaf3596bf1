"""Grading a submission: it runs alone in a fresh sandbox; every verdict is decided in a process it never runs in.

The candidate process (``_grader.py``) only reports what the submission returned or printed. For call and stdio
tests the expected outputs stay on the host and are compared here (with a float tolerance where the task asks
for one), so a submission can neither read nor forge them. Assert-style tests (HumanEval, MBPP) run in the
trusted harness (``harness.py``), a different sandbox that holds only the dataset's code: the calls the asserts
make are recorded once with the reference solution, the submission's own sandboxed interpreter answers those
calls one at a time (``_candidate.py``), and the harness replays the asserts on its answers, rebuilt as genuine
builtins, so no object of the submission's can take part.
A missing answer is a failed test; the exit status is never looked at.
"""

from __future__ import annotations

import ast
import json
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agentgym.envs.code._plaindata import NotPlainData, decode, encode
from agentgym.envs.code.harness import HARNESS, HarnessFailed, with_plaindata
from agentgym.envs.code.sandbox.backends import backend_class
from agentgym.envs.code.sandbox.base import SandboxError, SandboxLimits

GRADER_SOURCE = Path(__file__).with_name("_grader.py").read_text()
CANDIDATE_SOURCE = with_plaindata(Path(__file__).with_name("_candidate.py").read_text())
GRADING_LIMITS = SandboxLimits(cpu_seconds=60)
CANDIDATE_OUTPUT_CHARS = 4 << 20     # an answer may be up to 1 MB of JSON, and its repr comes back
CANDIDATE_BUDGET_S = 120.0           # wall clock for all of one submission's calls


@dataclass(frozen=True)
class GradingSpec:
    """How a task's tests are run: ``call`` (entry(*args)), ``stdio`` (stdin -> stdout) or ``script`` (asserts)."""

    mode: str
    entry: str = ""
    float_tol: float | None = None       # relative/absolute tolerance for floats, None = exact
    per_test_timeout_s: float = 2.0
    prelude: str = ""                    # script mode: the tests' module-level code (HumanEval's METADATA, imports)
    candidate: str = "candidate"         # script mode: the name the tests call the entry function by
    reference: str | None = None         # script mode: the reference solution the tests' calls are recorded with
    helpers: str = ""                    # script mode: dataset code the tests may use (HumanEval's prompt)
    entries: tuple[str, ...] = ()        # script mode: every submission function the tests call (default: entry)


@dataclass(frozen=True)
class TestCase:
    """One test: the input (args, stdin or an assert statement) and, for call/stdio, the expected output."""

    __test__ = False  # not a pytest class

    args: Sequence[Any] | None = None
    stdin: str | None = None
    src: str | None = None
    expected: Any = None

    def wire(self) -> dict[str, Any]:
        """What is sent into the sandbox: the input only."""
        if self.src is not None:
            return {"src": self.src}
        if self.stdin is not None:
            return {"stdin": self.stdin}
        return {"args": list(self.args or [])}

    def to_json(self) -> dict[str, Any]:
        return {**self.wire(), "expected": self.expected}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestCase:
        return cls(args=data.get("args"), stdin=data.get("stdin"), src=data.get("src"), expected=data.get("expected"))


@dataclass(frozen=True)
class TestResult:
    """The verdict on one test; ``got`` is what the submission produced (call/stdio), ``error`` why it failed."""

    __test__ = False

    index: int
    passed: bool
    status: str                          # pass | wrong_answer | error | timeout | no_result | fail | unsafe
    got: Any = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "passed": self.passed, "status": self.status, "error": self.error}


@dataclass(frozen=True)
class GradeReport:
    """Per-test verdicts of one submission."""

    results: tuple[TestResult, ...] = field(default_factory=tuple)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def frac_passed(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total


# --- comparing outputs on the host ---------------------------------------------------------------

def values_match(got: Any, expected: Any, tol: float | None) -> bool:
    """Structural equality of JSON values; floats within `tol` (relative or absolute) when a tolerance is set."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(got) is type(expected) and got == expected
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        if tol is None:
            return got == expected and type(got) is type(expected)
        if math.isnan(expected) or math.isnan(got):
            return math.isnan(expected) and math.isnan(got)
        return math.isclose(got, expected, rel_tol=tol, abs_tol=tol)
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(values_match(g, e, tol) for g, e in zip(got, expected))
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(values_match(got[k], expected[k], tol) for k in expected)
    return type(got) is type(expected) and got == expected


def text_matches(got: str, expected: str, tol: float | None) -> bool:
    """Line-by-line, whitespace-token comparison (trailing blank lines ignored); numeric tokens within `tol`."""
    def lines(text: str) -> list[list[str]]:
        rows = [line.split() for line in text.strip().splitlines()]
        return [r for r in rows if r] if tol is not None else rows

    a, b = lines(got), lines(expected)
    if len(a) != len(b):
        return False
    for row_a, row_b in zip(a, b):
        if len(row_a) != len(row_b):
            return False
        for x, y in zip(row_a, row_b):
            if x == y:
                continue
            if tol is None:
                return False
            try:
                if not math.isclose(float(x), float(y), rel_tol=tol, abs_tol=tol):
                    return False
            except ValueError:
                return False
    return True


def judge(spec: GradingSpec, tests: Sequence[TestCase], replies: Mapping[int, Mapping[str, Any]]) -> GradeReport:
    """Turn the candidate process's per-test replies (call/stdio) into verdicts (missing reply = failed)."""
    results = []
    for i, test in enumerate(tests):
        reply = replies.get(i)
        if reply is None:
            results.append(TestResult(i, False, "no_result", error="no result: the process died or ran out of time"))
            continue
        status = reply.get("status")
        if status != "ok":
            results.append(TestResult(i, False, "timeout" if status == "timeout" else "error",
                                      error=reply.get("error")))
        else:
            got = reply.get("out")
            ok = (text_matches(str(got), str(test.expected), spec.float_tol) if spec.mode == "stdio"
                  else values_match(got, test.expected, spec.float_tol))
            results.append(TestResult(i, ok, "pass" if ok else "wrong_answer", got=got))
    return GradeReport(tuple(results))


# --- running the harness -------------------------------------------------------------------------

async def _run_candidate(job: dict[str, Any], n_tests: int, timeout: float, backend: str,
                         limits: SandboxLimits | None) -> list[dict[str, Any]]:
    """Run the candidate process on `job`; its reply lines that carry the job's nonce, in order."""
    nonce = secrets.token_hex(16)
    deadline = min(5.0 + n_tests * (timeout + 0.2), 120.0)

    def is_done(line: str) -> bool:
        return nonce in line and '"done": true' in line

    lines = await backend_class(backend).run_program(GRADER_SOURCE, json.dumps({**job, "nonce": nonce}) + "\n",
                                                     timeout=deadline, stop=is_done, limits=limits or GRADING_LIMITS)
    replies = []
    for line in lines:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # garbage, or nesting deep enough to break the parser
            continue
        if isinstance(obj, dict) and obj.get("nonce") == nonce and isinstance(obj.get("i"), int):
            replies.append(obj)
    return replies


async def grade(code: str, spec: GradingSpec, tests: Sequence[TestCase], *, backend: str = "bwrap",
                limits: SandboxLimits | None = None) -> GradeReport:
    """Grade `code` on `tests` in a fresh sandbox of `backend` (a resolved name: bwrap, fallback or e2b)."""
    if not tests:
        return GradeReport()
    if spec.mode == "script":
        return await grade_asserts(code, spec, tests, backend=backend, limits=limits)
    job = {"mode": spec.mode, "code": code, "entry": spec.entry, "timeout": spec.per_test_timeout_s,
           "tests": [t.wire() for t in tests]}
    replies: dict[int, dict[str, Any]] = {}
    for obj in await _run_candidate(job, len(tests), spec.per_test_timeout_s, backend, limits):
        replies.setdefault(obj["i"], obj)  # the first line for a test counts; later ones cannot overwrite it
    return judge(spec, tests, replies)


# --- assert-style tests: record, answer, replay ---------------------------------------------------

def harness_job(spec: GradingSpec, tests: Sequence[TestCase]) -> dict[str, Any]:
    """What the trusted harness needs to run a task's asserts (dataset code only; never the submission)."""
    entries = list(spec.entries or (spec.entry,))
    aliases = {spec.candidate: spec.entry} if spec.candidate not in entries else {}
    return {"helpers": spec.helpers, "prelude": spec.prelude, "tests": [t.src or "" for t in tests],
            "entries": entries, "aliases": aliases, "timeout": spec.per_test_timeout_s}


def _answer(reply: Mapping[str, Any]) -> dict[str, Any]:
    """One call's answer from the candidate process, rebuilt on the host as well-formed plain data."""
    status = reply.get("status")
    if status == "ok":
        try:
            answer = {"status": "ok", "v": encode(decode(reply.get("v")))}
            if reply.get("a") is not None:
                answer["a"] = encode(decode(reply["a"]))
            return answer
        except (NotPlainData, RecursionError):
            return {"status": "error", "error": "the candidate process sent malformed data"}
    raised = reply.get("raised")
    return {"status": "timeout" if status == "timeout" else "error", "error": str(reply.get("error") or "")[:1000],
            "raised": raised if isinstance(raised, str) and raised.isidentifier() else None}


async def candidate_answers(code: str, spec: GradingSpec, calls: Sequence[Sequence[Any]], *, backend: str,
                            batch: Sequence[bool] | None = None,
                            limits: SandboxLimits | None = None) -> list[list[dict[str, Any] | None]]:
    """Per test, per recorded call: the candidate's answer, from a fresh sandboxed interpreter (None: no answer,
    because the process died, exited or the test's time ran out). Tests marked in `batch` (their arguments never
    depend on earlier answers) are sent a run at a time; the others one call at a time."""
    answers: list[list[dict[str, Any] | None]] = [[None] * len(c) for c in calls]
    batch = batch or [False] * len(calls)
    limits = replace(limits or GRADING_LIMITS, output_chars=CANDIDATE_OUTPUT_CHARS)
    sandbox = await backend_class(backend).create(limits=limits)
    stop_at = time.monotonic() + CANDIDATE_BUDGET_S

    async def ask(cell: str, timeout: float) -> tuple[dict[str, Any] | None, Any]:
        """The cell's returned JSON object (or an error as one; None when the process is gone), and its stdout."""
        execution = await sandbox.run_code(cell, timeout=max(timeout, 0.01))
        stdout = "".join(execution.logs.stdout)
        if execution.error is not None:
            if execution.error.name == "SandboxKilled":
                return None, stdout
            if execution.error.name == "TimeoutError":
                return {"status": "timeout", "error": f"timed out after {spec.per_test_timeout_s:g} s"}, stdout
            return {"status": "error", "error": f"{execution.error.name}: {execution.error.value}"[:1000]}, stdout
        try:
            reply = json.loads(ast.literal_eval(execution.text or ""))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            reply = None
        if not isinstance(reply, dict):
            return {"status": "error", "error": "the candidate process sent a malformed answer"}, stdout
        return reply, stdout

    async def run_of_tests(first: int, end: int, load: str = "") -> int | None:
        """Tests first..end-1 in one cell (after loading the submission, when `load` is given); the next test to
        ask about (None: the process is gone)."""
        job = {"tests": [calls[t] for t in range(first, end)], "cpu": spec.per_test_timeout_s,
               "limit": CANDIDATE_OUTPUT_CHARS // 2}
        budget = min((end - first + bool(load)) * spec.per_test_timeout_s, stop_at - time.monotonic())
        reply, stdout = await ask(f"{load}_agentgym_tests({json.dumps(job)!r})", budget)
        answered = -1
        for line in stdout.splitlines():  # answers as streamed; the first one for a call counts
            try:
                obj = json.loads(line)
                t, j, answer = first + obj["t"], obj["j"], obj["answer"]
            except (ValueError, RecursionError, TypeError, KeyError):
                continue  # the submission's own printing
            if (type(t) is int and type(j) is int and first <= t < end and 0 <= j < len(calls[t])
                    and isinstance(answer, dict) and answers[t][j] is None):
                answers[t][j] = _answer(answer)
                answered = max(answered, t)
        if reply is None:
            return None
        nxt = reply.get("next")
        if type(nxt) is int and 0 < nxt <= end - first:
            return first + nxt
        return max(answered + 1, first + 1)  # cut short (a timeout): go on after the last test it reached

    load = f"{CANDIDATE_SOURCE}\n_agentgym_load({code!r}, {spec.prelude!r})\n"
    try:
        if not (calls and batch[0]):  # else the load rides with the first run (a failed import answers every call)
            loaded, _ = await ask(load, spec.per_test_timeout_s)
            if loaded is None or loaded.get("status") != "ok":
                failed = _answer({"status": "error", "error": "the candidate process died while importing"}
                                 if loaded is None else {**loaded, "status": "error"})
                return [[failed] * len(c) for c in calls]
            load = ""
        t = 0
        while t < len(calls) and time.monotonic() < stop_at:
            if batch[t]:
                end = t
                while end < len(calls) and batch[end]:
                    end += 1
                nxt = await run_of_tests(t, end, load)
                load = ""
                if nxt is None or not sandbox.is_running():
                    return answers
                t = nxt
                continue
            deadline = min(time.monotonic() + spec.per_test_timeout_s, stop_at)
            for j, call in enumerate(calls[t]):
                reply, _ = await ask(f"_agentgym_call({json.dumps(call)!r})", deadline - time.monotonic())
                if reply is None or not sandbox.is_running():
                    return answers  # the process is gone: every call not yet answered stays unanswered
                answers[t][j] = answer = _answer(reply)
                if answer["status"] == "timeout" or time.monotonic() >= deadline:
                    break  # the test's time is up: its later calls stay unanswered
            t += 1
    except SandboxError:  # the submission broke the interpreter's channel: what it answered so far stands
        pass
    finally:
        await sandbox.kill()
    return answers


async def unsafe_tests(tasks: Sequence[Any], *, backend: str = "bwrap") -> dict[str, list[tuple[int, str]]]:
    """Validation of assert-style tasks: per task id, the hidden tests that cannot be graded outside the
    submission's process, with why (recording every task with its reference solution, as grading would)."""
    from agentgym.envs.code.suite import grading_spec, task_tests  # the suite imports this module

    out: dict[str, list[tuple[int, str]]] = {}
    for task in tasks:
        if task.data.get("mode") != "script":
            continue
        spec, tests = grading_spec(task), task_tests(task, "hidden")
        if spec.reference is None:
            out[task.id] = [(i, "the task has no reference solution") for i in range(len(tests))]
            continue
        recorded = await HARNESS.recording(backend, {**harness_job(spec, tests), "reference": spec.reference})
        bad = [(i, r.unsafe) for i, r in enumerate(recorded) if r.unsafe is not None]
        if bad:
            out[task.id] = bad
    return out


async def grade_asserts(code: str, spec: GradingSpec, tests: Sequence[TestCase], *, backend: str = "bwrap",
                        limits: SandboxLimits | None = None) -> GradeReport:
    """Assert-style tests: the harness records their calls with the reference solution (once per task), the
    candidate's interpreter answers those calls, and the harness replays the asserts on the answers."""
    job = harness_job(spec, tests)
    if spec.reference is None:
        unsafe = "cannot be graded safely: the task has no reference solution to record the tests' calls with"
        return GradeReport(tuple(TestResult(i, False, "unsafe", error=unsafe) for i in range(len(tests))))
    recorded = await HARNESS.recording(backend, {**job, "reference": spec.reference})
    safe = [i for i, r in enumerate(recorded) if r.unsafe is None]
    answers = await candidate_answers(code, spec, [recorded[i].calls for i in safe], backend=backend,
                                      batch=[recorded[i].batch for i in safe], limits=limits)
    verdicts: dict[int, dict[str, Any]] = {}
    if safe:
        try:
            replayed = await HARNESS.replay(backend, {**job, "tests": [job["tests"][i] for i in safe],
                                                      "calls": [recorded[i].calls for i in safe],
                                                      "answers": answers})
            verdicts = dict(zip(safe, replayed))
        except HarnessFailed as exc:
            verdicts = {i: {"passed": False, "error": str(exc)} for i in safe}
    results = []
    for i, r in enumerate(recorded):
        if r.unsafe is not None:
            results.append(TestResult(i, False, "unsafe", error=f"this test cannot be graded safely: {r.unsafe}"))
            continue
        verdict = verdicts.get(i) or {}
        passed = verdict.get("passed") is True
        results.append(TestResult(i, passed, "pass" if passed else "fail", error=verdict.get("error")))
    return GradeReport(tuple(results))
