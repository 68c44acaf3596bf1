"""Bring-your-own search data: a Search-R1 corpus and NQ/HotpotQA-style questions written by the tests, served
with the same tools and reward, benchmarked through the CLI, validated with one clear error per problem."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentgym
from agentgym.benchmark import BenchConfig, run_benchmark
from agentgym.envs.search.datasets import DATASET_SYSTEM_PROMPT, index_dir, load_dataset
from agentgym.errors import DatasetError
from agentgym.policies.random_policy import RandomPolicy

CITIES = [("Lorvenna", 1742, "Adela Strom", "salt"), ("Brisca", 1810, "Tomas Kell", "glass"),
          ("Quenmoor", 1655, "Ilse Varra", "wool"), ("Dravik", 1901, "Oren Pask", "timber"),
          ("Sulmere", 1588, "Petra Jund", "copper"), ("Halvard", 1777, "Emil Rosk", "silk"),
          ("Tiberin", 1832, "Nadia Fell", "paper"), ("Wenholt", 1699, "Bram Ostow", "cider"),
          ("Korrin", 1920, "Lena Marsk", "tin"), ("Ovelle", 1621, "Hugo Tarn", "lace")]
FILLER = ("The area has a mild climate with wet winters. Local markets open every week and the old town keeps "
          "its narrow streets, stone bridges and a small museum of regional history.")


def passages() -> list[dict]:
    """About a hundred passages: three per city, one per founder, filler chunks, and two same-prefix articles."""
    rows = []
    for name, year, founder, good in CITIES:
        rows.append(f"{name}\n{name} is a town on the northern coast. {name} was founded in {year} by {founder}.")
        rows.append(f"{name}\nThe economy of {name} grew on the {good} trade, which remains its main export.")
        rows.append(f"{name}\n{FILLER}")
        rows.append(f"{founder}\n{founder} was an explorer remembered for founding {name}.")
    rows += [f"Mercury\nMercury is a chemical element with symbol Hg.",
             f"Mercury (planet)\nMercury (planet) is the smallest planet and the closest to the Sun."]
    rows += [f"Chronicle {i}\nChronicle {i} lists harvests, fairs and weather of year {1500 + i}. {FILLER}" for i in range(50)]
    quoted = ['"{}"\n{}'.format(*c.split("\n", 1)) if i % 2 else c for i, c in enumerate(rows)]  # wiki-18 quotes titles
    return [{"id": str(i), "contents": c} for i, c in enumerate(quoted)]


def write_dataset(root: Path, *, gz: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(p) + "\n" for p in passages())
    if gz:
        with gzip.open(root / "wiki-18.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write(lines)
    else:
        (root / "corpus.jsonl").write_text(lines)
    c = CITIES
    train = [{"id": "t1", "question": f"In which year was {c[0][0]} founded?", "golden_answers": [str(c[0][1])]},
             {"id": "t2", "question": f"Who founded the town of {c[1][0]}?", "golden_answers": [c[1][2]]}]
    (root / "train.jsonl").write_text("".join(json.dumps(q) + "\n" for q in train))
    dev = [{"_id": "h1", "question": f"What trade did the economy of {c[2][0]} grow on?", "answer": c[2][3],
            "level": "easy"}]
    (root / "dev.json").write_text(json.dumps(dev))
    test = [{"id": "q1", "question": f"{c[3][0]} was established in what year?", "golden_answers": [str(c[3][1])]},
            {"id": "q2", "question": f"Name the explorer who founded {c[4][0]}.",
             "golden_answers": [c[4][2], c[4][2].split()[1]]},
            {"id": "q3", "question": f"What is the main export of {c[5][0]}?", "golden_answers": [c[5][3]]},
            {"id": "q4", "question": f"When did {c[6][2]} found {c[6][0]}?", "golden_answers": [str(c[6][1])],
             "split": "dev"}]
    (root / "test.jsonl").write_text("".join(json.dumps(q) + "\n" for q in test))
    nq = [{"question": f"which town did {c[7][2]} found", "answer": [c[7][0]], "data_source": "nq"},
          {"question": f"what goods made {c[8][0]} rich", "answer": c[8][3], "data_source": "nq"}]
    (root / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in nq))
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("searchr1"))


def make(root: Path, split: str = "test", **kw) -> agentgym.ToolEnv:
    return agentgym.make("agentgym/search-v0", dataset="searchr1", path=str(root), split=split, **kw)


def seen(obs: dict) -> str:
    """The observation text of the last step (the tool result and the env's turn note)."""
    return "\n".join(str(m["content"]) for m in obs["messages"][-2:])


def call(name: str, **args) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}


