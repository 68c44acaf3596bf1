"""Pinned, hand-computed cases for SQL result comparison, partial rewards and test-suite evaluation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agentgym.envs.sql.evaluation import (
    SqlEvaluation,
    clear_gold_cache,
    evaluate_sql,
    ngram_jaccard,
    order_matters,
    results_match,
    schema_linking_jaccard,
    set_match,
)
from agentgym.envs.sql.executor import QueryResult, SqlExecutor


def _qr(columns: list[str], rows: list[tuple], *, error: str | None = None, truncated: bool = False) -> QueryResult:
    return QueryResult(columns=columns, rows=rows, truncated=truncated, error=error, elapsed_ms=0.0)


# -- results_match / set_match -------------------------------------------------------------------------------


def test_bag_vs_set_semantics() -> None:
    gold = [("Paris",), ("Paris",)]
    pred = [("Paris",)]
    assert results_match(gold, pred, ordered=False) is False
    assert set_match(gold, pred) is True
    assert results_match([("a",), ("a",), ("b",)], [("a",), ("b",), ("b",)], ordered=False) is False
    assert set_match([("a",), ("a",), ("b",)], [("a",), ("b",), ("b",)]) is True
    assert set_match([("a",)], [("b",)]) is False


def test_row_order_matters_only_when_ordered() -> None:
    gold = [("a", 1), ("b", 2), ("c", 3)]
    pred = [("c", 3), ("a", 1), ("b", 2)]
    assert results_match(gold, pred, ordered=False) is True
    assert results_match(gold, pred, ordered=True) is False
    assert results_match(gold, list(gold), ordered=True) is True


def test_column_permutation_is_allowed() -> None:
    gold = _qr(["name", "age"], [("ann", 30), ("bob", 41), ("cy", 30)])
    pred = _qr(["age", "name"], [(41, "bob"), (30, "ann"), (30, "cy")])
    assert results_match(gold, pred, ordered=False) is True
    ordered_pred = _qr(["age", "name"], [(30, "ann"), (41, "bob"), (30, "cy")])
    assert results_match(gold, ordered_pred, ordered=True) is True
    # Permuting columns must not let rows be re-paired: (ann, 41) does not exist in gold.
    assert results_match(gold.rows, [(41, "ann"), (30, "bob"), (30, "cy")], ordered=False) is False


def test_column_permutation_with_ambiguous_columns() -> None:
    # Columns a and b have identical multisets; only one assignment pairs the values correctly.
    gold = [(1, 2, "x"), (2, 1, "y")]
    pred = [("x", 2, 1), ("y", 1, 2)]  # = (c, b, a)
    assert results_match(gold, pred, ordered=False) is True
    assert results_match(gold, [("x", 1, 2), ("y", 1, 2)], ordered=False) is False


def test_column_count_must_match() -> None:
    assert results_match([(1, 2)], [(1,)], ordered=False) is False
    assert results_match([(1,)], [(1, 1)], ordered=False) is False
    assert results_match(_qr(["a"], []), _qr(["a", "b"], []), ordered=False) is False
    assert results_match(_qr(["a"], []), _qr(["b"], []), ordered=False) is True  # empty == empty


def test_numeric_tolerance_and_null() -> None:
    assert results_match([(3,)], [(3.0,)], ordered=True) is True
    assert results_match([(0.3,)], [(0.1 + 0.2,)], ordered=True) is True
    assert results_match([(0.30000000000000004,)], [(0.3,)], ordered=False) is True
    assert results_match([(2.5,)], [(2,)], ordered=True) is False  # integer division is a real difference
    assert results_match([(1234567,)], [(1234568,)], ordered=True) is False
    assert results_match([(None,)], [(None,)], ordered=True) is True
    assert results_match([(None,)], [(0,)], ordered=True) is False
    assert results_match([(None,)], [("",)], ordered=True) is False
    assert results_match([("3",)], [(3,)], ordered=True) is False  # text is not a number
    assert set_match([(3, None)], [(3.0, None)]) is True


def test_errored_or_truncated_results_never_match() -> None:
    gold = _qr(["a"], [(1,)])
    assert results_match(gold, _qr([], [], error="no such column: a"), ordered=False) is False
    assert results_match(gold, _qr(["a"], [(1,)], truncated=True), ordered=False) is False
    assert set_match(gold, _qr([], [], error="boom")) is False


# -- order_matters ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql,expected",
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("select a from t order by a desc limit 3;", True),
        ("SELECT a FROM (SELECT a FROM t ORDER BY a)", False),
        ("SELECT a FROM t", False),
        ("SELECT a FROM t WHERE b = 'order by'", False),
        ("SELECT row_number() OVER (ORDER BY a) FROM t", False),
        ("WITH x AS (SELECT a FROM t ORDER BY a) SELECT a FROM x", False),
        ("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1", True),
    ],
)
def test_order_matters(sql: str, expected: bool) -> None:
    assert order_matters(sql) is expected


# -- partial rewards --------------------------------------------------------------------------------------------


def test_schema_linking_jaccard() -> None:
    gold = "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.singer_id"
    # gold: {singer, concert, singer.name, singer.id, concert.singer_id}; pred: {singer, singer.name} -> 2/5
    assert schema_linking_jaccard("SELECT name FROM singer", gold) == pytest.approx(2 / 5)
    # Aliases and qualification do not matter.
    same = "SELECT s.name FROM singer s JOIN concert c ON c.singer_id = s.id"
    assert schema_linking_jaccard(same, gold) == 1.0
    # pred {t, t.a}; gold {t, u} (two tables in scope: bare 'a', 'b') -> {t} / {t, t.a, u, a, b} = 1/5
    assert schema_linking_jaccard("SELECT a FROM t", "SELECT a, b FROM t, u") == pytest.approx(1 / 5)
    assert schema_linking_jaccard("SELEC FROM (((", gold) == 0.0


def test_ngram_jaccard() -> None:
    gold = "select  name from singer where age > 20;"
    # pred bigrams {select name, name from, from singer} all in gold's 7 bigrams -> 3/7
    assert ngram_jaccard("SELECT name FROM singer", gold) == pytest.approx(3 / 7)
    assert ngram_jaccard("SELECT name\n  FROM singer -- x", "select name from singer") == 1.0
    # String literals keep their case: the bigram (=, 'France') differs -> 6/8
    assert ngram_jaccard(
        "SELECT name FROM singer WHERE country = 'France'", "select name from singer where country='france'"
    ) == pytest.approx(6 / 8)
    # unigrams: {select, a, from, t} vs {select, b, from, t} -> 3/5
    assert ngram_jaccard("SELECT a FROM t", "SELECT b FROM t", n=1) == pytest.approx(3 / 5)


# -- evaluate_sql over a test suite -----------------------------------------------------------------------------

INSTANCES = [
    # Instance 0: the only people over 30 all live in Paris, so a wrong "city = 'Paris'" query coincides.
    [("ann", 35, "Paris"), ("bob", 25, "Rome"), ("cy", 41, "Paris"), ("dee", 30, "Oslo")],
    [("ann", 35, "Oslo"), ("bob", 25, "Paris"), ("cy", 41, "Paris"), ("eve", 31, "Rome")],
    [("fay", 50, "Rome"), ("gus", 18, "Paris"), ("gus", 60, "Rome"), ("hal", 31, "Lima")],
]


@pytest.fixture
def instance_paths(tmp_path: Path) -> list[Path]:
    paths = []
    for i, rows in enumerate(INSTANCES):
        path = tmp_path / f"people_{i}.sqlite"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE people (name TEXT, age INTEGER, city TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?)", rows)
        conn.commit()
        conn.close()
        paths.append(path)
    return paths


@pytest.fixture
async def ex():
    clear_gold_cache()
    async with SqlExecutor(workers=2) as executor:
        yield executor


GOLD = "SELECT name FROM people WHERE age > 30"


async def test_equivalent_prediction_matches_every_instance(ex: SqlExecutor, instance_paths: list[Path]) -> None:
    ev = await evaluate_sql(ex, instance_paths, GOLD, "select p.name from people p where not (p.age <= 30);")
    assert isinstance(ev, SqlEvaluation)
    assert ev.test_suite_match is True
    assert ev.per_instance == [True, True, True]
    assert ev.set_match and ev.syntax_ok and ev.error is None
    assert ev.components()["ex_test_suite"] == 1.0
    assert set(ev.components()) == {"ex_test_suite", "ex_set", "syntax_ok", "schema_jaccard", "ngram_jaccard"}
    assert all(isinstance(v, float) for v in ev.components().values())


async def test_coincidental_prediction_fails_the_test_suite(ex: SqlExecutor, instance_paths: list[Path]) -> None:
    ev = await evaluate_sql(ex, instance_paths, GOLD, "SELECT name FROM people WHERE city = 'Paris'")
    assert ev.per_instance == [True, False, False]
    assert ev.test_suite_match is False
    assert ev.set_match is True  # BIRD-style EX on the first instance is fooled
    assert ev.syntax_ok is True and ev.error is None
    assert ev.components()["ex_test_suite"] == 0.0 and ev.components()["ex_set"] == 1.0


async def test_duplicates_and_order_follow_the_gold(ex: SqlExecutor, instance_paths: list[Path]) -> None:
    # Instance 2 has two 'gus' rows: DISTINCT drops one, so the bag comparison fails there.
    gold = "SELECT name FROM people WHERE age > 15"
    ev = await evaluate_sql(ex, instance_paths, gold, "SELECT DISTINCT name FROM people WHERE age > 15")
    assert ev.per_instance == [True, True, False] and not ev.test_suite_match
    ordered_gold = "SELECT name, age FROM people ORDER BY age DESC"
    ev = await evaluate_sql(ex, instance_paths, ordered_gold, "SELECT age, name FROM people ORDER BY age DESC")
    assert ev.test_suite_match
    ev = await evaluate_sql(ex, instance_paths, ordered_gold, "SELECT age, name FROM people ORDER BY age ASC")
    assert not ev.test_suite_match and ev.per_instance == [False, False, False]


async def test_syntax_error_reported(ex: SqlExecutor, instance_paths: list[Path]) -> None:
    ev = await evaluate_sql(ex, instance_paths, GOLD, "SELEC name FROM people WHERE age > 30")
    assert ev.syntax_ok is False
    assert ev.test_suite_match is False and ev.set_match is False
    assert ev.per_instance == [False, False, False]
    assert ev.error is not None and "syntax error" in ev.error
    assert ev.components()["syntax_ok"] == 0.0

    ev = await evaluate_sql(ex, instance_paths, GOLD, "SELECT nope FROM people")
    assert not ev.syntax_ok and "no such column" in (ev.error or "")


async def test_runtime_error_and_write_attempts_do_not_match(ex: SqlExecutor, instance_paths: list[Path]) -> None:
    ev = await evaluate_sql(ex, instance_paths, GOLD, "DELETE FROM people", timeout_s=1.0)
    assert not ev.test_suite_match and ev.error is not None
    ev = await evaluate_sql(
        ex,
        instance_paths,
        GOLD,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT name FROM people, c LIMIT -1",
        timeout_s=0.5,
    )
    assert ev.syntax_ok and not ev.test_suite_match
    assert ev.error is not None and "deadline" in ev.error
