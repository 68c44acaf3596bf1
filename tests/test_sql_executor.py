"""Behavioural tests for the sandboxed SQL executor: results, hostile SQL, recovery, limits, concurrency."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import signal
import sqlite3
import stat
import sys
import time
import uuid
from pathlib import Path

import pytest

from agentgym.envs.sql.executor import QueryResult, SqlExecutor, close_shared_executor, shared_executor
from agentgym.processes import alive, wait_gone

BLOB = bytes(range(256)) + b"\x00\xff"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlexec") / "fixture.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, note TEXT, data BLOB);
        CREATE TABLE big (x INTEGER);
        CREATE TABLE many (x INTEGER);
        CREATE INDEX idx_t_name ON t(name);
        """
    )
    conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        [
            (1, "alice", 0.1, None, BLOB),
            (2, "bób ✓", 1e300, "x", b""),
            (3, "carol", -2.5, "", None),
            (4, None, 3.0, "'quoted'", b"\x00"),
        ],
    )
    conn.executemany("INSERT INTO big VALUES (?)", [(i,) for i in range(3000)])
    conn.executemany("INSERT INTO many VALUES (?)", [(i,) for i in range(50_000)])
    conn.commit()
    conn.close()
    return path


@pytest.fixture
async def ex():
    async with SqlExecutor(workers=2) as executor:
        yield executor


async def test_select_returns_columns_and_exact_values(ex: SqlExecutor, db: Path) -> None:
    res = await ex.execute(db, "SELECT id, name, score, note, data FROM t ORDER BY id")
    assert isinstance(res, QueryResult)
    assert res.ok and res.error is None and not res.truncated
    assert res.columns == ["id", "name", "score", "note", "data"]
    assert res.rows == [
        (1, "alice", 0.1, None, BLOB),
        (2, "bób ✓", 1e300, "x", b""),
        (3, "carol", -2.5, "", None),
        (4, None, 3.0, "'quoted'", b"\x00"),
    ]
    assert all(isinstance(r, tuple) for r in res.rows)
    assert type(res.rows[0][0]) is int and type(res.rows[3][2]) is float and type(res.rows[0][4]) is bytes
    assert res.elapsed_ms > 0

    res = await ex.execute(db, "SELECT 0.1 + 0.2 AS f, 9007199254740993 AS i, 1e999 AS inf, -0.0 AS nz")
    assert res.rows == [(0.1 + 0.2, 9007199254740993, float("inf"), -0.0)]


async def test_trailing_semicolon_and_comments_are_one_statement(ex: SqlExecutor, db: Path) -> None:
    for sql in ("SELECT count(*) FROM t;", "SELECT count(*) FROM t ;  -- done\n", "/* c */ SELECT count(*) FROM t; ;"):
        res = await ex.execute(db, sql)
        assert res.ok, (sql, res.error)
        assert res.rows == [(4,)]
    res = await ex.execute(db, "SELECT ';' || '--' AS s")
    assert res.rows == [(";--",)]


async def test_introspection_pragmas_and_table_functions_allowed(ex: SqlExecutor, db: Path) -> None:
    res = await ex.execute(db, "PRAGMA table_info(t)")
    assert res.ok, res.error
    assert [r[1] for r in res.rows] == ["id", "name", "score", "note", "data"]
    res = await ex.execute(db, "SELECT name FROM pragma_index_list('t')")
    assert res.ok and res.rows == [("idx_t_name",)]
    res = await ex.execute(db, "SELECT value FROM json_each('[1,2]')")
    assert res.ok and res.rows == [(1,), (2,)]


HOSTILE = [
    ("DROP TABLE t", "not authorized"),
    ("DELETE FROM t", "not authorized"),
    ("UPDATE t SET name = 'x'", "not authorized"),
    ("INSERT INTO t(id) VALUES (99)", "not authorized"),
    ("CREATE TABLE evil (x)", "not authorized"),
    ("WITH x AS (SELECT 1) DELETE FROM t", "not authorized"),
    ("ATTACH DATABASE '{tmp}/x.db' AS x", "not authorized"),
    ("PRAGMA writable_schema=1", "not authorized"),
    ("PRAGMA journal_mode=WAL", "not authorized"),
    ("PRAGMA query_only=0", "not authorized"),
    ("SELECT * FROM pragma_journal_mode", "not authorized"),
    ("VACUUM", "not authorized"),
    ("VACUUM INTO '{tmp}/y.db'", "not authorized"),
    ("BEGIN IMMEDIATE", "not authorized"),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c", "deadline"),
    ("SELECT count(*) FROM big a, big b, big c", "deadline"),
    ("SELECT randomblob(20000000)", "limit"),
    ("SELECT zeroblob(50000000)", "limit"),
    ("SELECT length(group_concat(printf('%.1000c', 'y'))) FROM big", "limit"),
    ("SELECT 1; DROP TABLE t", "only one statement"),
    ("SELECT 1; SELECT 2", "only one statement"),
    ("SELECT load_extension('x')", "load_extension"),
]


