"""Behaviour of the SQL environment's data generator: schemas, seeded databases and program-first questions."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from agentgym.envs.sql import questions as Q
from agentgym.envs.sql.database import (
    INSTANCES_PER_FAMILY,
    build_database,
    database_path,
    ensure_databases,
    stable_seed,
)
from agentgym.envs.sql.schemas import FAMILIES, ddl, foreign_keys, plural
from agentgym.envs.sql.questions import (
    MAX_ROWS,
    TEMPLATE_KINDS,
    build_question,
    generate_questions,
    group_key,
    hardness,
    supported_kinds,
)
from agentgym.envs.sql.questions.instances import InstanceData, valid_gold
from agentgym.envs.sql.questions.template import Built

REQUIRED_FAMILIES = {"retail", "school", "hospital", "flights", "library", "hr", "music", "real_estate"}
COUNT = 200


@pytest.fixture(scope="module")
def db_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sqldb")


@pytest.fixture(scope="module")
def dbs(db_root: Path) -> dict[str, list[Path]]:
    return ensure_databases(db_root)


@pytest.fixture(scope="module")
def generated(dbs: dict[str, list[Path]]) -> dict[str, list[Q.SqlQuestion]]:
    return {fam: generate_questions(fam, paths, seed=0, count=COUNT) for fam, paths in dbs.items()}


def _rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------ schemas


def test_families_shape() -> None:
    assert REQUIRED_FAMILIES <= set(FAMILIES)
    assert len(FAMILIES) >= 8
    for fam in FAMILIES.values():
        assert 3 <= len(fam.tables) <= 8, fam.name
        names = [t.name for t in fam.tables]
        assert len(set(names)) == len(names)
        for t in fam.tables:
            assert t.pk.kind == "id" and t.pk.type == "INTEGER"
            assert t.column(t.label)  # label column exists
            assert len({c.name for c in t.columns}) == len(t.columns)
            for c in t.columns:
                assert c.type in ("INTEGER", "REAL", "TEXT", "DATE")
                assert c.nl and "_" not in c.nl, (t.name, c.name)
                if c.kind == "categorical":
                    assert len(c.vocab) >= 3 and len(set(c.vocab)) == len(c.vocab)
                    assert not any("'" in v for v in c.vocab)
                if c.kind == "bool":
                    assert c.true_phrase
        assert foreign_keys(fam), fam.name
        for e in foreign_keys(fam):
            assert e.parent in names and names.index(e.parent) <= names.index(e.child)
        assert any(c.kind == "date" for t in fam.tables for c in t.columns)
        conn = sqlite3.connect(":memory:")
        conn.executescript(ddl(fam))  # the DDL is valid SQLite
        assert "REFERENCES" in ddl(fam) and "PRIMARY KEY" in ddl(fam)
        conn.close()


def test_plural() -> None:
    assert plural("city") == "cities"
    assert plural("blood type") == "blood types"
    assert plural("status") == "statuses"
    assert plural("day") == "days"


def test_stable_seed_is_not_hash_based() -> None:
    assert stable_seed("retail", 0) == stable_seed("retail", 0)
    assert stable_seed("retail", 0) != stable_seed("retail", 1)
    assert stable_seed("a", "bc") != stable_seed("ab", "c")
    # fixed value: changing it would silently change every generated database
    assert stable_seed("x") == int.from_bytes(
        __import__("hashlib").sha256(b"x").digest()[:8], "big"
    )


# ------------------------------------------------------------------------------------------------ databases


def test_database_contents(dbs: dict[str, list[Path]]) -> None:
    assert set(dbs) == set(FAMILIES)
    for name, paths in dbs.items():
        fam = FAMILIES[name]
        assert len(paths) == INSTANCES_PER_FAMILY
        for path in paths:
            assert path == database_path(path.parents[1], name, paths.index(path))
            assert _rows(path, "PRAGMA foreign_key_check") == []
            assert _rows(path, "PRAGMA journal_mode") == [("delete",)]
            nulls = dup_text = dup_num = 0
            date_span = 0
            skewed = False
            for t in fam.tables:
                (n,) = _rows(path, f"SELECT COUNT(*) FROM {t.name}")[0]
                assert t.rows[0] <= n <= t.rows[1]
                for c in t.columns:
                    if c.nullable:
                        nulls += _rows(path, f"SELECT COUNT(*) FROM {t.name} WHERE {c.name} IS NULL")[0][0]
                    else:
                        assert _rows(path, f"SELECT COUNT(*) FROM {t.name} WHERE {c.name} IS NULL")[0][0] == 0 or c.kind == "fk"
                    dup = _rows(path, f"SELECT COUNT(*) - COUNT(DISTINCT {c.name}) FROM {t.name} WHERE {c.name} IS NOT NULL")[0][0]
                    if c.kind in ("person_name", "name"):
                        dup_text += dup
                    if c.kind in ("money", "numeric"):
                        dup_num += dup
                    if c.unique:
                        assert dup == 0
                    if c.kind == "date":
                        lo, hi = _rows(path, f"SELECT MIN({c.name}), MAX({c.name}) FROM {t.name}")[0]
                        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", lo) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", hi)
                        date_span = max(date_span, int(hi[:4]) - int(lo[:4]))
                    if c.kind == "categorical":
                        got = [r[0] for r in _rows(path, f"SELECT {c.name} FROM {t.name} WHERE {c.name} IS NOT NULL")]
                        assert set(got) <= set(c.vocab)
                        counts = sorted(Counter(got).values())
                        if len(counts) >= 4 and counts[-1] >= 3 * counts[0]:
                            skewed = True
            assert nulls > 0, name
            assert dup_text > 0 and dup_num > 0, name
            assert date_span >= 3, name
            assert skewed, name


def test_build_is_deterministic_and_instances_differ(tmp_path: Path) -> None:
    for name in ("retail", "hr"):
        fam = FAMILIES[name]
        a, b = tmp_path / f"{name}_a.sqlite", tmp_path / f"{name}_b.sqlite"
        build_database(fam, 0, a)
        build_database(fam, 0, b)
        assert a.read_bytes() == b.read_bytes()
        build_database(fam, 0, b)  # rebuilding over an existing file is fine too
        assert a.read_bytes() == b.read_bytes()
        images = []
        for k in range(3):
            p = tmp_path / f"{name}_{k}.sqlite"
            build_database(fam, k, p)
            images.append(p.read_bytes())
            assert not Path(str(p) + "-journal").exists()
        assert len(set(images)) == 3
        t = fam.tables[0]
        contents = [tuple(_rows(tmp_path / f"{name}_{k}.sqlite", f"SELECT * FROM {t.name}")) for k in range(3)]
        assert len(set(contents)) == 3


def test_ensure_databases_idempotent_and_atomic(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    first = ensure_databases(root, ["library", "music"])
    assert list(first) == ["library", "music"]
    files = [p for paths in first.values() for p in paths]
    assert all(p.is_file() for p in files)
    # A fixed, long-past mtime instead of a sleep: any rewrite (in place or by os.replace) changes it or the inode,
    # however coarse the file system's clock is.
    for p in files:
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in files}
    second = ensure_databases(root, ["library", "music"])
    assert second == first
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in files} == before
    leftovers = [p for p in root.rglob("*") if p.name.startswith(".tmp-") or p.name.endswith("-journal")]
    assert leftovers == []
    # a missing instance is rebuilt (identically); the others are untouched
    victim = first["library"][1]
    blob = victim.read_bytes()
    victim.unlink()
    ensure_databases(root, ["library"])
    assert victim.read_bytes() == blob
    assert first["library"][0].stat().st_ino == before[first["library"][0]][1]
    # a stale generator stamp rebuilds the family (new inode via os.replace), with identical bytes
    stamp = root / "music" / ".generator_stamp"
    assert stamp.is_file()
    stamp.write_text("generator=0\n")
    ensure_databases(root, ["music"])
    for p in first["music"]:
        assert p.stat().st_ino != before[p][1]
    assert [p.name for p in (root / "music").iterdir() if p.name.startswith(".tmp-")] == []


# ------------------------------------------------------------------------------------------------ questions


def test_generate_is_deterministic(dbs: dict[str, list[Path]], generated: dict[str, list[Q.SqlQuestion]]) -> None:
    for name in ("retail", "flights", "real_estate"):
        again = generate_questions(name, dbs[name], seed=0, count=COUNT)
        assert again == generated[name]
    other = generate_questions("retail", dbs["retail"], seed=1, count=50)
    assert [q.gold_sql for q in other] != [q.gold_sql for q in generated["retail"][:50]]


def test_counts_and_coverage(generated: dict[str, list[Q.SqlQuestion]]) -> None:
    assert len(TEMPLATE_KINDS) >= 12
    overall = set()
    for name, qs in generated.items():
        assert len(qs) >= 150, (name, len(qs))
        kinds = {q.template for q in qs}
        overall |= kinds
        assert len(supported_kinds(name)) >= 10
        assert kinds == set(supported_kinds(name)), (name, set(supported_kinds(name)) - kinds)
        assert {q.family for q in qs} == {name}
        assert len({q.difficulty for q in qs}) >= 3
        assert {q.difficulty for q in qs} <= {"easy", "medium", "hard", "extra"}
    assert len(overall) >= 12


def test_generation_fills_a_larger_request(dbs: dict[str, list[Path]]) -> None:
    # (how long building and generating take is measured in bench/sql_env_latency.py)
    for name in ("school", "hospital"):
        qs = generate_questions(name, dbs[name], seed=7, count=250)
        assert len(qs) >= 200


def _canon(rows: list[tuple], ordered: bool) -> tuple:
    norm = [tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows]
    return tuple(norm) if ordered else tuple(sorted(norm, key=repr))


def test_every_gold_runs_and_discriminates(
    dbs: dict[str, list[Path]], generated: dict[str, list[Q.SqlQuestion]]
) -> None:
    for name, qs in generated.items():
        for q in qs:
            assert not re.search(r"random\s*\(|'now'|current_", q.gold_sql, re.IGNORECASE)
            ordered = "order by" in q.gold_sql.lower()
            results = [_rows(p, q.gold_sql) for p in dbs[name]]
            for rows in results:
                assert rows, q.gold_sql
                assert len(rows) <= MAX_ROWS, q.gold_sql
                assert not all(v is None for r in rows for v in r), q.gold_sql
            assert len({_canon(r, ordered) for r in results}) > 1, q.gold_sql
            if "limit" in q.gold_sql.lower():
                assert ordered, q.gold_sql


def test_no_tie_at_order_by_cut(dbs: dict[str, list[Path]], generated: dict[str, list[Q.SqlQuestion]]) -> None:
    checked = 0
    for name, qs in generated.items():
        for q in qs:
            tree = sqlglot.parse_one(q.gold_sql, read="sqlite")
            order = tree.args.get("order")
            if order is None:
                continue
            limit = tree.args.get("limit")
            k = int(limit.expression.name) if limit is not None else 0
            key_query = tree.copy()
            key_query.set("expressions", [order.expressions[0].this.copy()])
            key_query.set("limit", None)
            for p in dbs[name]:
                keys = [r[0] for r in _rows(p, key_query.sql(dialect="sqlite"))]
                if k:
                    assert len(keys) > k and keys[k - 1] != keys[k], q.gold_sql
                    assert len(set(keys[:k])) == k, q.gold_sql
                else:
                    assert len(set(keys)) == len(keys), q.gold_sql
            checked += 1
    assert checked >= 40


def test_gold_and_text_unique(generated: dict[str, list[Q.SqlQuestion]]) -> None:
    for qs in generated.values():
        assert len({q.gold_sql for q in qs}) == len(qs)
        assert len({q.question for q in qs}) == len(qs)


def test_params_determine_question(generated: dict[str, list[Q.SqlQuestion]]) -> None:
    for qs in generated.values():
        for q in qs:
            assert json.loads(json.dumps(q.params)) == q.params
            assert build_question(q.family, q.template, q.params) == q


_QUOTED = re.compile(r"'[^']*'")


def test_question_text_has_no_repr_artefacts(generated: dict[str, list[Q.SqlQuestion]]) -> None:
    for qs in generated.values():
        for q in qs:
            assert q.question.count("'") % 2 == 0, q.question
            bare = _QUOTED.sub("LIT", q.question)
            for bad in ("None", "[", "]", "{", "}", "'", "  ", "_", "True", "False"):
                assert bad not in bare, (bad, q.question)
            assert q.question[0].isupper() and q.question[-1] in ".?", q.question
            if q.evidence is not None:
                assert q.evidence and "None" not in q.evidence


def test_question_mentions_order_and_limit(generated: dict[str, list[Q.SqlQuestion]]) -> None:
    for qs in generated.values():
        for q in qs:
            tree = sqlglot.parse_one(q.gold_sql, read="sqlite")
            limit = tree.args.get("limit") if isinstance(tree, exp.Select) else None
            if limit is not None:
                k = int(limit.expression.name)
                if k > 1:
                    assert str(k) in q.question and ("sorted" in q.question or "first" in q.question), q.question
                else:
                    assert re.search(r"\b(highest|lowest|earliest|latest)\b", q.question), q.question
            elif isinstance(tree, exp.Select) and tree.args.get("order") is not None:
                assert "sorted" in q.question, q.question


def test_group_key_ignores_literals_only(generated: dict[str, list[Q.SqlQuestion]]) -> None:
    base = {"table": "products", "proj": ["name"], "cond": {"col": "category", "op": "=", "val": "Toys"}, "phr": 0}
    a = build_question("retail", "filter_eq", base)
    b = build_question("retail", "filter_eq", {**base, "cond": {"col": "category", "op": "=", "val": "Books"}, "phr": 2})
    c = build_question("retail", "filter_eq", {**base, "cond": {"col": "brand", "op": "=", "val": "Acme"}})
    d = build_question("retail", "filter_eq", {**base, "proj": ["name", "price"]})
    assert a.gold_sql != b.gold_sql and a.group_key == b.group_key
    assert len({a.group_key, c.group_key, d.group_key}) == 3
    assert group_key("retail", "filter_eq", base) != group_key("retail", "filter_in", base)
    assert group_key("retail", "filter_eq", base) != group_key("hr", "filter_eq", base)
    # in generated data: same key with different SQL exists, and keys never cross templates or families
    by_key: dict[str, set[str]] = {}
    owners: dict[str, tuple[str, str]] = {}
    for qs in generated.values():
        for q in qs:
            by_key.setdefault(q.group_key, set()).add(q.gold_sql)
            assert owners.setdefault(q.group_key, (q.family, q.template)) == (q.family, q.template)
            assert q.group_key.startswith(f"{q.family}/{q.template}/")
    assert any(len(s) > 1 for s in by_key.values())
    assert len(by_key) > 0.3 * sum(len(s) for s in by_key.values())


def test_hardness_labels() -> None:
    assert hardness("SELECT name FROM t WHERE a = 1") == "easy"
    assert hardness("SELECT COUNT(*) FROM t") == "easy"
    assert hardness("SELECT a, COUNT(*) FROM t GROUP BY a") == "medium"
    assert hardness("SELECT T1.a FROM t AS T1 JOIN u AS T2 ON T1.x = T2.y WHERE T2.b = 1") == "medium"
    assert (
        hardness("SELECT DISTINCT T1.a FROM t AS T1 JOIN u AS T2 ON T1.x = T2.y JOIN v AS T3 ON T2.z = T3.w WHERE T3.c = 1")
        == "hard"
    )
    assert hardness("SELECT a FROM t WHERE x > (SELECT AVG(x) FROM t)") == "hard"
    assert hardness("SELECT a FROM t WHERE b = 1 INTERSECT SELECT a FROM t WHERE c = 2") == "hard"
    assert hardness("SELECT a, b FROM t WHERE b > (SELECT AVG(b) FROM t) AND c = 1") == "extra"


def test_degenerate_gold_is_rejected(dbs: dict[str, list[Path]]) -> None:
    fam = FAMILIES["retail"]
    data = InstanceData(fam, dbs["retail"])
    try:
        ok = Built("SELECT status, COUNT(*) FROM orders GROUP BY status", "q")
        assert valid_gold(data, ok)
        for sql in (
            "SELECT name FROM products WHERE price < 0",  # empty
            "SELECT COUNT(*) FROM sqlite_master",  # identical on every instance
            "SELECT NULL FROM stores",  # all NULL
            "SELECT MAX(price) FROM products WHERE category = 'nope'",  # single NULL
            "SELECT order_id FROM orders",  # too many rows
            "SELECT name FROM products ORDER BY RANDOM() LIMIT 3",  # non-deterministic
            "SELECT nope FROM products",  # error
        ):
            assert not valid_gold(data, Built(sql, "q")), sql
        tie = Built(
            "SELECT category FROM products ORDER BY category LIMIT 1",
            "q",
            order_key_sql="SELECT category FROM products ORDER BY category",
            limit=1,
        )
        assert not valid_gold(data, tie)
        unordered_keys = Built(
            "SELECT name, region FROM stores WHERE region = 'North' ORDER BY region",
            "q",
            order_key_sql="SELECT region FROM stores WHERE region = 'North' ORDER BY region",
        )
        assert not valid_gold(data, unordered_keys)
    finally:
        data.close()


def test_files_unchanged_by_generation(dbs: dict[str, list[Path]]) -> None:
    before = {p: p.read_bytes() for p in dbs["school"]}
    generate_questions("school", dbs["school"], seed=3, count=30)
    assert {p: p.read_bytes() for p in dbs["school"]} == before
    assert not any(n.endswith(("-journal", "-wal")) for n in os.listdir(dbs["school"][0].parent))
