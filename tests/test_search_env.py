"""The search environment end to end: gymnasium's checker, the Search-R1/ASearcher protocols, clear answers
to hostile queries, scoring, the oracle / random / closed-book floors on held-out tasks, fuzzing,
snapshot/restore and clean shutdown."""

from __future__ import annotations

from dataclasses import asdict
import json
import os
import threading
import time
from pathlib import Path

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from env_fuzz import assert_step_answers
import agentgym
from agentgym.benchmark import BenchConfig, run_benchmark
from agentgym.cache import cache_dir
from agentgym.envs.search.baselines import ClosedBookPolicy, chance_level
from agentgym.envs.search.suite import GENERATOR_VERSION, SearchConfig, load_search
from agentgym.policies.oracle import OraclePolicy
from agentgym.policies.random_policy import RandomPolicy
from agentgym.records import iter_episodes

SMALL = asdict(SearchConfig.small())


def call(name: str, **args) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}


async def started(seed: int = 0, split: str = "test", **kw) -> agentgym.ToolEnv:
    env = agentgym.make("agentgym/search-v0", split=split, config=SMALL, **kw)
    await env.areset(seed=seed)
    return env


def text_of(obs: dict) -> str:
    return "\n".join(m["content"] for m in obs["messages"])


def test_gymnasium_make_passes_the_env_checker():
    env = gymnasium.make("agentgym/search-v0")
    check_env(env.unwrapped)
    env.close()


async def test_first_observation_states_tools_tags_budget_and_question():
    env = await started(seed=4, max_turns=12)
    obs, info = await env.areset(seed=4)
    system, user = obs["messages"]
    for word in ("search(query, k)", "open_page(doc_id)", "answer(text)", "<search>", "<access>", "<answer>", "12 turns"):
        assert word in system["content"]
    assert user["content"] == "Question: " + env.task.data["question"]
    assert info["observation_tokens"] == "env" and info["family"] == env.task.family
    assert info["difficulty"].endswith("-hop")
    await env.aclose()


async def test_search_shows_search_r1_docs_with_ids_within_the_budget():
    env = await started(seed=1, observation_chars=400)
    hop = env.task.data["hops"][0]
    obs, reward, term, trunc, info = await env.astep(call("search", query=hop["query"], k=10))
    tool_msg = obs["messages"][0]
    assert tool_msg["role"] == "tool" and tool_msg["content"].startswith("Doc 1(Title: ")
    assert len(tool_msg["content"]) <= 400
    assert "[d" in tool_msg["content"] and (reward, term, trunc) == (0.0, False, False)
    assert info["observation_tokens"] == "env" and "You have 7 turns left." in text_of(obs)
    await env.aclose()


async def test_search_r1_tags_access_and_answer():
    env = await started(seed=2)
    hop = env.task.data["hops"][0]
    obs, *_ = await env.astep(f"<think>find the first hop</think><search>{hop['query']}</search>")
    body = text_of(obs)
    assert body.startswith("<information>Doc 1(Title: ") and "</information>" in body
    obs, *_ = await env.astep(f"<access>{hop['doc_id']}</access>")
    assert f"[{hop['doc_id']}]" in text_of(obs) and hop["target"] in text_of(obs)
    obs, reward, term, trunc, info = await env.astep(f"<answer>{env.task.data['answer']}</answer>")
    assert term and reward == 1.0 and info["outcome"]["success"]
    assert info["reward_components"]["searches"] == 1.0 and info["reward_components"]["pages_opened"] == 1.0


async def test_hermes_format_and_k_as_text():
    env = await started(seed=3)
    hop = env.task.data["hops"][0]
    obs, *_ = await env.astep('<tool_call>{"name": "search", "arguments": {"query": %s, "k": "2"}}</tool_call>'
                              % json.dumps(hop["query"]))
    body = text_of(obs)
    assert body.startswith("<tool_response>") and "Doc 2(" in body and "Doc 3(" not in body