@pytest.mark.parametrize("sql,expected", HOSTILE, ids=[h[0][:40] for h in HOSTILE])
async def test_hostile_sql_gets_clear_error_and_db_unchanged(
    ex: SqlExecutor, db: Path, tmp_path: Path, sql: str, expected: str
) -> None:
    before = _sha256(db)
    files_before = sorted(os.listdir(db.parent))
    sql = sql.format(tmp=tmp_path)
    res = await ex.execute(db, sql, timeout_s=1.0)
    assert res.error is not None, f"{sql!r} was allowed: {res}"
    assert expected in res.error, res.error
    assert "\n" not in res.error
    assert res.rows == []
    assert _sha256(db) == before
    assert sorted(os.listdir(db.parent)) == files_before  # no -journal/-wal/-shm left behind
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "y.db").exists()
    # The executor still answers normal queries afterwards.
    ok = await ex.execute(db, "SELECT count(*) FROM t")
    assert ok.ok and ok.rows == [(4,)]


async def test_huge_printf_string_is_never_materialised(ex: SqlExecutor, db: Path) -> None:
    # SQLite 3.40's printf() yields NULL (newer versions raise "string or blob too big") once the result would
    # exceed SQLITE_LIMIT_LENGTH; either way no 10 MB value comes back.
    res = await ex.execute(db, "SELECT printf('%.*c', 10000000, 'x')", timeout_s=2.0)
    assert (res.error is not None and "limit" in res.error) or res.rows == [(None,)], res


async def test_deadline_stops_a_runaway_query_and_never_fires_early(ex: SqlExecutor, db: Path) -> None:
    # Only the lower bound is a property of the executor: how late the answer comes depends on the machine's load.
    t0 = time.monotonic()
    res = await ex.execute(db, "SELECT count(*) FROM big a, big b, big c", timeout_s=0.5)
    wall = time.monotonic() - t0
    assert res.error == "query exceeded the 0.5 s deadline"
    assert wall >= 0.5


async def test_killed_worker_is_replaced_transparently(ex: SqlExecutor, db: Path) -> None:
    await asyncio.gather(*(ex.execute(db, "SELECT 1") for _ in range(4)))
    pids = ex.worker_pids()
    assert len(pids) == 2
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    res = await ex.execute(db, "SELECT name FROM t WHERE id = 1")
    assert res.ok and res.rows == [("alice",)]
    results = await asyncio.gather(*(ex.execute(db, "SELECT count(*) FROM t") for _ in range(6)))
    assert all(r.rows == [(4,)] for r in results)
    assert not set(ex.worker_pids()) & set(pids)


async def test_cancelled_query_does_not_poison_the_pool(db: Path) -> None:
    async with SqlExecutor(workers=1) as ex:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ex.execute(db, "SELECT count(*) FROM big a, big b, big c", timeout_s=5), 0.3)
        res = await ex.execute(db, "SELECT 42")
        assert res.rows == [(42,)]


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / f"fake-python-{uuid.uuid4().hex}.sh"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def test_hung_worker_is_killed_at_deadline_plus_grace(tmp_path: Path, db: Path) -> None:
    # A "worker" that never answers stands in for a C-level hang.
    async with SqlExecutor(workers=1, python=_script(tmp_path, "exec sleep 60"), grace_s=0.3) as ex:
        await ex.start()
        hung = ex.worker_pids()
        assert len(hung) == 1
        res = await ex.execute(db, "SELECT 1", timeout_s=0.5)
        assert res.error == "query exceeded the 0.5 s deadline"
        assert res.rows == []
        assert ex.worker_pids() == []
        assert wait_gone(hung, 30) == []  # killed, not merely forgotten (sleep 60 would outlive the test)


async def test_dying_worker_gives_error_not_exception(tmp_path: Path, db: Path) -> None:
    async with SqlExecutor(workers=1, python=_script(tmp_path, "exit 3")) as ex:
        res = await ex.execute(db, "SELECT 1")
        assert res.error is not None and "worker" in res.error


async def test_memory_limit_turns_into_error(db: Path) -> None:
    async with SqlExecutor(workers=1, memory_limit_mb=256, heap_limit_mb=32) as ex:
        # a generous deadline: the heap cap, not the clock, must stop this query, however loaded the machine is
        res = await ex.execute(db, "SELECT count(*) FROM (SELECT DISTINCT a.x, b.x FROM big a, big b)", timeout_s=60)
        assert res.error == "query exceeded the memory limit"
        assert (await ex.execute(db, "SELECT 7")).rows == [(7,)]


async def test_row_and_byte_caps_truncate(ex: SqlExecutor, db: Path) -> None:
    res = await ex.execute(db, "SELECT x FROM many", max_rows=100)
    assert res.ok and res.truncated and len(res.rows) == 100 and res.rows[:3] == [(0,), (1,), (2,)]
    res = await ex.execute(db, "SELECT x FROM many")  # default max_rows=10_000
    assert res.ok and res.truncated and len(res.rows) == 10_000
    res = await ex.execute(db, "SELECT x FROM many", max_rows=50_000)
    assert res.ok and not res.truncated and len(res.rows) == 50_000
    res = await ex.execute(db, "SELECT x FROM many LIMIT 100", max_rows=100)
    assert not res.truncated and len(res.rows) == 100
    res = await ex.execute(db, "SELECT printf('%.1000c', 'z') FROM many", max_bytes=10_000)
    assert res.ok and res.truncated and 0 < len(res.rows) < 10


