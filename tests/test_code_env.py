"""The code environments end to end: gymnasium's checker, the protocol (tools and tags, truncation, budget),
oracle and random floors through run_benchmark, fuzzing, snapshot/restore, splits and manifests, HumanEval's
evaluation-only rule, and 1000 sequential episodes leaving nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from env_fuzz import assert_step_answers
import agentgym
from agentgym.benchmark import BenchConfig, run_benchmark
from agentgym.envs.code.sandbox import local
from agentgym.envs.code.suite import MANIFESTS, load_code_suite, load_humaneval_suite
from agentgym.errors import SplitLeakError
from agentgym.policies.oracle import OraclePolicy
from agentgym.policies.random_policy import RandomPolicy
from agentgym.tasks import near_duplicates

pytestmark = pytest.mark.skipif(not Path(local.BWRAP).exists(), reason="bubblewrap is not installed")


def call(name: str, code) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": name, "arguments": json.dumps({"code": code})}}]}


async def started(split: str = "test", seed: int = 0, env_id: str = "agentgym/code-v0", **kw):
    env = agentgym.make(env_id, split=split, **kw)
    await env.areset(seed=seed)
    return env


@pytest.mark.parametrize("env_id", ["agentgym/code-v0", "agentgym/code-humaneval-v0"])
def test_gymnasium_make_passes_the_env_checker(env_id):
    env = gymnasium.make(env_id)
    check_env(env.unwrapped)
    env.close()


async def test_first_observation_states_the_task_signature_examples_and_budget():
    env = await started(seed=3)
    system, user = (await env.areset(seed=3))[0]["messages"]
    assert "run_python" in system["content"] and "<execute>" in system["content"] and "8 turns" in system["content"]
    task = env.task
    assert task.data["question"] in user["content"]
    if task.data["mode"] == "call":
        assert task.data["signature"] in user["content"] and f"{task.data['entry']}(" in user["content"]
    assert "Examples:" in user["content"]
    for hidden in task.data["hidden"][:3]:  # hidden inputs never appear in the prompt
        assert json.dumps(hidden.get("args", hidden.get("stdin"))) not in user["content"]
    await env.aclose()


async def test_tools_tags_persistence_public_tests_and_submit_reward():
    env = await started(seed=1)
    obs, reward, term, trunc, info = await env.astep(call("run_python", "x = 20"))
    assert obs["messages"][0]["role"] == "tool" and (reward, term, trunc) == (0.0, False, False)
    obs, *_ = await env.astep("<think>check state</think><execute>\n```python\nprint(x * 2)\nx + 1\n```\n</execute>")
    text = obs["messages"][0]["content"]
    assert text.startswith("<output>stdout:\n40\nOut[2]: 21</output>") and "You have 6 turns left." in text
    obs, *_ = await env.astep(call("run_tests", env.task.data["reference"]))
    assert obs["messages"][0]["content"].startswith("3/3 tests passed.")
    obs, *_ = await env.astep(call("run_tests", "def nothing(): pass"))
    assert "0/3 tests passed." in obs["messages"][0]["content"] and "expected" in obs["messages"][0]["content"]
    obs, reward, term, trunc, info = await env.astep(f"<submit>{env.task.data['reference']}</submit>")
    assert (reward, term, trunc) == (1.0, True, False) and info["outcome"]["success"]
    assert info["reward_components"]["frac_passed"] == 1.0 and info["sandbox"] == "bwrap"
    assert len(info["test_results"]) == info["reward_components"]["tests_total"] >= 12
    assert all(r["passed"] for r in info["test_results"])
    await env.aclose()


async def test_wrong_submission_scores_zero_with_partial_credit_and_hidden_inputs_stay_hidden():
    env = await started(seed=2)
    obs, reward, term, _, info = await env.astep(call("submit_code", "def f():\n    return None\n"))
    assert term and reward == 0.0 and not info["outcome"]["success"]
    assert info["reward_components"]["frac_passed"] < 1.0 and not all(r["passed"] for r in info["test_results"])
    text = obs["messages"][0]["content"]
    assert "Not all hidden tests passed." in text and "expected" not in text


async def test_long_output_is_truncated_with_a_note_and_the_budget_truncates():
    env = await started(max_turns=2, output_chars=500)
    obs, *_ = await env.astep(call("run_python", "print('y' * 5000)"))
    assert "[output truncated: " in obs["messages"][0]["content"] and len(obs["messages"][0]["content"]) < 800
    obs, reward, term, trunc, info = await env.astep(call("run_python", "1"))
    assert trunc and not term and reward == 0.0 and info["termination"] == "turn_budget"
    await env.aclose()


async def test_oracle_passes_every_held_out_task_and_random_scores_near_zero(tmp_path):
    suite = load_code_suite()
    n_test = len(suite.tasks("test"))
    oracle = await run_benchmark(BenchConfig("agentgym/code-v0", "oracle", "test", concurrency=4),
                                 OraclePolicy(), tmp_path / "oracle")
    assert oracle["episodes"] == n_test >= 40 and oracle["success_rate"] == 1.0 and oracle["infra_errors"] == 0
    dev = await run_benchmark(BenchConfig("agentgym/code-v0", "oracle", "dev", concurrency=4),
                              OraclePolicy(), tmp_path / "oracle-dev")
    assert dev["success_rate"] == 1.0 and dev["infra_errors"] == 0
    rand = await run_benchmark(BenchConfig("agentgym/code-v0", "random", "test", concurrency=4),
                               RandomPolicy(seed=0), tmp_path / "random")
    assert rand["episodes"] == n_test and rand["success_rate"] <= 0.05 and rand["infra_errors"] == 0


async def test_humaneval_oracle_through_the_benchmark_and_it_refuses_training(tmp_path):
    result = await run_benchmark(BenchConfig("agentgym/code-humaneval-v0", "oracle", "test", episodes=40, concurrency=4),
                                 OraclePolicy(), tmp_path / "he")
    assert result["episodes"] == 40 and result["success_rate"] == 1.0
    for split in ("train", "dev"):
        with pytest.raises(SplitLeakError, match="evaluation-only"):
            agentgym.make("agentgym/code-humaneval-v0", split=split)
    env = agentgym.make("agentgym/code-humaneval-v0")
    with pytest.raises(SplitLeakError):
        await env.areset(seed=0, options={"split": "train"})
    suite = load_humaneval_suite()
    assert len(suite) == 164 and len(suite.tasks("test")) == 164 and not suite.tasks("train") and not suite.tasks("dev")
    await env.aclose()


GARBAGE = st.one_of(
    st.text(max_size=200),
    st.builds(lambda c: f"<execute>{c}</execute>", st.text(max_size=120)),
    st.builds(lambda c: f"<submit>{c}</submit>", st.text(max_size=120)),
    st.builds(lambda c: f"<execute>{c}", st.text(max_size=50)),
    st.builds(lambda c: call("run_python", c), st.text(max_size=200)),
    st.builds(lambda c: call("submit_code", c), st.sampled_from(["", "def", "import os; os._exit(3)", "x" * 150_000])),
    st.builds(lambda a: {"content": None, "tool_calls": [{"id": "z", "function": {"name": "run_python", "arguments": a}}]},
              st.text(max_size=60) | st.integers() | st.lists(st.integers(), max_size=3)),
    st.builds(lambda c: call("run_python", c), st.integers() | st.none() | st.lists(st.text(max_size=3), max_size=3)),
    st.builds(lambda n: "<tool_call>" + "{" * n + "</tool_call>", st.integers(0, 5000)),
    st.builds(lambda n: {"content": None, "tool_calls": [
        {"id": str(i), "type": "function", "function": {"name": "run_python", "arguments": '{"code": "1"}'}}
        for i in range(n)]}, st.integers(0, 40)),
    st.recursive(st.none() | st.integers() | st.text(max_size=5),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=20),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=GARBAGE)
def test_fuzzed_actions_never_raise_out_of_astep(action):
    assert_step_answers("agentgym/code-v0", action, cell_timeout_s=2.0)


async def test_snapshot_and_restore_replay_the_interpreter_identically():
    env = await started(seed=5)
    await env.astep(call("run_python", "import random\nrandom.seed(7)\nitems = {'b', 'a', 'c'}\nstate = [1]"))
    snap = await env.snapshot()
    step = call("run_python", "state.append(random.random())\nprint(list(items))\nstate")
    first = await env.astep(step)
    await env.astep(call("run_python", "state.clear()"))
    await env.restore(snap)
    assert env.turn == 1
    again = await env.astep(step)
    assert again[0] == first[0] and again[1:4] == first[1:4] and again[4] == first[4]
    other = await started(seed=9)
    await other.restore(snap)  # another instance restores the same state
    third = await other.astep(step)
    assert third[0] == first[0] and other.task.id == env.task.id
    await env.aclose()
    await other.aclose()


def test_splits_have_no_overlap_no_near_duplicates_and_enough_families():
    suite = load_code_suite()
    train, dev, test = (suite.tasks(s) for s in ("train", "dev", "test"))
    assert len({t.family for t in suite.tasks()}) >= 10 and len(suite) >= 120
    ids = [{t.id for t in s} for s in (train, dev, test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert not {t.group for t in train} & ({t.group for t in test} | {t.group for t in dev})
    held = [t.data["question"] for t in test + dev]
    pairs = near_duplicates([t.data["question"] for t in train], held, threshold=0.7)
    assert pairs == [], [(train[i].data["question"], held[j], s) for i, j, s in pairs[:3]]
    assert {t.family for t in suite.tasks("test", "ood")} == {"grids", "formatting"}
    assert {t.family for t in suite.tasks("dev", "ood")} == {"geometry"}
    assert len(suite.tasks("test", "iid")) >= 8 and {t.family for t in train}.isdisjoint({"grids", "formatting"})
    modes = {t.data["mode"] for t in suite.tasks()}
    assert modes == {"call", "stdio"} and any(t.data["float_tol"] for t in suite.tasks())


@pytest.mark.parametrize("name, loader", [("code-v0", load_code_suite), ("code-humaneval-v0", load_humaneval_suite)])
def test_pinned_manifests_are_unchanged(name, loader):
    pinned = json.loads((MANIFESTS / f"{name}.json").read_text())
    now = loader().pinned()
    for split in ("train", "dev", "test"):
        assert now["splits"][split]["checksum"] == pinned["splits"][split]["checksum"], (
            f"the {split} manifest of {name} changed: a generator change must bump the suite version")
    assert now["splits"]["test"]["task_ids"] == pinned["splits"]["test"]["task_ids"]


def _sandbox_uid_processes() -> list[str]:
    out = subprocess.run(["ps", "-u", "65534", "-o", "pid="], capture_output=True, text=True).stdout
    return out.split()


@pytest.mark.slow
async def test_a_thousand_sequential_episodes_leave_no_processes_temp_dirs_or_open_files(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # anything made with tempfile lands here
    tmp = tmp_path
    host_tmp = {p for p in Path("/tmp").iterdir() if p.name.startswith("agentgym")}
    env = agentgym.make("agentgym/code-v0", split="train", max_turns=1)
    await env.areset(seed=0)
    await env.astep(call("run_python", "1"))
    before_tmp, before_fds = set(tmp.iterdir()), len(os.listdir("/proc/self/fd"))
    before_threads = threading.active_count()
    rewards = []
    for i in range(1000):
        await env.areset(seed=i)
        if i % 10 == 9:  # every tenth episode submits (a grading sandbox); the others run a cell (an interpreter)
            _, reward, term, trunc, info = await env.astep(call("submit_code", env.task.data["reference"]))
            rewards.append(reward)
        else:
            obs, reward, term, trunc, info = await env.astep(call("run_python", f"print({i} * 2)"))
            assert f"{i * 2}" in obs["messages"][0]["content"]
        assert (term or trunc) and "infra_error" not in info
    await env.aclose()
    assert rewards == [1.0] * 100
    for _ in range(100):
        if not _sandbox_uid_processes():
            break
        await asyncio.sleep(0.05)
    assert _sandbox_uid_processes() == []
    children = subprocess.run(["ps", "--ppid", str(os.getpid()), "-o", "pid="], capture_output=True, text=True).stdout
    assert children.split() == [] or all(not Path(f"/proc/{p}").exists() for p in children.split())
    assert set(tmp.iterdir()) - before_tmp == set()
    assert {p for p in Path("/tmp").iterdir() if p.name.startswith("agentgym")} <= host_tmp
    assert len(os.listdir("/proc/self/fd")) <= before_fds and threading.active_count() <= before_threads + 1