@pytest.mark.parametrize("action, expected", [
    (call("search", query=""), "the query is empty"),
    (call("search", query="   \n\t "), "the query is empty"),
    ("<search></search>", "the query is empty"),
    (call("search", query="founder " * 2000), "the query is too long"),
    (call("search", query="北京 Ürümqi Αθήνα"), "none of its words occurs in the encyclopedia"),
    (call("search", query="the of and was"), "none of its words occurs in the encyclopedia"),
    (call("search", query="capital", k=0), "k must be between 1 and 10"),
    (call("search", query="capital", k=11), "k must be between 1 and 10"),
    (call("open_page", doc_id="d999999"), "unknown doc id"),
    (call("answer", text="x" * 600), "the answer is too long"),
    ("I think the answer is Paris.", "My previous action is invalid"),
])
async def test_empty_enormous_and_odd_inputs_get_clear_observations(action, expected):
    env = await started(seed=5)
    obs, reward, term, trunc, info = await env.astep(action)
    assert expected in text_of(obs)
    assert not term and not trunc and "infra_error" not in info and reward == 0.0
    await env.aclose()


async def test_answer_is_read_from_the_action_only_and_scored_with_components():
    env = await started(seed=6)
    # an answer inside <think> is not an answer
    obs, reward, term, *_ = await env.astep(f"<think><answer>{env.task.data['answer']}</answer></think>")
    assert not term and "My previous action is invalid" in text_of(obs)
    obs, reward, term, trunc, info = await env.astep(call("answer", text="Nobody In Particular"))
    assert term and reward == 0.0 and info["outcome"]["success"] is False
    assert info["reward_components"]["em"] == 0.0 and info["reward_components"]["format_ok"] == 0.0


async def test_format_gating_zeroes_a_correct_answer_after_an_invalid_action():
    env = await started(seed=7, format_gating=True)
    await env.astep("no tool call here")
    *_, reward, term, trunc, info = await env.astep(call("answer", text=env.task.data["answer"]))
    assert term and reward == 0.0 and info["reward_components"]["em"] == 1.0
    env2 = await started(seed=7, format_gating=True)
    *_, reward, term, trunc, info = await env2.astep(call("answer", text=env2.task.data["answer"].upper()))
    assert reward == 1.0


async def test_turn_budget_truncates_and_is_capped_at_64():
    env = await started(seed=8, max_turns=2)
    await env.astep(call("search", query="capital"))
    obs, reward, term, trunc, info = await env.astep(call("search", query="population"))
    assert trunc and not term and reward == 0.0 and info["termination"] == "turn_budget"
    assert info["reward_components"]["answered"] == 0.0
    with pytest.raises(ValueError):
        agentgym.make("agentgym/search-v0", max_turns=65)
    assert agentgym.make("agentgym/search-v0", max_turns=64).max_turns == 64


async def test_oracle_solves_held_out_tasks_with_real_searches_and_random_scores_near_zero(tmp_path):
    oracle = await run_benchmark(BenchConfig("agentgym/search-v0", "oracle", "test", concurrency=8),
                                 OraclePolicy(), tmp_path / "oracle")
    assert oracle["episodes"] >= 600 and oracle["infra_errors"] == 0
    assert oracle["success_rate"] >= 0.99
    assert set(oracle["by_family"]) == {"single_hop", "bridge", "compositional", "inference", "comparison", "chain"}
    assert set(oracle["by_axis"]) == {"iid", "ood"} and set(oracle["by_difficulty"]) >= {"1-hop", "2-hop", "3-hop", "4-hop"}
    suite = load_search().suite
    for r in iter_episodes(tmp_path / "oracle" / "episodes.jsonl"):  # one real search (or page) per hop at least
        c = r.reward_components
        assert c["searches"] + c["pages_opened"] >= len(suite.get(r.task_id).data["hops"])
    rand = await run_benchmark(BenchConfig("agentgym/search-v0", "random", "test", concurrency=8),
                               RandomPolicy(seed=0), tmp_path / "random")
    assert rand["episodes"] == oracle["episodes"] and rand["infra_errors"] == 0 and rand["success_rate"] < 0.02


async def test_the_oracle_fails_when_the_facts_are_not_shown(tmp_path):
    """The oracle answers only after reading every hop's fact, so hiding passage text defeats it."""
    kw = {"config": SMALL, "passage_chars": 25, "page_chars": 25}
    res = await run_benchmark(BenchConfig("agentgym/search-v0", "oracle", "test", episodes=60, env_kwargs=kw),
                              OraclePolicy(), tmp_path / "blind")
    assert res["success_rate"] < 0.2