async def test_concurrent_queries_share_a_small_pool(ex: SqlExecutor, db: Path) -> None:
    results = await asyncio.gather(*(ex.execute(db, f"SELECT {i}, count(*) FROM big") for i in range(50)))
    assert [r.rows for r in results] == [[(i, 3000)] for i in range(50)]
    assert len(ex.worker_pids()) <= 2


async def test_explain_checks_syntax_and_names(ex: SqlExecutor, db: Path) -> None:
    assert await ex.explain(db, "SELECT name FROM t WHERE id > 1") is None
    err = await ex.explain(db, "SELECT nope FROM t")
    assert err is not None and "no such column" in err
    err = await ex.explain(db, "SELECT a, FROM t")
    assert err is not None and "syntax error" in err
    # EXPLAIN compiles but never runs the query: running it would hit the 2 s deadline and return that error.
    assert await ex.explain(db, "SELECT count(*) FROM big a, big b, big c") is None
    assert await ex.explain(db, "DROP TABLE t") is not None


async def test_missing_database_is_reported(ex: SqlExecutor, tmp_path: Path) -> None:
    res = await ex.execute(tmp_path / "missing.sqlite", "SELECT 1")
    assert res.error is not None and "database not found" in res.error
    assert not (tmp_path / "missing.sqlite").exists()


def _files_open_in(pid: int) -> set[str]:
    """Real paths of the files process `pid` holds open (Linux /proc)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    return {os.path.realpath(fd_dir / fd) for fd in os.listdir(fd_dir)}


async def test_warm_queries_reuse_one_worker_that_keeps_the_database_open(ex: SqlExecutor, db: Path) -> None:
    """What makes a warm round trip cheap (its latency is measured in bench/sql_env_latency.py): sequential
    queries go to the worker already running, with no process started, and it keeps the database connected."""
    await ex.execute(db, "SELECT 1")
    pids = ex.worker_pids()
    assert len(pids) == 1  # one query at a time needs one worker, though the pool allows two
    for _ in range(200):
        res = await ex.execute(db, "SELECT name FROM t WHERE id = 2")
        assert res.ok and res.rows == [("bób ✓",)]
        assert ex.worker_pids() == pids
    assert os.path.realpath(db) in _files_open_in(pids[0])  # the connection outlives each query


async def test_shared_executor_is_per_loop_singleton(db: Path) -> None:
    a = shared_executor()
    assert shared_executor() is a
    assert (await a.execute(db, "SELECT 5")).rows == [(5,)]
    pids = a.worker_pids()
    await close_shared_executor()
    assert shared_executor() is not a
    assert pids and wait_gone(pids, 30) == []
    await close_shared_executor()


async def test_closed_executor_refuses_work(db: Path) -> None:
    ex = SqlExecutor(workers=1)
    await ex.execute(db, "SELECT 1")
    pids = ex.worker_pids()
    await ex.aclose()
    with pytest.raises(RuntimeError):
        await ex.execute(db, "SELECT 1")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_workers_end_with_the_event_loop_that_started_them(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    """asyncio.run returning leaves no worker behind, logs no "Loop ... is closed", and the executor stays usable."""
    async def use(ex: SqlExecutor | None = None) -> tuple[SqlExecutor, list[int]]:
        ex = ex or shared_executor()
        results = await asyncio.gather(*(ex.execute(db, "SELECT 7") for _ in range(2)))
        assert all(r.rows == [(7,)] for r in results)
        return ex, ex.worker_pids()

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        ex, pids = asyncio.run(use())
        assert len(pids) == 2 and all(_gone(p) for p in pids)  # stopped and reaped inside the loop
        again, second = asyncio.run(use(ex))  # the same executor, a new loop: fresh workers, ended again
        gc.collect()
    assert again is ex and set(second).isdisjoint(pids) and all(_gone(p) for p in second)
    assert "is closed" not in caplog.text, caplog.text


def test_a_private_executor_also_ends_its_workers_with_the_loop(db: Path) -> None:
    async def use() -> list[int]:
        ex = SqlExecutor(workers=1)
        assert (await ex.execute(db, "SELECT 1")).ok
        return ex.worker_pids()

    pids = asyncio.run(use())
    assert pids and all(_gone(p) for p in pids)


async def test_closing_waits_for_the_whole_worker_group(db: Path, tmp_path: Path) -> None:
    """A process left in a worker's group is gone once aclose() returns: the group is stopped, not just the pid."""
    stray_file = tmp_path / "stray.pid"
    python = _script(tmp_path, f'sleep 60 & echo $! > {stray_file}\nexec {sys.executable} "$@"')
    ex = SqlExecutor(workers=1, python=python)
    assert (await ex.execute(db, "SELECT 1")).ok
    stray = int(stray_file.read_text())
    assert alive(stray)
    await ex.aclose()
    assert not alive(stray)
