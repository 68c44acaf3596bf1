"""The SQL environment end to end: gymnasium's checker, oracle and random floors, hostile SQL, fuzzing,
snapshot/restore, the three tool-call formats, and the held-out splits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from env_fuzz import assert_step_answers
import agentgym
from agentgym.benchmark import BenchConfig, run_benchmark
from agentgym.envs.sql.suite import MANIFEST, load_world
from agentgym.policies.oracle import OraclePolicy
from agentgym.policies.random_policy import RandomPolicy
from agentgym.tasks import near_duplicates


def sql_call(name: str, query: str) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "q", "type": "function", "function": {"name": name, "arguments": json.dumps({"query": query})}}]}


@pytest.fixture(scope="module")
def world():
    return load_world()


def db_hashes(world) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest()
            for paths in world.databases.values() for p in paths}


async def started(split: str = "test", seed: int = 0, **kw) -> agentgym.ToolEnv:
    env = agentgym.make("agentgym/sql-v0", split=split, **kw)
    await env.areset(seed=seed)
    return env


def test_gymnasium_make_passes_the_env_checker():
    env = gymnasium.make("agentgym/sql-v0")
    check_env(env.unwrapped)
    env.close()


async def test_first_observation_shows_schema_samples_question_and_budget():
    env = await started()
    system, user = (await env.areset(seed=4))[0]["messages"]
    assert "execute_sql" in system["content"] and "5 turns" in system["content"]
    assert "CREATE TABLE" in user["content"] and "Sample rows" in user["content"]
    assert user["content"].rstrip().split("Question: ")[1].startswith(env.task.data["question"][:20])
    await env.aclose()


async def test_execute_returns_a_table_with_turns_left_and_submit_scores():
    env = await started()
    table = env.task and env.world.databases[env.task.family][0]
    assert table is not None
    obs, reward, term, trunc, info = await env.astep(sql_call("execute_sql", "SELECT 1 AS one, NULL AS missing"))
    text = obs["messages"][0]["content"]
    assert obs["messages"][0]["role"] == "tool" and "one | missing\n1 | NULL" in text
    assert "You have 4 turns left." in obs["messages"][-1]["content"]
    assert (reward, term, trunc) == (0.0, False, False)
    obs, reward, term, trunc, info = await env.astep(await env.oracle_action())
    assert (reward, term) == (1.0, True) and info["outcome"]["success"]
    assert set(info["reward_components"]) == {"ex_test_suite", "ex_set", "syntax_ok", "schema_jaccard", "ngram_jaccard"}
    await env.aclose()


async def test_sql_tags_and_hermes_formats():
    env = await started()
    obs, *_ = await env.astep("<think>look first</think><sql>SELECT 2 AS two</sql>")
    assert obs["messages"][0]["content"].startswith("<observation>two\n2</observation>")
    gold = env.task.data["gold_sql"]
    obs, reward, term, *_ = await env.astep('<tool_call>{"name": "submit_sql", "arguments": {"query": %s}}</tool_call>'
                                            % json.dumps(gold))
    assert term and reward == 1.0 and obs["messages"][0]["content"].startswith("<tool_response>")
    env2 = await started(seed=1)
    _, reward, term, *_ = await env2.astep(f"<solution>{env2.task.data['gold_sql']}</solution>")
    assert term and reward == 1.0


async def test_wrong_submission_scores_zero_with_components():
    env = await started()
    _, reward, term, _, info = await env.astep(sql_call("submit_sql", "SELECT 1"))
    assert term and reward == 0.0 and info["outcome"]["success"] is False
    assert info["reward_components"]["ex_test_suite"] == 0.0 and info["reward_components"]["syntax_ok"] == 1.0


HOSTILE = [
    ("DROP TABLE {t}", "not authorized"),
    ("DELETE FROM {t}", "not authorized"),
    ("UPDATE {t} SET {c} = NULL", "not authorized"),
    ("INSERT INTO {t} DEFAULT VALUES", "not authorized"),
    ("ATTACH DATABASE '/tmp/agentgym_evil.db' AS evil", "not authorized"),
    ("PRAGMA writable_schema = 1", "not authorized"),
    ("PRAGMA journal_mode = WAL", "not authorized"),
    ("VACUUM INTO '/tmp/agentgym_copy.db'", "not authorized"),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "deadline"),
    ("SELECT count(*) FROM {t} a, {t} b, {t} c, {t} d, {t} e", "deadline"),
    ("SELECT replace(hex(zeroblob(5000000)), '0', 'x')", "byte limit"),
    ("SELECT randomblob(20000000)", "byte limit"),
    ("SELECT 1; DROP TABLE {t}", "one statement"),
    ("SELECT load_extension('/tmp/evil.so')", "not authorized"),
]


@pytest.mark.parametrize("template, fragment", HOSTILE)
async def test_hostile_sql_gets_a_clear_error_and_files_stay_identical(world, template, fragment):
    before = db_hashes(world)
    env = await started(query_timeout_s=1.0)
    table = next(t for t in world.databases)  # any family name; use the current task's first table instead
    fam = agentgym.envs.sql.schemas.FAMILIES[env.task.family]  # type: ignore[attr-defined]
    query = template.format(t=fam.tables[-1].name, c=fam.tables[-1].columns[1].name)
    obs, reward, term, trunc, info = await env.astep(sql_call("execute_sql", query))
    text = obs["messages"][0]["content"]
    assert text.startswith("Error: SQL error:") and fragment in text.lower(), text
    if fragment == "deadline":  # stopped by the env's own query_timeout_s, which the agent is told
        assert "1.0 s deadline" in text, text
    assert not (term or trunc) and "infra_error" not in info and info["tool_errors"] == 1
    assert db_hashes(world) == before
    assert not Path("/tmp/agentgym_copy.db").exists() and not Path("/tmp/agentgym_evil.db").exists()
    # the env still works after the attack
    obs, *_ = await env.astep(sql_call("execute_sql", "SELECT 3 AS three"))
    assert "three\n3" in obs["messages"][0]["content"]
    assert table


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.one_of(
    st.text(max_size=200),
    st.builds(lambda q: f"<sql>{q}</sql>", st.text(max_size=120)),
    st.builds(lambda q: f"<solution>{q}</solution>", st.text(max_size=120)),
    st.builds(lambda q: sql_call("execute_sql", q), st.text(max_size=200)),
    st.builds(lambda a: {"content": None, "tool_calls": [{"id": "z", "function": {"name": "execute_sql", "arguments": a}}]},
              st.text(max_size=60) | st.integers() | st.lists(st.integers(), max_size=3)),
    st.builds(lambda n: "<tool_call>" + "{" * n + "</tool_call>", st.integers(0, 5000)),
    st.builds(lambda q: sql_call("execute_sql", q), st.sampled_from(["x" * 150_000, "SELECT '" + "y" * 99_000 + "'"])),
    st.recursive(st.none() | st.integers() | st.text(max_size=5),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=20),
))
def test_fuzzed_actions_never_raise_out_of_astep(action):
    assert_step_answers("agentgym/sql-v0", action)


async def test_snapshot_and_restore_replay_identically():
    env = await started(seed=5)
    await env.astep(sql_call("execute_sql", "SELECT 1"))
    snap = await env.snapshot()
    a = await env.astep(sql_call("execute_sql", "SELECT 42 AS answer"))
    b_first = await env.astep(await env.oracle_action())
    assert b_first[2]  # episode ended
    await env.restore(snap)
    assert env.turn == 1 and len(env.history) == 1
    again = await env.astep(sql_call("execute_sql", "SELECT 42 AS answer"))
    assert again[0] == a[0] and again[1:4] == a[1:4]
    assert again[4]["turn"] == a[4]["turn"] == 2
    other = await started(seed=9)
    await other.restore(snap)  # a different env instance restores the same state
    assert other.task.id == env.task.id and other.turn == 1


async def test_oracle_scores_one_on_200_held_out_tasks_and_random_below_five_percent(tmp_path):
    oracle = await run_benchmark(BenchConfig("agentgym/sql-v0", "oracle", "test", episodes=200, concurrency=8),
                                 OraclePolicy(), tmp_path / "oracle")
    assert oracle["episodes"] == 200 and oracle["success_rate"] == 1.0 and oracle["infra_errors"] == 0
    rand = await run_benchmark(BenchConfig("agentgym/sql-v0", "random", "test", episodes=200, concurrency=8),
                               RandomPolicy(seed=0), tmp_path / "random")
    assert rand["episodes"] == 200 and rand["success_rate"] < 0.05 and rand["infra_errors"] == 0
    assert rand["manifest_checksum"] == oracle["manifest_checksum"]


def test_splits_have_no_overlap_no_near_duplicates_and_ood_families_are_unseen(world):
    suite = world.suite
    train, dev, test = (suite.tasks(s) for s in ("train", "dev", "test"))
    assert len(test) >= 200 and len(dev) >= 100 and len(train) >= 500
    ids = [{t.id for t in s} for s in (train, dev, test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert not {t.group for t in train} & {t.group for t in test}
    assert not {t.data["gold_sql"] for t in train} & {t.data["gold_sql"] for t in test}
    pairs = near_duplicates([t.data["question"] for t in train], [t.data["question"] for t in test], threshold=0.7)
    assert pairs == [], [(train[i].data["question"], test[j].data["question"], s) for i, j, s in pairs[:3]]
    ood_test = {t.family for t in suite.tasks("test", "ood")}
    assert ood_test == {"flights", "real_estate"} and not ood_test & {t.family for t in train}
    assert {t.family for t in suite.tasks("dev", "ood")} == {"sports"}
    assert len(suite.tasks("test", "iid")) >= 50
    assert {t.template for t in suite.tasks()} >= {"filter_like", "filter_in", "filter_between", "aggregate",
                                                    "group_by", "group_having", "order_limit", "join2",
                                                    "join_aggregate", "nested_scalar", "set_op", "case_when"}


def test_pinned_manifest_is_unchanged(world):
    pinned = json.loads(MANIFEST.read_text())
    now = world.suite.pinned()
    for split in ("train", "dev", "test"):
        assert now["splits"][split]["checksum"] == pinned["splits"][split]["checksum"], (
            f"the {split} manifest of sql-v0 changed: a generator change must bump the suite version")
    assert now["splits"]["test"]["task_ids"] == pinned["splits"]["test"]["task_ids"]


async def test_broken_sql_machinery_is_an_infrastructure_failure_not_a_wrong_answer():
    from agentgym.envs.sql.executor import SqlExecutor

    env = agentgym.make("agentgym/sql-v0", split="test", executor=SqlExecutor(python="/nonexistent/python"))
    await env.areset(seed=0)
    _, reward, terminated, truncated, info = await env.astep(await env.oracle_action())
    assert truncated and not terminated and reward == 0.0
    assert info["infra_error"]["type"] == "InfrastructureError" and "outcome" not in info