async def test_closed_book_stays_at_chance_on_the_ood_world(tmp_path):
    suite = load_search().suite
    res = await run_benchmark(BenchConfig("agentgym/search-v0", "closed-book", "test", axis="ood", concurrency=8),
                              ClosedBookPolicy(suite), tmp_path / "closed")
    tasks = suite.tasks("test", "ood")
    chance = sum(chance_level(t.data, t.data["question"]) for t in tasks) / len(tasks)
    assert res["episodes"] == len(tasks) and 0.05 < chance < 0.3
    assert res["success_rate"] <= chance + 0.05, (res["success_rate"], chance)
    fam = {k: v["success_rate"] for k, v in res["by_family"].items()}
    assert all(fam[f] <= 0.05 for f in ("single_hop", "bridge", "compositional", "inference", "chain")), fam
    assert fam["comparison"] <= 0.62, fam
    assert res["mean_turns"] == 1.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.one_of(
    st.text(max_size=200),
    st.builds(lambda q: f"<search>{q}</search>", st.text(max_size=300)),
    st.builds(lambda q: f"<access>{q}</access>", st.text(max_size=50)),
    st.builds(lambda q: f"<answer>{q}</answer>", st.text(max_size=80)),
    st.builds(lambda q, k: call("search", query=q, k=k), st.text(max_size=200), st.integers(-5, 50)),
    st.builds(lambda a: {"content": None, "tool_calls": [{"id": "z", "function": {"name": "search", "arguments": a}}]},
              st.text(max_size=60) | st.integers() | st.lists(st.integers(), max_size=3)),
    st.builds(lambda n: "<tool_call>" + "[" * n + "</tool_call>", st.integers(0, 5000)),
    st.builds(lambda q: call("search", query=q), st.sampled_from(["x" * 150_000, "é" * 99_000, "\x00" * 50])),
    st.builds(lambda q: call("answer", text=q), st.sampled_from(["y" * 99_000, "", "\u202e"])),
    st.builds(lambda v: call("open_page", doc_id=v), st.text(max_size=20) | st.integers()),
    st.recursive(st.none() | st.integers() | st.text(max_size=5),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=20),
))
def test_fuzzed_actions_never_raise_out_of_astep(action):
    assert_step_answers("agentgym/search-v0", action, config=SMALL)


async def test_snapshot_and_restore_replay_identically():
    env = await started(seed=9)
    await env.astep(await env.oracle_action())
    snap = await env.snapshot()
    a = await env.astep(await env.oracle_action())
    rest = await env.astep(call("search", query="capital"))
    await env.restore(snap)
    assert env.turn == 1 and len(env.history) == 1
    again = await env.astep(await env.oracle_action())
    assert again[0] == a[0] and again[1:4] == a[1:4] and again[4] == a[4]
    other = await started(seed=10)
    await other.restore(snap)  # a fresh instance restores the same state and continues identically
    assert other.task.id == env.task.id and other.turn == 1
    assert (await other.astep(await other.oracle_action()))[0] == a[0]
    assert rest[0] != a[0]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_threads_files_or_temp_dirs_left_behind():
    load_search(SearchConfig.small())
    threads, fds, children = threading.active_count(), _fds(), _children()
    for seed in range(3):
        env = gymnasium.make("agentgym/search-v0", split="test", config=SMALL).unwrapped
        env.reset(seed=seed)
        for _ in range(3):
            if not env._done:
                env.step(env._run(env.oracle_action()))
        env.close()
    deadline = time.monotonic() + 60  # a bound for a loaded machine: the poll ends as soon as the threads are gone
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads
    assert _fds() <= fds + 2
    leftovers = [p for p in Path(cache_dir("search", GENERATOR_VERSION)).rglob("*") if ".tmp-" in p.name]
    assert leftovers == []
    assert _children() <= children  # (earlier tests' SQL workers may still be alive: only new ones count)


def _children() -> set[str]:
    return {c for c in os.listdir("/proc") if c.isdigit() and _ppid(c) == os.getpid()}


def _ppid(pid: str) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