async def test_dataset_loads_with_its_own_splits_and_serves_its_corpus(data_dir):
    env = make(data_dir)
    suite = await env.aload_suite()
    assert [len(suite.tasks(s)) for s in ("train", "dev", "test")] == [2, 2, 5]
    assert {t.family for t in suite.tasks("test")} == {"searchr1", "nq"}
    assert {t.difficulty for t in suite.tasks("dev")} == {"easy", None}
    assert not {t.id for t in suite.tasks("train")} & {t.id for t in suite.tasks("test") + suite.tasks("dev")}
    task = next(t for t in suite.tasks("test") if t.data["id"] == "q2")
    obs, info = await env.areset(options={"task_id": task.id})
    assert obs["messages"][0]["content"].startswith(DATASET_SYSTEM_PROMPT.split("\n")[0]) and "fictional" not in \
        obs["messages"][0]["content"]
    assert obs["messages"][1]["content"] == "Question: Name the explorer who founded Sulmere." and info["split"] == "test"
    obs, *_ = await env.astep("<search>Sulmere founded</search>")
    shown = seen(obs)
    assert "Doc 1(Title: Sulmere) [" in shown and "Petra Jund" in shown and '"' not in shown.split("Title: ")[1][:10]
    obs, *_ = await env.astep(call("open_page", doc_id="41"))  # "Mercury (planet)" is its own article, not "Mercury"'s
    assert "smallest planet" in seen(obs) and "symbol Hg" not in seen(obs)
    _, reward, term, _, info = await env.astep("<answer>jund</answer>")  # the second gold alias
    assert term and reward == 1.0 and info["reward_components"]["em"] == 1.0 and info["reward_components"]["searches"] == 1
    await env.aclose()


def test_gymnasium_checker_passes_on_a_dataset(data_dir):
    env = gymnasium.make("agentgym/search-v0", dataset="searchr1", path=str(data_dir))
    check_env(env.unwrapped)
    env.close()


