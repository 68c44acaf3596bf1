"""User code datasets on disk (HumanEval, MBPP and LiveCodeBench layouts) as task suites: same tools and reward.

Nothing is downloaded: the user points at a file or a folder of files (JSON lists or JSON lines, optionally
gzipped). Each loader validates what it reads and raises one ``DatasetError`` naming the file, the entry and the
field that is wrong. Splits are the dataset's own: an entry's ``split`` field, else a split word in its file's
name (``train``, ``dev``/``val``/``validation``, ``test``; MBPP's ``prompt`` split counts as train), else
``test``. A dataset without train tasks is evaluation-only (the env refuses to train on it). Grading:
  - humaneval: ``check(candidate)`` is split into one test per assert, as for the installed HumanEval;
  - mbpp: each assert of ``test_list`` is one test, after ``test_setup_code`` (``challenge_test_list`` is
    validated but not graded, as in the standard MBPP protocol); the function name comes from the asserts;
  - both run their asserts in the trusted harness, replaying calls recorded with the reference solution
    (``harness.py``): a HumanEval problem without ``canonical_solution`` cannot be graded that way, so it is left
    out with a warning, and a test the harness cannot replay safely (arguments or results that are not plain
    data, a reference that fails it) is failed for every submission and named in its ``unsafe`` verdict;
  - livecodebench: public + private tests, call-based (one JSON value per input line, one per argument;
    ``Solution().func_name`` or a top-level ``func_name``) or stdin/stdout; outputs are compared on the host,
    with a 1e-6 float tolerance only where the expected outputs hold floats. The oracle exists only where an
    entry carries a ``solution``.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import pickle
import re
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentgym.envs.code.humaneval import PER_TEST_TIMEOUT_S as HUMANEVAL_TIMEOUT_S
from agentgym.envs.code.humaneval import split_check
from agentgym.datafiles import SPLIT_WORDS, data_files, file_split, read_entries, warn_near_duplicates
from agentgym.errors import DatasetError
from agentgym.tasks import SplitRule, Task, TaskSuite

MBPP_TIMEOUT_S = 3.0
LCB_TIMEOUT_S = 6.0      # LiveCodeBench's per-test default
LCB_FLOAT_TOL = 1e-6
# What LiveCodeBench prepends to call-based solutions (its starter code uses typing names such as List).
LCB_CALL_PRELUDE = ("from typing import *\nfrom collections import *\nfrom functools import *\n"
                    "from itertools import *\nfrom heapq import *\nfrom bisect import *\nimport math\n")


def _text(item: dict[str, Any], name: str, where: str, *, required: bool = True, empty: bool = False) -> str | None:
    value = item.get(name)
    if value is None:
        if required:
            raise DatasetError(f"{where}: missing field '{name}'")
        return None
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise DatasetError(f"{where}: field '{name}' must be a {'' if empty else 'non-empty '}string")
    return value


def _ident(item: dict[str, Any], names: tuple[str, ...], where: str) -> str:
    for name in names:
        value = item.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value)
        if value is not None:
            raise DatasetError(f"{where}: field '{name}' must be a non-empty string or an integer")
    raise DatasetError(f"{where}: missing field '{names[0]}'")


def _parse(src: str, where: str, field: str) -> ast.Module:
    try:
        return ast.parse(src)
    except SyntaxError as exc:
        raise DatasetError(f"{where}: field '{field}' is not valid Python ({exc.msg}, line {exc.lineno})") from None


# --- HumanEval -----------------------------------------------------------------------------------

def humaneval_task(item: dict[str, Any], where: str) -> Task:
    """A HumanEval-style entry (task_id, prompt, entry_point, test, canonical_solution): the installed HumanEval's
    shape and grading, so the official file gives the same task ids as ``agentgym/code-humaneval-v0``."""
    task_id = _text(item, "task_id", where)
    prompt, entry = _text(item, "prompt", where), _text(item, "entry_point", where)
    test = _text(item, "test", where)
    solution = _text(item, "canonical_solution", where, required=False, empty=True)
    _parse(test, where, "test")
    prelude, candidate, tests = split_check(test)
    if not tests:
        raise DatasetError(f"{where}: field 'test' holds no assert inside a check(candidate) function")
    data = {"question": prompt, "entry": entry, "mode": "script", "signature": "", "prelude": prelude,
            "candidate": candidate, "helpers": prompt, "entries": [entry], "per_test_timeout_s": HUMANEVAL_TIMEOUT_S,
            "public": [], "hidden": [{"src": src} for src in tests],
            "reference": prompt + solution if solution is not None else None}
    return Task(kind="code", family="humaneval", template=task_id, params={"task_id": task_id}, data=data,
                group=task_id)


# --- MBPP ----------------------------------------------------------------------------------------

def _statements(item: dict[str, Any], name: str, where: str, *, required: bool) -> list[str]:
    """A list field of Python statements (asserts, imports), each checked to parse."""
    value = item.get(name)
    if value is None:
        if required:
            raise DatasetError(f"{where}: missing field '{name}'")
        return []
    if not isinstance(value, list) or (required and not value):
        raise DatasetError(f"{where}: field '{name}' must be a {'non-empty ' if required else ''}list of Python "
                           "statements")
    for j, src in enumerate(value):
        if not isinstance(src, str) or not src.strip():
            raise DatasetError(f"{where}: field '{name}[{j}]' must be a non-empty string")
        _parse(src, where, f"{name}[{j}]")
    return [src.strip() for src in value]


def mbpp_entries(code: str, tests: list[str], where: str) -> list[str]:
    """The functions the asserts test: the names they call that `code` defines at top level, first called first."""
    defined = set()
    for node in _parse(code, where, "code").body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
    called: list[str] = []
    for src in tests:
        for node in ast.walk(ast.parse(src)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defined
                    and node.func.id not in called):
                called.append(node.func.id)
    if not called:
        raise DatasetError(f"{where}: field 'test_list': the asserts call no function that field 'code' defines")
    return called


def mbpp_task(item: dict[str, Any], where: str) -> Task:
    """An MBPP-style entry (task_id, text, code, test_list, optional test_setup_code and challenge_test_list;
    sanitized MBPP's prompt and test_imports are read as well)."""
    task_id = _ident(item, ("task_id",), where)
    text = _text(item, "text" if "prompt" not in item else "prompt", where)  # sanitized MBPP calls it prompt
    code = _text(item, "code", where)
    tests = _statements(item, "test_list", where, required=True)
    _statements(item, "challenge_test_list", where, required=False)
    imports = _statements(item, "test_imports", where, required=False)  # sanitized MBPP: imports the asserts need
    setup = "\n".join(imports + [_text(item, "test_setup_code", where, required=False, empty=True) or ""]).strip()
    _parse(setup, where, "test_setup_code")
    entries = mbpp_entries(code, tests, where)
    entry = entries[0]
    # EvalPlus's MBPP+ prompt: the statement and one assert (which names the function and shows its use)
    question = f'"""\n{text.strip()}\n{tests[0]}\n"""\n'
    data = {"question": question, "entry": entry, "mode": "script", "signature": "", "prelude": setup,
            "candidate": entry, "entries": entries, "per_test_timeout_s": MBPP_TIMEOUT_S, "public": [],
            "hidden": [{"src": src} for src in tests], "reference": code}
    return Task(kind="code", family="mbpp", template=task_id, params={"task_id": task_id}, data=data, group=task_id)


# --- LiveCodeBench -------------------------------------------------------------------------------

class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any class or function reference is refused, so nothing can run."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _decode(value: Any, where: str, field: str) -> Any:
    """A list/object as is, a JSON string, or LiveCodeBench's base64(zlib(pickle(json))) test encoding."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        raw = _PlainUnpickler(io.BytesIO(zlib.decompress(base64.b64decode(value, validate=True)))).load()
        return json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except Exception:  # noqa: BLE001 - any failure means the field is unreadable, reported below
        raise DatasetError(f"{where}: field '{field}' is neither a list, JSON, nor LiveCodeBench's compressed "
                           "test encoding") from None


def _lcb_cases(item: dict[str, Any], name: str, where: str) -> list[dict[str, Any]]:
    value = _decode(item.get(name, []), where, name)
    if not isinstance(value, list):
        raise DatasetError(f"{where}: field '{name}' must be a list of tests, got {type(value).__name__}")
    for j, case in enumerate(value):
        if not (isinstance(case, dict) and isinstance(case.get("input"), str) and isinstance(case.get("output"), str)):
            raise DatasetError(f"{where}: field '{name}[{j}]' must be an object with string 'input' and 'output'")
        if case.get("testtype", "stdin") not in ("functional", "stdin"):
            raise DatasetError(f"{where}: field '{name}[{j}].testtype' must be 'functional' or 'stdin', "
                               f"got {case.get('testtype')!r}")
    return value


def _functional_case(case: dict[str, Any], where: str, field: str) -> dict[str, Any]:
    try:
        args = [json.loads(line) for line in case["input"].strip().split("\n")] if case["input"].strip() else []
    except ValueError as exc:
        raise DatasetError(f"{where}: field '{field}.input' must hold one JSON value per line ({exc})") from None
    try:
        expected = json.loads(case["output"])
    except ValueError as exc:
        raise DatasetError(f"{where}: field '{field}.output' is not JSON ({exc})") from None
    return {"args": args, "expected": expected}


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


_FLOAT_TOKEN = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)$")


def livecodebench_task(item: dict[str, Any], where: str) -> Task:
    """A LiveCodeBench-style entry (question_content, public/private_test_cases, metadata.func_name for
    functional tests, optional question_id, question_title, starter_code, platform, difficulty, solution)."""
    question_id = _ident(item, ("question_id", "task_id", "question_title"), where)
    content = _text(item, "question_content", where)
    starter = _text(item, "starter_code", where, required=False, empty=True) or ""
    solution = _text(item, "solution", where, required=False)
    public, private = _lcb_cases(item, "public_test_cases", where), _lcb_cases(item, "private_test_cases", where)
    cases = [("public_test_cases", j, c) for j, c in enumerate(public)] + \
            [("private_test_cases", j, c) for j, c in enumerate(private)]
    if not cases:
        raise DatasetError(f"{where}: no tests: fields 'public_test_cases' and 'private_test_cases' are both empty")
    kinds = {c.get("testtype", "stdin") for _, _, c in cases}
    if len(kinds) > 1:
        raise DatasetError(f"{where}: field 'testtype' mixes 'functional' and 'stdin' tests in one problem")
    metadata = _decode(item.get("metadata") or {}, where, "metadata")
    if not isinstance(metadata, dict):
        raise DatasetError(f"{where}: field 'metadata' must be an object")
    if kinds == {"functional"}:
        func = metadata.get("func_name")
        if not isinstance(func, str) or not func.isidentifier():
            raise DatasetError(f"{where}: field 'metadata.func_name' must name the function that functional "
                               "tests call")
        tests = [_functional_case(c, where, f"{name}[{j}]") for name, j, c in cases]
        float_tol = LCB_FLOAT_TOL if any(_has_float(t["expected"]) for t in tests) else None
        signature = starter.rstrip().removesuffix(":") if starter.strip() else f"def {func}(...)"
        # LiveCodeBench calls Solution().func_name(*args); a top-level function of that name works as well
        suffix = (f'\n\nif "Solution" in globals() and "{func}" not in globals():\n'
                  f"    def {func}(*args):\n        return Solution().{func}(*args)\n")
        data = {"mode": "call", "entry": func, "signature": signature, "prefix": LCB_CALL_PRELUDE, "suffix": suffix}
    else:
        tests = [{"stdin": c["input"], "expected": c["output"]} for _, _, c in cases]
        floats = any(_FLOAT_TOKEN.match(tok) for t in tests for tok in t["expected"].split())
        float_tol = LCB_FLOAT_TOL if floats else None
        data = {"mode": "stdio", "entry": "", "signature": ""}
    platform = item.get("platform")
    family = platform.strip().lower() if isinstance(platform, str) and platform.strip() else "livecodebench"
    difficulty = item.get("difficulty") if isinstance(item.get("difficulty"), str) else None
    data.update({"question": content.strip(), "float_tol": float_tol, "per_test_timeout_s": LCB_TIMEOUT_S,
                 "public": tests[:len(public)], "hidden": tests, "reference": solution})
    return Task(kind="code", family=family, template=question_id, params={"question_id": question_id}, data=data,
                group=question_id, difficulty=difficulty)


# --- suites --------------------------------------------------------------------------------------

LOADERS: dict[str, Callable[[dict[str, Any], str], Task]] = {
    "humaneval": humaneval_task, "mbpp": mbpp_task, "livecodebench": livecodebench_task}


def load_dataset(dataset: str, path: str | Path) -> TaskSuite:
    """The tasks of a ``humaneval``, ``mbpp`` or ``livecodebench`` dataset at `path`, in their own splits."""
    if dataset not in LOADERS:
        raise DatasetError(f"unknown code dataset {dataset!r}; expected 'generated' or one of {sorted(LOADERS)}")
    make_task = LOADERS[dataset]
    tasks: dict[str, Task] = {}
    splits: dict[str, str] = {}
    origin: dict[str, str] = {}
    for file in data_files(path):
        default = file_split(file) or "test"
        for where, item in read_entries(file):
            if not isinstance(item, dict):
                raise DatasetError(f"{where}: expected an object, got {type(item).__name__}")
            split = item.get("split", default)
            if split not in SPLIT_WORDS:
                raise DatasetError(f"{where}: field 'split' must be one of {sorted(SPLIT_WORDS)}, got {split!r}")
            task = make_task(item, where)
            if task.id in tasks:  # the same problem twice counts once, in its first split; a clash is an error
                if tasks[task.id].data != task.data:
                    raise DatasetError(f"{where}: id {task.template!r} repeats {origin[task.id]} with different "
                                       "content")
                continue
            tasks[task.id], splits[task.id], origin[task.id] = task, SPLIT_WORDS[split], where
    ungradable = [t.id for t in tasks.values() if t.data["mode"] == "script" and t.data.get("reference") is None]
    if ungradable:  # asserts are replayed from calls recorded with the reference: without one, no safe grading
        warnings.warn(f"{path}: {len(ungradable)} {dataset} problem(s) have no reference solution "
                      f"(e.g. {origin[ungradable[0]]}), so their asserts cannot be graded outside the submission's "
                      "process: they are left out", stacklevel=2)
        for task_id in ungradable:
            del tasks[task_id], splits[task_id]
    if not tasks:
        raise DatasetError(f"{path}: the {dataset} dataset has no problems"
                           + (" that can be graded safely (none has a reference solution)" if ungradable else ""))
    suite = TaskSuite(f"code-{dataset}", "user", tasks.values(), SplitRule(), fixed_splits=splits)
    warn_near_duplicates(suite, path, label=lambda t: t.template)
    return suite


