"""The code task suites, built once per process (thread-safe): generated ``code-v0``, HumanEval, user datasets.

code-v0 splits: OOD test = the ``grids`` and ``formatting`` families, OOD dev = ``geometry``; the rest is a hash
split over the template (every variant of a template shares a near-duplicate group, so two tasks that differ
only in a constant never straddle train and test). With 21 templates outside the OOD families, the IID shares
are 30% test / 10% dev of the hash space, which lands 4 templates in test and 1 in dev. HumanEval is
evaluation-only: every task is in ``test``. User datasets keep their own splits (``datasets.py``).
"""

from __future__ import annotations

import copy
import json
import random
import threading
from pathlib import Path
from typing import Any

from agentgym.envs.code.families import TEMPLATES, Template, reference_function, reference_source
from agentgym.envs.code.grading import GradingSpec, TestCase
from agentgym.errors import DatasetError, SplitLeakError
from agentgym.jsonutil import sha256_hex, to_jsonable
from agentgym.tasks import SplitRule, Task, TaskSuite

SUITE_NAME = "code-v0"
SUITE_VERSION = "v0"
HUMANEVAL_SUITE = "code-humaneval-v0"
MANIFESTS = Path(__file__).with_name("manifests")
SPLIT_RULE = SplitRule(ood_test_families=frozenset({"grids", "formatting"}), ood_dev_families=frozenset({"geometry"}),
                       iid_test_percent=30, iid_dev_percent=10)
PUBLIC_TESTS = 3
RANDOM_HIDDEN_TESTS = 12


def grading_spec(task: Task) -> GradingSpec:
    """How a task of either suite is graded."""
    d = task.data
    return GradingSpec(mode=d["mode"], entry=d["entry"], float_tol=d.get("float_tol"),
                       per_test_timeout_s=d.get("per_test_timeout_s", 2.0), prelude=d.get("prelude", ""),
                       candidate=d.get("candidate", "candidate"), reference=d.get("reference"),
                       helpers=d.get("helpers", ""), entries=tuple(d.get("entries", ())))


def graded_source(task: Task, code: str) -> str:
    """The program that is graded: the submission between the task's prefix and suffix (LiveCodeBench's imports
    and its ``Solution().func_name`` adapter; empty for other tasks). ``from __future__`` lines stay first."""
    prefix, lines = task.data.get("prefix", ""), code.splitlines(keepends=True)
    future = [line for line in lines if line.startswith("from __future__")]
    if prefix and future:
        prefix = "".join(line.rstrip("\n") + "\n" for line in future) + prefix
        code = "".join(line for line in lines if not line.startswith("from __future__"))
    return prefix + code + task.data.get("suffix", "")


def task_tests(task: Task, which: str) -> list[TestCase]:
    """The task's ``public`` or ``hidden`` tests."""
    return [TestCase.from_json(t) for t in task.data[which]]