def test_oracle_scores_one_and_random_near_zero_through_the_cli(data_dir, tmp_path):
    for policy, check in (("oracle", lambda r: r == 1.0), ("random", lambda r: r <= 0.2)):
        out = tmp_path / policy
        run = subprocess.run([sys.executable, "-m", "agentgym.cli", "bench", "agentgym/search-v0", "--policy", policy,
                              "--split", "test", "--env", "dataset=searchr1", "--env", f"path={data_dir}",
                              "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        results = json.loads((out / "results.json").read_text())
        assert results["episodes"] == 5 and results["infra_errors"] == 0 and check(results["success_rate"]), results
        assert results["manifest_matches_pinned"] is None and {"em", "f1", "sub_em"} <= set(results["reward_components"])
        if policy == "oracle":  # it really searched before answering
            episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
            assert all(e["reward_components"]["searches"] >= 1 for e in episodes)


async def test_random_policy_stays_near_zero_over_many_episodes(data_dir, tmp_path):
    kw = {"dataset": "searchr1", "path": str(data_dir)}
    res = await run_benchmark(BenchConfig("agentgym/search-v0", "random", "test", samples=20, env_kwargs=kw),
                              RandomPolicy(seed=0), tmp_path / "random")
    assert res["episodes"] == 100 and res["infra_errors"] == 0 and res["success_rate"] <= 0.05, res


async def test_the_oracle_searches_deeper_only_when_no_gold_was_shown(data_dir):
    env = make(data_dir, topk=1)
    suite = await env.aload_suite()
    found = next(t for t in suite.tasks("test") if t.data["id"] == "q1")
    await env.areset(options={"task_id": found.id})
    await env.astep(await env.oracle_action())
    assert json.loads((await env.oracle_action())["tool_calls"][0]["function"]["arguments"]) == {"text": "1901"}
    hidden = make(data_dir, topk=1, passage_chars=20)  # the fact is cut off: search again with k=10, then answer
    await hidden.areset(options={"task_id": found.id})
    await hidden.astep(await hidden.oracle_action())
    second = (await hidden.oracle_action())["tool_calls"][0]["function"]
    assert second["name"] == "search" and json.loads(second["arguments"])["k"] == 10
    await env.aclose()
    await hidden.aclose()


def test_bm25_index_is_built_once_and_keyed_by_the_corpus_file(tmp_path):
    root = write_dataset(tmp_path / "d", gz=False)
    corpus = root / "corpus.jsonl"
    first = load_dataset("searchr1", root)
    done = index_dir(corpus) / "bm25" / "done.json"
    stamp = done.stat().st_mtime_ns
    again = load_dataset("searchr1", root)
    assert done.stat().st_mtime_ns == stamp and again.worlds[0].ids == first.worlds[0].ids
    with corpus.open("a") as fh:
        fh.write(json.dumps({"id": "new", "contents": "Zarquon\nZarquon is a prophet."}) + "\n")
    assert index_dir(corpus) != done.parent.parent  # the changed file gets a fresh index
    grown = load_dataset("searchr1", root).worlds[0]
    assert grown.bm25.size == len(first.worlds[0].ids) + 1 and grown.bm25.search(["Zarquon"], 1)[0][0].index == grown.bm25.size - 1


def test_repeated_and_near_duplicate_questions_across_splits(tmp_path):
    root = write_dataset(tmp_path / "d")
    (root / "test_extra.jsonl").write_text(json.dumps({"question": "In which year was Lorvenna founded?",
                                                       "golden_answers": ["1742"], "id": "t1"}) + "\n"
                                           + json.dumps({"question": "In which year was Lorvenna founded ?",
                                                         "golden_answers": ["1742"], "id": "x9"}) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset("searchr1", root)
    # the exact repeat of a training question counts once, in train; the near-repeat warns
    assert len(data.suite.tasks("train")) == 2 and len(data.suite.tasks("test")) == 6
    assert any("nearly repeat held-out" in str(w.message) and "similarity 1.00" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset("searchr1", write_dataset(tmp_path / "clean"))  # the fixture itself has no near-duplicates


def _error(tmp_path: Path, mutate) -> str:
    root = write_dataset(tmp_path, gz=False)
    mutate(root)
    with pytest.raises(DatasetError) as info:
        load_dataset("searchr1", root)
    return str(info.value)


def _rewrite(file: Path, index: int, change) -> None:
    rows = [json.loads(line) for line in file.read_text().splitlines()]
    change(rows[index])
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("mutate, message", [
    (lambda r: _rewrite(r / "test.jsonl", 1, lambda q: q.pop("question")), "test.jsonl: line 2: missing field 'question'"),
    (lambda r: _rewrite(r / "test.jsonl", 0, lambda q: q.update(golden_answers="1901")),
     "test.jsonl: line 1: field 'golden_answers' must be a non-empty list of non-empty strings"),
    (lambda r: _rewrite(r / "train.jsonl", 1, lambda q: (q.pop("golden_answers"))),
     "train.jsonl: line 2: missing field 'golden_answers' (or 'answer')"),
    (lambda r: (r / "dev.json").write_text(json.dumps([{"question": "q?", "answer": 3}])),
     "dev.json: entry 0: field 'answer' must be a non-empty string or a list of them"),
    (lambda r: _rewrite(r / "test.jsonl", 2, lambda q: q.update(split="holdout")),
     "test.jsonl: line 3: field 'split' must be one of"),
    (lambda r: (r / "dev.json").write_text("[{"), "dev.json: not valid JSON"),
    (lambda r: _rewrite(r / "corpus.jsonl", 7, lambda p: p.pop("contents")), "corpus.jsonl: line 8: missing field 'contents'"),
    (lambda r: _rewrite(r / "corpus.jsonl", 3, lambda p: p.update(id="2")), "corpus.jsonl: line 4: duplicate id '2'"),
    (lambda r: (r / "corpus.jsonl").write_text('{"id": "0", "contents": "A\\nb"}\n{oops\n'), "corpus.jsonl: line 2: not valid JSON"),
    (lambda r: (r / "corpus.jsonl").rename(r / "passages.jsonl"), "expected exactly one corpus file"),
    (lambda r: (r / "wiki-18.jsonl").write_text((r / "corpus.jsonl").read_text()),
     "found corpus.jsonl, wiki-18.jsonl"),
])
def test_malformed_files_give_one_clear_error_naming_file_line_and_field(tmp_path, mutate, message):
    assert message in _error(tmp_path / "bad", mutate)


def test_bad_options_are_refused_before_any_work(tmp_path):
    with pytest.raises(DatasetError, match="path= needs dataset=searchr1"):
        agentgym.make("agentgym/search-v0", path=str(tmp_path))
    with pytest.raises(DatasetError, match="config= sizes the generated worlds"):
        agentgym.make("agentgym/search-v0", dataset="searchr1", path=str(tmp_path), config={"passages": 10})
    with pytest.raises(DatasetError, match="needs path=DIR"):
        agentgym.make("agentgym/search-v0", dataset="searchr1").load_suite()
    with pytest.raises(DatasetError, match="unknown search dataset 'hotpot'"):
        agentgym.make("agentgym/search-v0", dataset="hotpot", path=str(tmp_path)).load_suite()


def test_cli_reports_dataset_errors_in_one_line_and_envs_show_lists_the_options(tmp_path):
    run = subprocess.run([sys.executable, "-m", "agentgym.cli", "bench", "agentgym/search-v0", "--policy", "oracle",
                          "--split", "test", "--env", "dataset=searchr1", "--env", f"path={tmp_path / 'missing'}",
                          "--out", str(tmp_path / "o"), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "not a directory" in run.stderr and "Traceback" not in run.stderr
    shown = subprocess.run([sys.executable, "-m", "agentgym.cli", "envs", "show", "agentgym/search-v0"],
                           capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert "dataset" in shown.stdout and "searchr1" in shown.stdout and "wiki-18.jsonl" in shown.stdout


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.one_of(
    st.text(max_size=200),
    st.builds(lambda q: f"<search>{q}</search>", st.text(max_size=300)),
    st.builds(lambda q: f"<access>{q}</access>", st.text(max_size=50)),
    st.builds(lambda q, k: call("search", query=q, k=k), st.text(max_size=200), st.integers(-5, 50)),
    st.builds(lambda n: "<tool_call>" + "[" * n + "</tool_call>", st.integers(0, 5000)),
    st.builds(lambda v: call("open_page", doc_id=v), st.text(max_size=20) | st.integers()),
    st.builds(lambda q: call("answer", text=q), st.sampled_from(["y" * 99_000, "", "\u202e"])),
    st.recursive(st.none() | st.integers() | st.text(max_size=5),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=20),
))
def test_fuzzed_actions_never_raise_out_of_astep(data_dir, action):
    async def go():
        env = make(data_dir)
        await env.areset(seed=2)
        obs, reward, _, _, info = await env.astep(action)
        assert obs in env.observation_space and isinstance(reward, float) and "infra_error" not in info
        await env.aclose()

    asyncio.run(go())


async def test_snapshot_restore_replays_identically_and_nothing_is_left_behind(data_dir):
    env = make(data_dir)
    await env.areset(seed=4)
    threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    await env.astep(await env.oracle_action())
    snap = await env.snapshot()
    after = await env.astep(await env.oracle_action())
    await env.restore(snap)
    other = make(data_dir)
    await other.areset(seed=5)
    await other.restore(snap)
    for e in (env, other):
        again = await e.astep(await e.oracle_action())
        assert again[0] == after[0] and again[1:4] == after[1:4] and again[4] == after[4]
        await e.aclose()

    def left_behind() -> bool:
        return threading.active_count() > threads + 1 or len(os.listdir("/proc/self/fd")) > fds + 2

    deadline = time.monotonic() + 60  # a bound for a loaded machine: the poll ends as soon as they are released
    while left_behind() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert threading.active_count() <= threads + 1 and len(os.listdir("/proc/self/fd")) <= fds + 2
    assert not list(index_dir(data_dir / "wiki-18.jsonl.gz").parent.rglob("*.tmp-*"))
