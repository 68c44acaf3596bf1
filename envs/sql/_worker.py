"""Sandboxed SQLite query server: runs untrusted, agent-written SQL in a separate, memory-capped process.

This file is a self-contained, stdlib-only script (no agentgym imports) so that it can be started fast with
``python -I -S _worker.py [--memory-limit-mb N] [--heap-limit-mb N]``.  It speaks JSON lines: one request per
line on stdin, one response per line on stdout, strictly in order.

Request:  {"id": 1, "op": "execute" | "explain" | "ping", "db": "/abs/path.sqlite", "sql": "...",
           "timeout_s": 2.0, "max_rows": 10000, "max_bytes": 2000000}
Response: {"id": 1, "columns": [...], "rows": [[...], ...], "truncated": false, "error": null,
           "elapsed_ms": 0.12}

Values are JSON scalars (floats are written with repr, so they round-trip exactly); bytes are tagged as
``{"$b": "<base64>"}``.  Safety layers, outermost first: RLIMIT_AS (and RLIMIT_FSIZE=0, so no file can be
written), a read-only URI connection with ``query_only``, SQLite length limits and a hard heap limit, a
denylist of write/DDL first keywords, an authorizer *whitelist*, and a progress handler that interrupts at the deadline.
The worker exits when stdin closes (its parent went away).
"""

import binascii
import json
import os
import sqlite3
import sys
import time

MAX_VALUE_BYTES = 1_000_000  # SQLITE_LIMIT_LENGTH: any string/blob bigger than this fails fast
MAX_SQL_CHARS = 100_000  # SQLITE_LIMIT_SQL_LENGTH
MAX_CACHED_CONNECTIONS = 32
PROGRESS_STEPS = 1000  # VM instructions between deadline checks (~10-50 us of work)

# Statements that can only write or change state; rejected before SQLite sees them (the authorizer would deny
# them too, except VACUUM, which it never consults).  Other words (typos included) get SQLite's own error.
DENIED_FIRST_KEYWORDS = frozenset(
    {"insert", "update", "delete", "replace", "upsert", "create", "drop", "alter", "attach", "detach", "vacuum",
     "reindex", "analyze", "begin", "commit", "end", "rollback", "savepoint", "release"}
)
ALLOWED_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)
DENIED_FUNCTIONS = frozenset(
    {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit", "zipfile", "sqlar_compress",
     "sqlar_uncompress", "shell_add_schema", "sqlite_dbpage"}
)
_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"})
READ_ONLY_MSG = "not authorized: the database is read-only; only SELECT queries are allowed"

_ACTION_NAMES = {  # sqlite3 authorizer action codes (sqlite3.h); spelled out because the module mixes in error codes
    1: "CREATE INDEX", 2: "CREATE TABLE", 3: "CREATE TEMP INDEX", 4: "CREATE TEMP TABLE", 5: "CREATE TEMP TRIGGER",
    6: "CREATE TEMP VIEW", 7: "CREATE TRIGGER", 8: "CREATE VIEW", 9: "DELETE", 10: "DROP INDEX", 11: "DROP TABLE",
    12: "DROP TEMP INDEX", 13: "DROP TEMP TABLE", 14: "DROP TEMP TRIGGER", 15: "DROP TEMP VIEW", 16: "DROP TRIGGER",
    17: "DROP VIEW", 18: "INSERT", 19: "PRAGMA", 20: "READ", 21: "SELECT", 22: "TRANSACTION", 23: "UPDATE",
    24: "ATTACH", 25: "DETACH", 26: "ALTER TABLE", 27: "REINDEX", 28: "ANALYZE", 29: "CREATE VIRTUAL TABLE",
    30: "DROP VIRTUAL TABLE", 31: "FUNCTION", 32: "SAVEPOINT", 33: "RECURSIVE",
}


class _State:
    """Per-request mutable state shared with the SQLite callbacks."""

    deadline = float("inf")
    denial = None  # the authorizer's reason for the last denial, for a precise error message


STATE = _State()


def _progress():
    # Non-zero return value interrupts the running statement (-> OperationalError "interrupted").
    return 1 if time.monotonic() > STATE.deadline else 0


def _deny(reason):
    if STATE.denial is None:  # keep the first (most specific) reason; later denials are consequences
        STATE.denial = reason
    return sqlite3.SQLITE_DENY


def _authorizer(action, arg1, arg2, dbname, source):
    if action == sqlite3.SQLITE_SELECT or action == sqlite3.SQLITE_READ or action == sqlite3.SQLITE_RECURSIVE:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        if arg2 is not None and arg2.lower() in DENIED_FUNCTIONS:
            return _deny(f"not authorized: the function {arg2}() is not allowed")
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        if arg1 is not None and arg1.lower() in ALLOWED_PRAGMAS:
            return sqlite3.SQLITE_OK
        return _deny(
            f"not authorized: PRAGMA {arg1} is not allowed; only read-only introspection pragmas "
            f"({', '.join(sorted(ALLOWED_PRAGMAS))}) may be used"
        )
    if action == sqlite3.SQLITE_UPDATE and arg1 in _SCHEMA_TABLES and source is None:
        # SQLite authorizes a schema-row UPDATE when it first connects an eponymous table-valued function
        # (json_each, pragma_table_info, ...) on a connection; nothing is written (mode=ro + query_only,
        # writable_schema is denied).  Pragma table-valued functions still go through the PRAGMA check.
        return sqlite3.SQLITE_OK
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return _deny("not authorized: ATTACH/DETACH (and VACUUM INTO) are not allowed; only SELECT queries are allowed")
    what = _ACTION_NAMES.get(action, f"action {action}")
    return _deny(f"{READ_ONLY_MSG} ({what} is not permitted)")


