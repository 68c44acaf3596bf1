"""A question/answer dataset as an env: files and datasets in, stable tasks and splits, scoring, the real bench path."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentgym.actions import tool_call_message
from agentgym.cli import app
from agentgym.env_check import EnvChecker
from agentgym.errors import DatasetError
from agentgym.answer_match import exact_match, normalize_answer
from agentgym.qa_env import QAEnv, register_qa
from agentgym.qa_suite import QAFields, qa_suite
from agentgym.registry import make

SPLIT_WORDS = {0: "train", 1: "validation", 2: "test"}


def rows(n: int = 60, *, with_split: bool = True) -> list[dict]:
    """Trivia-like rows whose golds a random string cannot hit (three words each)."""
    out = []
    for i in range(n):
        row = {"qid": f"q{i}", "q": f"Which three words name item number {i}?",
               "gold": {"aliases": [f"blue {i} zebra", f"zebra {i}"]}, "topic": f"topic-{i % 3}"}
        if with_split:
            row["part"] = SPLIT_WORDS[i % 3]
        out.append(row)
    return out


FIELDS = dict(question_field="q", answer_field="gold.aliases", id_field="qid", split_field="part",
              family_field="topic")


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in items))
    return path


def play(env: QAEnv, task_id: str, action) -> tuple[float, dict]:
    async def go():
        await env.areset(seed=0, options={"task_id": task_id})
        _, reward, terminated, truncated, info = await env.astep(action)
        assert terminated or truncated  # one answer ends the episode, scored or not
        return reward, info

    return asyncio.run(go())


def bench(env_id: str, policy: str, out: Path) -> dict:
    result = CliRunner().invoke(app, ["bench", env_id, "--policy", policy, "--split", "test", "--out", str(out),
                                      "--no-progress", "--concurrency", "4"])
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text())


def test_bench_of_a_jsonl_dataset_gives_the_oracle_everything_and_random_nothing(tmp_path):
    data = write_jsonl(tmp_path / "trivia.jsonl", rows())
    register_qa("test/qa-trivia-v0", path=data, name="trivia", **FIELDS)
    oracle = bench("test/qa-trivia-v0", "oracle", tmp_path / "oracle")
    random = bench("test/qa-trivia-v0", "random", tmp_path / "random")
    assert oracle["episodes"] == random["episodes"] == 20  # every third row says "test"
    assert oracle["success_rate"] == 1.0
    assert random["success_rate"] == 0.0


def test_dataset_splits_are_kept_and_disjoint(tmp_path):
    suite = QAEnv(path=write_jsonl(tmp_path / "t.jsonl", rows()), **FIELDS).suite
    ids = {s: {t.id for t in suite.tasks(s)} for s in ("train", "dev", "test")}
    assert {s: len(v) for s, v in ids.items()} == {"train": 20, "dev": 20, "test": 20}  # "validation" is dev
    assert not (ids["train"] & ids["dev"]) and not (ids["train"] & ids["test"]) and not (ids["dev"] & ids["test"])
    assert all(t.data["row"]["part"] == "validation" for t in suite.tasks("dev"))


def test_without_split_field_a_hash_split_is_stable_across_row_order(tmp_path):
    items = rows(200, with_split=False)
    one = QAEnv(rows=items, **FIELDS).suite
    two = QAEnv(rows=list(reversed(items)), **FIELDS).suite
    splits = {s: [t.id for t in one.tasks(s)] for s in ("train", "dev", "test")}
    assert splits == {s: [t.id for t in two.tasks(s)] for s in ("train", "dev", "test")}
    assert all(len(v) > 0 for v in splits.values()) and sum(map(len, splits.values())) == 200
    assert len(splits["train"]) > 3 * len(splits["test"])  # 80/10/10 by default


def test_split_from_file_names_and_duplicates_count_once_in_the_earliest_split(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    plain = [{"question": f"Capital number {i}?", "answer": f"city {i}"} for i in range(10)]
    write_jsonl(folder / "train.jsonl", plain[:6])
    write_jsonl(folder / "test.jsonl", plain[4:])  # rows 4 and 5 repeat training rows
    suite = qa_suite(folder, QAFields())
    assert len(suite.tasks("train")) == 6 and len(suite.tasks("test")) == 4
    write_jsonl(folder / "test.jsonl", [{"question": "Capital number 0?", "answer": "elsewhere"}])
    with pytest.raises(DatasetError, match="different question or answers"):
        qa_suite(folder, QAFields())


def test_bad_rows_are_named(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "fine?", "answer": "yes"}, {"question": "no gold"}])
    with pytest.raises(DatasetError, match=r"bad.jsonl: line 2: field 'answer'"):
        qa_suite(bad, QAFields())
    with pytest.raises(DatasetError, match="unknown split 'holdout'"):
        qa_suite([{"question": "q?", "answer": "a", "split": "holdout"}], QAFields())
    with pytest.raises(ValueError, match="exactly one of path= .* and rows="):
        QAEnv()


def test_exact_match_normalises_and_cannot_be_gamed():
    assert normalize_answer("  The Eiffel-Tower! ") == "eiffeltower"  # SQuAD drops punctuation, not spaces
    assert exact_match("the eiffel tower", ["Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    assert exact_match("", ["The"]) == 0.0 and exact_match("a", ["the"]) == 0.0  # an empty gold never matches


def close_enough(prediction: str, answers: list[str]) -> float:
    """A numeric scorer: 1 at the gold, falling linearly to 0 at 10 away; non-numbers score 0."""
    try:
        return max(0.0, 1.0 - abs(float(prediction) - float(answers[0])) / 10)
    except ValueError:
        return 0.0


@pytest.mark.parametrize("scorer", [close_enough, "test_qa_env:close_enough"])
def test_a_custom_scorer_sets_reward_and_the_threshold_sets_success(scorer):
    items = [{"question": f"{i} * 10 = ?", "answer": i * 10} for i in range(5)]
    env = QAEnv(rows=items, scorer=scorer, success_threshold=0.9)
    task = next(t for t in env.suite.tasks() if t.data["answers"] == ["30"])  # numbers become text answers
    reward, info = play(env, task.id, tool_call_message("answer", {"text": "29"}))
    assert reward == pytest.approx(0.9) and info["outcome"]["success"] is True
    reward, info = play(env, task.id, tool_call_message("answer", {"text": "25"}))
    assert reward == pytest.approx(0.5) and info["outcome"]["success"] is False
    assert info["reward_components"] == {"score": pytest.approx(0.5)}


def test_a_scorer_returning_nan_is_an_infrastructure_failure_not_a_reward():
    env = QAEnv(rows=[{"question": "q?", "answer": "a"}], scorer=lambda p, a: float("nan"))
    reward, info = play(env, env.suite.tasks()[0].id, tool_call_message("answer", {"text": "a"}))
    assert reward == 0.0 and "outcome" not in info and "returned nan" in info["infra_error"]["message"]


def test_registered_kwargs_reach_the_env_and_relative_paths_are_resolved(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "t.jsonl", rows(9))
    monkeypatch.chdir(tmp_path)
    spec = register_qa("test/qa-kwargs-v0", path="t.jsonl", name="kw", max_turns=2, **FIELDS)
    monkeypatch.chdir("/")
    env = make("test/qa-kwargs-v0", split="dev")
    assert spec.kwargs["path"] == str(tmp_path / "t.jsonl")
    assert env.env_id == "test/qa-kwargs-v0" and env.max_turns == 2 and env.suite.name == "kw"
    assert {t.family for t in env.suite.tasks()} == {"topic-0", "topic-1", "topic-2"}


def test_the_env_passes_envs_check(tmp_path):
    data = write_jsonl(tmp_path / "t.jsonl", rows(30))
    report = EnvChecker("test/qa-check-v0", lambda: QAEnv(path=data, **FIELDS), limit=None).run()
    failed = [f"{r.name}: {r.details}" for r in report.results if not r.ok]
    assert report.ok, failed
    oracle = next(r for r in report.results if r.name == "oracle solves every task")
    assert "test: oracle solved 10/10" in oracle.warnings


def test_envs_check_finds_a_row_whose_gold_cannot_score(tmp_path):
    items = [{"question": "fine?", "answer": "yes", "split": "test"}, {"question": "broken?", "answer": "The",
                                                                         "split": "test"}]
    report = EnvChecker("test/qa-broken-v0", lambda: QAEnv(rows=items)).run()
    oracle = next(r for r in report.results if r.name == "oracle solves every task")
    assert not oracle.ok and len(oracle.details) == 1 and "without success" in oracle.details[0]


def test_hugging_face_datasets_and_parquet_are_read_like_jsonl(tmp_path):
    datasets = pytest.importorskip("datasets")
    items = rows(30, with_split=False)
    from_rows = {t.id for t in QAEnv(rows=items, **FIELDS).suite.tasks()}
    ddict = datasets.DatasetDict({"train": datasets.Dataset.from_list(items[:20]),
                                  "validation": datasets.Dataset.from_list(items[20:])})
    suite = QAEnv(rows=ddict, **FIELDS).suite
    assert {t.id for t in suite.tasks()} == from_rows
    assert len(suite.tasks("train")) == 20 and len(suite.tasks("dev")) == 10 and not suite.tasks("test")
    ddict.save_to_disk(str(tmp_path / "saved"))
    saved = QAEnv(path=tmp_path / "saved", **FIELDS).suite
    assert [t.id for t in saved.tasks("dev")] == [t.id for t in suite.tasks("dev")]
    datasets.Dataset.from_list(items).to_parquet(str(tmp_path / "test.parquet"))
    parquet = QAEnv(path=tmp_path / "test.parquet", **FIELDS).suite  # the file's name announces its split
    assert {t.id for t in parquet.tasks("test")} == from_rows


def test_a_repeated_id_with_another_question_is_a_data_error():
    with pytest.raises(DatasetError, match=r"row 1: repeats .*'id': '7'.* different question"):
        qa_suite([{"id": 7, "question": "one?", "answer": "a"}, {"id": 7, "question": "two?", "answer": "a"}],
                 QAFields())
