"""Grading a submission: a fresh sandbox process runs the harness (``_grader.py``); the host decides each verdict.

For generated tasks the harness only reports what the submission returned or printed; expected outputs stay on
the host and are compared here (with a float tolerance where the task asks for one), so a submission can
neither read nor forge them. HumanEval's asserts must run next to the candidate: their pass/fail lines carry a
per-job nonce, and any test without its line counts as failed. The exit status is never looked at.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentgym.envs.code.sandbox.backends import backend_class
from agentgym.envs.code.sandbox.base import SandboxLimits

GRADER_SOURCE = Path(__file__).with_name("_grader.py").read_text()
GRADING_LIMITS = SandboxLimits(cpu_seconds=60)


@dataclass(frozen=True)
class GradingSpec:
    """How a task's tests are run: ``call`` (entry(*args)), ``stdio`` (stdin -> stdout) or ``script`` (asserts)."""

    mode: str
    entry: str = ""
    float_tol: float | None = None       # relative/absolute tolerance for floats, None = exact
    per_test_timeout_s: float = 2.0
    prelude: str = ""                    # script mode: code run after the submission (HumanEval's METADATA, imports)
    candidate: str = "candidate"         # script mode: the name the tests call the entry function by


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
    status: str                          # pass | wrong_answer | error | timeout | no_result
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
    """Turn the harness's per-test replies into verdicts (missing reply = failed)."""
    results = []
    for i, test in enumerate(tests):
        reply = replies.get(i)
        if reply is None:
            results.append(TestResult(i, False, "no_result", error="no result: the process died or ran out of time"))
            continue
        status = reply.get("status")
        if spec.mode == "script":
            ok = status == "pass"
            results.append(TestResult(i, ok, "pass" if ok else "error", error=reply.get("error")))
        elif status != "ok":
            results.append(TestResult(i, False, "timeout" if status == "timeout" else "error",
                                      error=reply.get("error")))
        else:
            got = reply.get("out")
            ok = (text_matches(str(got), str(test.expected), spec.float_tol) if spec.mode == "stdio"
                  else values_match(got, test.expected, spec.float_tol))
            results.append(TestResult(i, ok, "pass" if ok else "wrong_answer", got=got))
    return GradeReport(tuple(results))


# --- running the harness -------------------------------------------------------------------------

async def grade(code: str, spec: GradingSpec, tests: Sequence[TestCase], *, backend: str = "bwrap",
                limits: SandboxLimits | None = None) -> GradeReport:
    """Grade `code` on `tests` in a fresh sandbox of `backend` (a resolved name: bwrap, fallback or e2b)."""
    if not tests:
        return GradeReport()
    nonce = secrets.token_hex(16)
    job = {"nonce": nonce, "mode": spec.mode, "code": code, "entry": spec.entry, "timeout": spec.per_test_timeout_s,
           "prelude": spec.prelude, "candidate": spec.candidate, "tests": [t.wire() for t in tests]}
    deadline = min(5.0 + len(tests) * (spec.per_test_timeout_s + 0.2), 120.0)

    def is_done(line: str) -> bool:
        return nonce in line and '"done": true' in line

    lines = await backend_class(backend).run_program(GRADER_SOURCE, json.dumps(job) + "\n", timeout=deadline,
                                                     stop=is_done, limits=limits or GRADING_LIMITS)
    replies: dict[int, dict[str, Any]] = {}
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict) or obj.get("nonce") != nonce or not isinstance(obj.get("i"), int):
            continue
        replies.setdefault(obj["i"], obj)  # the first line for a test counts; later ones cannot overwrite it
    return judge(spec, tests, replies)