# ----------------------------------------------------------------------------------------------------------
# Statement splitting: one statement per query; a trailing ';' and comments are fine.


def split_statements(sql):
    """Split ``sql`` on top-level ';' (respecting quotes and comments); drop empty/comment-only parts."""
    parts = []
    n = len(sql)
    i = 0
    start = 0
    content = False
    while i < n:
        ch = sql[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            j = sql.find(close, i + 1)
            i = n if j < 0 else j + 1
            content = True
            continue
        if ch == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if ch == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if ch == ";":
            if content:
                parts.append(sql[start:i])
            start = i + 1
            content = False
        elif not ch.isspace():
            content = True
        i += 1
    if content:
        parts.append(sql[start:])
    return parts


def first_keyword(stmt):
    """The first word of a statement after whitespace and comments, lowercased ('' if none)."""
    i, n = 0, len(stmt)
    while i < n:
        if stmt[i].isspace():
            i += 1
        elif stmt.startswith("--", i):
            j = stmt.find("\n", i)
            i = n if j < 0 else j + 1
        elif stmt.startswith("/*", i):
            j = stmt.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            break
    j = i
    while j < n and (stmt[j].isalpha() or stmt[j] == "_"):
        j += 1
    return stmt[i:j].lower()


# ----------------------------------------------------------------------------------------------------------
# Connections


_CONNECTIONS = {}  # path -> (stat signature, connection); insertion order = LRU order
_HEAP_LIMIT_BYTES = 0


def _uri(path):
    return "file:" + path.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + "?mode=ro"


def _open(path):
    conn = sqlite3.connect(_uri(path), uri=True, isolation_level=None, check_same_thread=False)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_CHARS)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.execute("PRAGMA query_only = 1")
    conn.execute("PRAGMA temp_store = MEMORY")  # sorts/temp b-trees stay in (heap-limited) memory, never on disk
    conn.execute("PRAGMA trusted_schema = OFF")
    if _HEAP_LIMIT_BYTES:
        conn.execute(f"PRAGMA hard_heap_limit = {int(_HEAP_LIMIT_BYTES)}")
    conn.set_authorizer(_authorizer)  # from here on, only whitelisted actions compile
    conn.set_progress_handler(_progress, PROGRESS_STEPS)
    return conn


