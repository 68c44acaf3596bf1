"""The code environments: ``agentgym/code-v0`` (generated tasks) and ``agentgym/code-humaneval-v0`` (evaluation only).

Tools: ``run_python(code)`` runs code in the episode's persistent sandboxed interpreter (started on first use);
``run_tests(code)`` grades a complete solution on the public examples; ``submit_code(code)`` grades it on the
hidden tests in a fresh sandbox process and ends the episode. Tags ``<execute>`` and ``<submit>`` do the same.
Reward 1.0 when every hidden test passes; ``reward_components`` has ``frac_passed`` and ``info["test_results"]``
the per-test verdicts. ``info["sandbox"]`` names the sandbox backend in use. ``dataset=`` with ``path=`` serves a
HumanEval, MBPP or LiveCodeBench dataset on disk instead of the generated tasks (``datasets.py``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from agentgym.actions import random_tool_call
from agentgym.env import EnvSnapshot
from agentgym.envs.code.grading import GradeReport, grade
from agentgym.envs.code.harness import HARNESS
from agentgym.envs.code.prompting import SYSTEM_PROMPT, clean_code, format_execution, format_report, task_prompt
from agentgym.envs.code.sandbox.backends import backend_class, resolve_backend
from agentgym.envs.code.sandbox.base import Sandbox, SandboxLimits
from agentgym.envs.code.suite import (check_humaneval_options, check_source, graded_source, grading_spec,
                                      humaneval_suite_for, refuse_training, suite_for, task_tests)
from agentgym.errors import SplitLeakError, ToolError
from agentgym.messages import Action, Message
from agentgym.tasks import Task, TaskSuite
from agentgym.tool_calls import TagToolCalls
from agentgym.tool_env import Outcome, ToolEnv, ToolOutput
from agentgym.tools import tool

CODE_TAGS = TagToolCalls("code-tags", {"execute": ("run_python", "code"), "submit": ("submit_code", "code")},
                         response_tag="output")

_RANDOM_SNIPPETS = ("print(1)", "x = [i * i for i in range(10)]\nsum(x)", "import math\nmath.sqrt(2)",
                    "def f(*args):\n    return None", "pass", "1/0", "raise SystemExit", "for i in range(3): print(i)",
                    "def solve(data):\n    return data", "import sys\nprint(sys.stdin.read())", "return 42")


class CodeEnv(ToolEnv):
    """Python coding against hidden tests in a sandbox; see the module docstring for the protocol and reward."""

    env_id = "agentgym/code-v0"
    max_turns = 8
    tool_parsers = ("openai", "hermes", CODE_TAGS)
    tool_timeout_s = 180.0
    options_help = {
        "dataset": "generated (default) | humaneval | mbpp | livecodebench: which task suite to serve",
        "path": "a dataset file (.json, .jsonl, .gz) or a folder of them (with dataset=humaneval|mbpp|livecodebench)",
        "split": "task split to draw from: train | dev | test (default train; test for a dataset, and a dataset "
                 "without train tasks refuses train)",
        "max_turns": "turn budget (default 8)",
        "sandbox": "sandbox backend: auto | bwrap | fallback | e2b (default auto: e2b if E2B_API_KEY is set, "
                   "else bwrap, else the weaker fallback with a warning)",
        "cell_timeout_s": "wall clock of one run_python call in seconds (default 10)",
        "output_chars": "characters of tool output shown to the agent (default 4000)",
    }

    def __init__(self, *, dataset: str = "generated", path: str | None = None, split: str | None = None,
                 sandbox: str = "auto", cell_timeout_s: float = 10.0, output_chars: int = 4000,
                 limits: SandboxLimits | None = None, **kwargs: Any):
        check_source(dataset, path)
        super().__init__(split=split or ("train" if dataset == "generated" else "test"), **kwargs)
        self.dataset = dataset
        self.path = path
        self.backend = resolve_backend(sandbox)
        self.cell_timeout_s = cell_timeout_s
        self.output_chars = output_chars
        self.limits = limits or SandboxLimits()
        self._sandbox: Sandbox | None = None
        self.cells: list[str] = []         # run_python calls since the current interpreter started (for replay)
        self.last_grade: GradeReport | None = None

    # --- suite and episode ------------------------------------------------------------------------

    def load_suite(self) -> TaskSuite:
        return suite_for(dataset=self.dataset, path=self.path, split=self.split)

    def _choose_task(self, options: Any) -> Task:
        if self.dataset != "generated" and options and "split" in options:
            refuse_training(self.suite, self.dataset, self.path, options["split"])
        return super()._choose_task(options)

    async def begin_episode(self, task: Task) -> list[Message]:
        await self._drop_sandbox()
        self.cells = []
        self.last_grade = None
        return [{"role": "system", "content": SYSTEM_PROMPT.format(max_turns=self.max_turns)},
                {"role": "user", "content": task_prompt(task)}]

    async def end_episode(self) -> None:
        await self._drop_sandbox()

    async def aclose(self) -> None:
        await super().aclose()
        await self._drop_sandbox()
        await HARNESS.aclose()  # the shared test-harness workers: idle ones stop now, not after their idle timeout

    async def _drop_sandbox(self) -> None:
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            await sandbox.kill()

    async def _interpreter(self) -> Sandbox:
        if self._sandbox is None or not self._sandbox.is_running():
            await self._drop_sandbox()
            self._sandbox = await backend_class(self.backend).create(limits=self.limits)
        return self._sandbox

    def _info(self, **extra: Any) -> dict[str, Any]:
        info = super()._info(**extra)
        info["sandbox"] = self.backend
        if "outcome" in extra and self.last_grade is not None:
            info["test_results"] = [r.to_json() for r in self.last_grade.results]
        return info

    # --- tools ------------------------------------------------------------------------------------

    @tool("Run Python code in your persistent interpreter (variables, imports and files persist between calls) "
          "and see stdout, stderr, the last expression's value or the error.",
          params={"code": "Python source to run"})
    async def run_python(self, code: str) -> str:
        code = clean_code(code)
        note = "" if self._sandbox is not None or not self.cells else (
            "[note: the previous interpreter was killed, so this runs in a fresh one; earlier state is gone]\n")
        if note:
            self.cells = []
        sandbox = await self._interpreter()
        execution = await sandbox.run_code(code, timeout=self.cell_timeout_s)
        self.cells.append(code)
        if execution.error is not None and execution.error.name == "SandboxKilled":
            await self._drop_sandbox()
        return note + format_execution(execution, self.output_chars)

    @tool("Run your complete solution against the public examples of the task (in a fresh process) and see "
          "which pass.", params={"code": "the complete solution"})
    async def run_tests(self, code: str) -> str:
        assert self.task is not None
        public = task_tests(self.task, "public")
        if not public:
            raise ToolError("this task has no public tests; its statement's examples are all there is")
        report = await grade(graded_source(self.task, clean_code(code)), grading_spec(self.task), public,
                             backend=self.backend)
        return format_report(report, public, self.output_chars)

    @tool("Submit your complete solution: it is graded on hidden tests and the episode ends.",
          params={"code": "the complete solution"}, terminal=True)
    async def submit_code(self, code: str) -> ToolOutput:
        assert self.task is not None
        hidden = task_tests(self.task, "hidden")
        report = await grade(graded_source(self.task, clean_code(code)), grading_spec(self.task), hidden,
                             backend=self.backend)
        self.last_grade = report
        verdict = "All hidden tests passed." if report.all_passed else "Not all hidden tests passed."
        text = f"{verdict}\n{format_report(report, None, self.output_chars)}"
        return ToolOutput(text, outcome=Outcome(1.0 if report.all_passed else 0.0, report.all_passed,
                                                {"frac_passed": report.frac_passed, "tests_passed": float(report.passed),
                                                 "tests_total": float(report.total)}))

    # --- capabilities -----------------------------------------------------------------------------

    async def oracle_action(self) -> Action | None:
        """Submit the reference solution (None for a dataset problem that ships no solution)."""
        if self.task is None or self.task.data.get("reference") is None:
            return None
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": "oracle", "type": "function",
            "function": {"name": "submit_code", "arguments": json.dumps({"code": self.task.data["reference"]})}}]}

    async def snapshot(self) -> EnvSnapshot:
        """Counters plus the cells run in the current interpreter; ``restore`` replays them in a fresh sandbox."""
        assert self.task is not None, "snapshot() needs a started episode"
        return EnvSnapshot(self.env_id, self.task.id, {"base": self._base_state(), "cells": list(self.cells),
                                                       "live": self._sandbox is not None})

    async def restore(self, snapshot: EnvSnapshot) -> None:
        if snapshot.env_id != self.env_id:
            raise ValueError(f"snapshot of {snapshot.env_id} cannot restore {self.env_id}")
        await self.aload_suite()
        await self._drop_sandbox()
        self._load_base_state(snapshot.payload["base"])
        self.last_grade = None
        self.cells = list(snapshot.payload["cells"])
        if snapshot.payload["live"]:
            sandbox = await self._interpreter()
            for code in self.cells:  # replay: same code, same order, same deterministic interpreter (hash seed 0)
                await sandbox.run_code(code, timeout=self.cell_timeout_s)

    def sample_action(self, rng: np.random.Generator) -> Action:
        """A random snippet run or submitted, in a random tool-call format."""
        code = _RANDOM_SNIPPETS[int(rng.integers(len(_RANDOM_SNIPPETS)))]
        name = "submit_code" if rng.random() < 0.4 else "run_python"
        return random_tool_call(rng, name, {"code": code}, tag="submit" if name == "submit_code" else "execute")


class HumanEvalEnv(CodeEnv):
    """HumanEval's 164 problems, graded in the sandbox. Evaluation only: the suite has just a ``test`` split and
    asking for any other split raises SplitLeakError (public data; assume it is in every model's training set)."""

    env_id = "agentgym/code-humaneval-v0"
    options_help = {"split": "test, the only split (evaluation-only)",
                    **{k: v for k, v in CodeEnv.options_help.items() if k not in ("dataset", "path", "split")}}

    def __init__(self, *, split: str = "test", **kwargs: Any):
        check_humaneval_options(kwargs.get("dataset", "generated"), kwargs.get("path"), split)
        super().__init__(split=split, **kwargs)

    def load_suite(self) -> TaskSuite:
        return humaneval_suite_for()

    def _choose_task(self, options: Any) -> Task:
        if options and options.get("split", "test") != "test":
            raise SplitLeakError(f"{self.env_id} is evaluation-only; only the test split exists")
        return super()._choose_task(options)
