"""Bring-your-own SQL data: Spider and BIRD layouts written by the tests, benchmarked like generated tasks."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import agentgym
from agentgym.benchmark import BenchConfig, run_benchmark
from agentgym.errors import DatasetError
from agentgym.policies.oracle import OraclePolicy
from agentgym.policies.random_policy import RandomPolicy

SINGERS = [("Ann", "France", 31), ("Bo", "Japan", 45), ("Cy", "France", 27), ("Di", "Peru", 38)]
OTHER_SINGERS = [("Ed", "Chile", 52), ("Flo", "France", 33), ("Gus", "Japan", 29)]
QUESTIONS = [
    ("How many singers are there?", "SELECT count(*) FROM singer"),
    ("List the names of singers from France.", "SELECT name FROM singer WHERE country = 'France'"),
    ("What is the average age of singers?", "SELECT avg(age) FROM singer"),
    ("Name the oldest singer.", "SELECT name FROM singer ORDER BY age DESC LIMIT 1"),
    ("How many concerts did each singer give?",
     "SELECT T1.name, count(*) FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id GROUP BY T1.name"),
    ("Which countries have more than one singer?",
     "SELECT country FROM singer GROUP BY country HAVING count(*) > 1"),
]


def make_db(path: Path, singers) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);"
                      "CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, singer_id INTEGER REFERENCES singer,"
                      " year INTEGER);")
    con.executemany("INSERT INTO singer (name, country, age) VALUES (?, ?, ?)", singers)
    con.executemany("INSERT INTO concert (singer_id, year) VALUES (?, ?)",
                    [(1 + i % len(singers), 2000 + i) for i in range(7)])
    con.commit()
    con.close()


def write_spider(root: Path) -> Path:
    make_db(root / "database" / "concert_singer" / "concert_singer.sqlite", SINGERS)
    make_db(root / "database" / "concert_singer" / "concert_singer_ts1.sqlite", OTHER_SINGERS)  # test-suite copy
    (root / "tables.json").write_text(json.dumps([{"db_id": "concert_singer", "table_names_original": ["singer", "concert"]}]))
    entries = [{"db_id": "concert_singer", "question": q, "query": s} for q, s in QUESTIONS]
    (root / "train_spider.json").write_text(json.dumps(entries[:2]))
    (root / "dev.json").write_text(json.dumps(entries[2:]))
    return root


def write_bird(root: Path) -> Path:
    make_db(root / "dev" / "dev_databases" / "music" / "music.sqlite", SINGERS)
    entries = [{"question_id": i, "db_id": "music", "question": q, "SQL": s,
                "evidence": "age is in years" if i % 2 else "", "difficulty": "simple"}
               for i, (q, s) in enumerate(QUESTIONS)]
    (root / "dev" / "dev.json").write_text(json.dumps(entries))
    return root


async def test_spider_layout_loads_with_its_own_splits_and_test_suite_instances(tmp_path):
    root = write_spider(tmp_path / "spider")
    env = agentgym.make("agentgym/sql-v0", dataset="spider", path=str(root), split="dev")
    suite = await env.aload_suite()
    assert len(suite.tasks("train")) == 2 and len(suite.tasks("dev")) == 4 and not suite.tasks("test")
    assert [p.name for p in env.world.databases["concert_singer"]] == ["concert_singer.sqlite",
                                                                       "concert_singer_ts1.sqlite"]
    obs, info = await env.areset(seed=0)
    assert "CREATE TABLE singer" in obs["messages"][1]["content"] and info["split"] == "dev"
    # right on the shown database, wrong on the test-suite copy: not a match
    task = next(t for t in suite.tasks("dev") if "oldest" in t.data["question"])
    await env.areset(options={"task_id": task.id})
    _, reward, _, _, info = await env.astep("<solution>SELECT name FROM singer WHERE name = 'Bo'</solution>")
    assert reward == 0.0 and info["reward_components"]["ex_set"] == 1.0
    await env.aclose()


@pytest.mark.parametrize("layout", ["spider", "bird"])
def test_oracle_scores_one_and_random_near_zero_through_the_cli(tmp_path, layout):
    root = (write_spider if layout == "spider" else write_bird)(tmp_path / layout)
    for policy, check in (("oracle", lambda r: r == 1.0), ("random", lambda r: r <= 0.25)):
        out = tmp_path / f"{layout}-{policy}"
        run = subprocess.run([sys.executable, "-m", "agentgym.cli", "bench", "agentgym/sql-v0", "--policy", policy,
                              "--split", "dev", "--env", f"dataset={layout}", "--env", f"path={root}",
                              "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        results = json.loads((out / "results.json").read_text())
        assert results["episodes"] == (4 if layout == "spider" else 6) and check(results["success_rate"]), results
        assert "ex_set" in results["reward_components"] and results["manifest_matches_pinned"] is None


async def test_bird_evidence_is_shown_as_a_hint(tmp_path):
    env = agentgym.make("agentgym/sql-v0", dataset="bird", path=str(write_bird(tmp_path / "bird")), split="dev")
    suite = await env.aload_suite()
    with_hint = [t for t in suite.tasks("dev") if t.data["evidence"]]
    assert len(with_hint) == 3
    obs, _ = await env.areset(options={"task_id": with_hint[0].id})
    assert "Hint: age is in years" in obs["messages"][1]["content"]


def _spider_error(tmp_path, mutate) -> str:
    root = write_spider(tmp_path / "bad")
    mutate(root)
    with pytest.raises(DatasetError) as info:
        agentgym.envs.sql.datasets.load_spider(root)  # type: ignore[attr-defined]
    return str(info.value)


def test_malformed_files_give_one_clear_error_naming_file_and_field(tmp_path):
    import agentgym.envs.sql.datasets  # noqa: F401

    def drop_query(root):
        entries = json.loads((root / "dev.json").read_text())
        del entries[1]["query"]
        (root / "dev.json").write_text(json.dumps(entries))

    assert _spider_error(tmp_path / "a", drop_query).endswith("dev.json: entry 1: missing field 'query'")

    def unknown_db(root):
        entries = json.loads((root / "dev.json").read_text())
        entries[0]["db_id"] = "nope"
        (root / "dev.json").write_text(json.dumps(entries))

    assert "dev.json: entry 0: unknown db_id 'nope'" in _spider_error(tmp_path / "b", unknown_db)

    def corrupt(root):
        (root / "database" / "concert_singer" / "concert_singer_ts1.sqlite").write_bytes(b"not a database" * 100)

    assert "concert_singer_ts1.sqlite: unreadable database" in _spider_error(tmp_path / "c", corrupt)

    def broken_json(root):
        (root / "dev.json").write_text("[{")

    assert "dev.json: not valid JSON" in _spider_error(tmp_path / "d", broken_json)


def test_cli_reports_dataset_errors_in_one_line_and_envs_show_lists_the_options(tmp_path):
    run = subprocess.run([sys.executable, "-m", "agentgym.cli", "bench", "agentgym/sql-v0", "--policy", "oracle",
                          "--split", "dev", "--env", "dataset=spider", "--env", f"path={tmp_path / 'missing'}",
                          "--out", str(tmp_path / "o"), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "not a directory" in run.stderr and "Traceback" not in run.stderr
    shown = subprocess.run([sys.executable, "-m", "agentgym.cli", "envs", "show", "agentgym/sql-v0"],
                           capture_output=True, text=True, timeout=300, env={"COLUMNS": "200", **__import__("os").environ})
    assert "dataset" in shown.stdout and "spider" in shown.stdout and "bird" in shown.stdout