def get_connection(path):
    """Cached read-only connection for ``path``; reopened if the file was replaced or modified."""
    st = os.stat(path)  # raises FileNotFoundError
    sig = (st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _CONNECTIONS.pop(path, None)
    if hit is not None:
        if hit[0] == sig:
            _CONNECTIONS[path] = hit
            return hit[1]
        hit[1].close()
    conn = _open(path)
    _CONNECTIONS[path] = (sig, conn)
    while len(_CONNECTIONS) > MAX_CACHED_CONNECTIONS:
        _, old = _CONNECTIONS.pop(next(iter(_CONNECTIONS)))
        old.close()
    return conn


def drop_connection(path):
    hit = _CONNECTIONS.pop(path, None)
    if hit is not None:
        try:
            hit[1].close()
        except Exception:
            pass


# ----------------------------------------------------------------------------------------------------------
# Requests


class QueryError(Exception):
    """An agent-facing, one-line error message."""


def _fmt_seconds(t):
    return str(float(round(float(t), 3)))


def _map_error(exc, timeout_s):
    msg = " ".join(str(exc).split())
    low = msg.lower()
    if isinstance(exc, MemoryError) or "out of memory" in low:
        return "query exceeded the memory limit"
    if "interrupted" in low:
        return f"query exceeded the {_fmt_seconds(timeout_s)} s deadline"
    if "not authorized" in low or "authorization denied" in low:
        return STATE.denial or READ_ONLY_MSG
    if "readonly database" in low or "read-only" in low:
        return READ_ONLY_MSG
    if "one statement at a time" in low:
        return "only one statement per query is allowed"
    if "string or blob too big" in low:
        return f"a string or blob in the query exceeded the {MAX_VALUE_BYTES}-byte limit"
    if "statement too long" in low:
        return f"the query text is too long (limit {MAX_SQL_CHARS} characters)"
    if "could not decode to utf-8" in low:
        return "a text value is not valid UTF-8 (try CAST(... AS BLOB) or hex())"
    if isinstance(exc, (sqlite3.Error, sqlite3.Warning)):
        return msg or type(exc).__name__
    return f"internal error: {type(exc).__name__}: {msg}"


def _value_size(v):
    if v is None:
        return 4
    t = type(v)
    if t is str or t is bytes:
        return len(v) + 2
    return 8


def _encode_row(row):
    for v in row:
        if type(v) is bytes:
            return [{"$b": binascii.b2a_base64(v, newline=False).decode("ascii")} if type(v) is bytes else v
                    for v in row]
    return row


def _prepare_sql(sql, op):
    parts = split_statements(sql)
    if not parts:
        raise QueryError("the query is empty")
    if len(parts) > 1:
        raise QueryError("only one statement per query is allowed")
    stmt = parts[0]
    kw = first_keyword(stmt)
    if kw in DENIED_FIRST_KEYWORDS:
        raise QueryError(f"{READ_ONLY_MSG} ({kw.upper()} is not permitted)")
    if op == "explain" and kw != "explain":
        stmt = "EXPLAIN " + stmt
    return stmt


def handle(req):
    """Run one request; always returns a response dict (never raises for query problems)."""
    t0 = time.perf_counter()
    rid = req.get("id")
    op = req.get("op", "execute")
    resp = {"id": rid, "columns": [], "rows": [], "truncated": False, "error": None, "elapsed_ms": 0.0}
    if op == "ping":
        resp["elapsed_ms"] = (time.perf_counter() - t0) * 1000.0
        return resp
    timeout_s = float(req.get("timeout_s", 2.0))
    max_rows = int(req.get("max_rows", 10_000))
    max_bytes = int(req.get("max_bytes", 2_000_000))
    path = str(req.get("db", ""))
    STATE.denial = None
    STATE.deadline = time.monotonic() + timeout_s
    try:
        stmt = _prepare_sql(str(req.get("sql", "")), op)
        try:
            conn = get_connection(path)
        except (FileNotFoundError, NotADirectoryError):
            raise QueryError(f"database not found: {path}") from None
        except sqlite3.Error as exc:
            raise QueryError(f"cannot open database {path}: {exc}") from None
        cur = conn.cursor()
        try:
            cur.execute(stmt)
            if op != "explain":
                resp["columns"] = [d[0] for d in (cur.description or ())]
                rows = []
                size = 0
                truncated = False
                while not truncated:
                    batch = cur.fetchmany(256)
                    if not batch:
                        break
                    for row in batch:
                        if len(rows) >= max_rows:
                            truncated = True
                            break
                        rsize = 2
                        for v in row:
                            rsize += _value_size(v)
                        if size + rsize > max_bytes:
                            truncated = True
                            break
                        size += rsize
                        rows.append(_encode_row(row))
                resp["rows"] = rows
                resp["truncated"] = truncated
        finally:
            cur.close()
    except QueryError as exc:
        resp["error"] = str(exc)
    except MemoryError:
        resp["rows"] = []
        drop_connection(path)
        resp["error"] = "query exceeded the memory limit"
    except Exception as exc:  # sqlite3.Error, Warning, RecursionError, ...
        resp["rows"] = []
        resp["columns"] = []
        resp["error"] = _map_error(exc, timeout_s)
    finally:
        STATE.deadline = float("inf")
    if resp["error"] is not None:
        resp["rows"] = []
        resp["truncated"] = False
    resp["elapsed_ms"] = (time.perf_counter() - t0) * 1000.0
    return resp


def _set_limits(memory_limit_mb):
    try:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past RLIMIT_FSIZE fail with EFBIG instead of killing us
        if (os.fstat(1).st_mode & 0o170000) != 0o100000:  # (unless stdout was redirected to a file, for debugging)
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # this process never writes regular files
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if memory_limit_mb > 0:
            limit = int(memory_limit_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # pragma: no cover - non-POSIX platforms
        pass


def _parse_args(argv):
    opts = {"--memory-limit-mb": 1024, "--heap-limit-mb": 0}
    it = iter(argv)
    for a in it:
        if a in opts:
            opts[a] = int(next(it))
    return opts


def main(argv=None):
    global _HEAP_LIMIT_BYTES
    opts = _parse_args(sys.argv[1:] if argv is None else argv)
    _set_limits(opts["--memory-limit-mb"])
    _HEAP_LIMIT_BYTES = opts["--heap-limit-mb"] * 1024 * 1024
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    dumps = json.dumps
    while True:
        line = stdin.readline()
        if not line:
            return 0  # parent closed the pipe
        if not line.strip():
            continue
        rid = None
        try:
            req = json.loads(line)
            rid = req.get("id")
            out = dumps(handle(req), separators=(",", ":"))
        except MemoryError:
            out = dumps({"id": rid, "columns": [], "rows": [], "truncated": False,
                         "error": "query exceeded the memory limit", "elapsed_ms": 0.0})
        except Exception as exc:
            out = dumps({"id": rid, "columns": [], "rows": [], "truncated": False,
                         "error": f"internal error: {type(exc).__name__}: {exc}", "elapsed_ms": 0.0})
        stdout.write(out.encode("ascii") + b"\n")  # ensure_ascii: the line is pure ASCII
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