def _cases(template: Template, params: dict[str, Any], inputs: list[Any]) -> list[dict[str, Any]]:
    fn = reference_function(template, params)
    out, seen = [], set()
    for value in inputs:
        key = json.dumps(value, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        if template.mode == "stdio":
            out.append({"stdin": value, "expected": fn(value)})
        else:
            expected = json.loads(json.dumps(fn(*copy.deepcopy(value))))  # the wire's JSON types
            out.append({"args": value, "expected": expected})
    return out


def generated_task(template: Template, variant: int) -> Task:
    """One (template, variant) task with its public and hidden tests."""
    constants = template.variants[variant]
    params = {"variant": variant, "constants": to_jsonable(dict(constants))}
    task = Task(kind="code", family=template.family, template=template.name, params=params)
    rng = random.Random(int(sha256_hex(task.id)[:12], 16))
    public = [template.gen(rng, constants) for _ in range(PUBLIC_TESTS)]
    hidden = [template.gen(rng, constants) for _ in range(RANDOM_HIDDEN_TESTS)] + list(template.edges(constants))
    data = {"question": template.render(template.spec, constants), "signature": template.signature,
            "entry": template.entry, "mode": template.mode, "float_tol": template.float_tol,
            "public": _cases(template, constants, public), "hidden": _cases(template, constants, hidden),
            "reference": reference_source(template, constants)}
    return Task(kind="code", family=template.family, template=template.name, params=params, data=data,
                group=f"{template.family}/{template.name}", difficulty=template.difficulty)


_LOCK = threading.Lock()
_SUITES: dict[str, TaskSuite] = {}


def load_code_suite() -> TaskSuite:
    """The generated suite (cached process-wide)."""
    with _LOCK:
        if SUITE_NAME not in _SUITES:
            tasks = [generated_task(t, v) for t in TEMPLATES for v in range(len(t.variants))]
            _SUITES[SUITE_NAME] = TaskSuite(SUITE_NAME, SUITE_VERSION, tasks, SPLIT_RULE)
        return _SUITES[SUITE_NAME]


def load_dataset_suite(dataset: str, path: str | Path | None) -> TaskSuite:
    """A user dataset ("humaneval", "mbpp", "livecodebench") at `path`, built once per process per dataset and path."""
    from agentgym.envs.code.datasets import load_dataset

    if path is None:
        raise DatasetError(f"dataset {dataset!r} needs path=FILE_OR_DIR pointing at the files on disk")
    key = f"{dataset}:{Path(path).resolve()}"
    with _LOCK:
        if key not in _SUITES:
            _SUITES[key] = load_dataset(dataset, path)
        return _SUITES[key]


def load_humaneval_suite() -> TaskSuite:
    """HumanEval's 164 problems, all in the test split (cached process-wide)."""
    from agentgym.envs.code.humaneval import HUMANEVAL_RULE, humaneval_tasks

    with _LOCK:
        if HUMANEVAL_SUITE not in _SUITES:
            _SUITES[HUMANEVAL_SUITE] = TaskSuite(HUMANEVAL_SUITE, SUITE_VERSION, humaneval_tasks(), HUMANEVAL_RULE)
        return _SUITES[HUMANEVAL_SUITE]


def check_source(dataset: str, path: str | Path | None) -> None:
    """Refuse a path for the generated tasks (they need no files)."""
    if dataset == "generated" and path is not None:
        raise DatasetError("path= needs dataset=humaneval|mbpp|livecodebench (the generated tasks need no files)")


def refuse_training(suite: TaskSuite, dataset: str, path: str | Path | None, split: str) -> None:
    """Raise SplitLeakError when asked to train on a dataset that has no train split (evaluation-only data)."""
    if split == "train" and not suite.tasks("train"):
        raise SplitLeakError(f"the {dataset} dataset at {path} has no train split, so it is "
                             "evaluation-only and must never be trained on; give its files a train split")


def suite_for(*, dataset: str = "generated", path: str | Path | None = None, split: str | None = None,
              **_options: Any) -> TaskSuite:
    """The suite ``CodeEnv(dataset=..., path=..., split=...)`` serves: the registry's loader and the env's."""
    check_source(dataset, path)
    if dataset == "generated":
        return load_code_suite()
    suite = load_dataset_suite(dataset, path)
    refuse_training(suite, dataset, path, split or "test")
    return suite


def check_humaneval_options(dataset: str, path: str | Path | None, split: str) -> None:
    """HumanEval is the installed copy and evaluation-only: no dataset on disk, no split but test."""
    if dataset != "generated" or path is not None:
        raise DatasetError(f"agentgym/{HUMANEVAL_SUITE} serves the installed HumanEval; for a dataset on disk use "
                           "agentgym/code-v0 with dataset= and path=")
    if split != "test":
        raise SplitLeakError(f"agentgym/{HUMANEVAL_SUITE} is evaluation-only: it has no {split!r} split and must "
                             "never be trained on; use agentgym/code-v0 for training")


def humaneval_suite_for(*, dataset: str = "generated", path: str | Path | None = None, split: str = "test",
                        **_options: Any) -> TaskSuite:
    """The suite ``HumanEvalEnv`` serves: the registry's loader and the env's."""
    check_humaneval_options(dataset, path, split)
    return load_humaneval_suite()
