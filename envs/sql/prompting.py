"""What the SQL agent reads: the schema (DDL plus sample rows), the question, and query results as tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SAMPLE_ROWS = 3
DISPLAY_ROWS = 50
DISPLAY_CHARS = 9000
CELL_CHARS = 80

SYSTEM_PROMPT = """You answer questions about a SQLite database by writing SQL.
Explore with execute_sql(query): it runs one read-only query and shows the result (or the error).
When you are sure, call submit_sql(query) with your final query: its result is compared with the expected answer on several copies of the database, so do not hard-code values you saw.
Without native tool calls, write <sql>QUERY</sql> to run a query and <solution>QUERY</solution> to submit; you may think in <think>...</think> first.
You have {max_turns} turns; submitting ends the episode."""


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        text = repr(round(value, 6))
    elif isinstance(value, (bytes, bytearray)):
        text = f"<blob {len(value)} bytes>"
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 3] + "..."


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, truncated: bool = False,
                 max_rows: int = DISPLAY_ROWS, max_chars: int = DISPLAY_CHARS) -> str:
    """A pipe table truncated to `max_rows` rows and about `max_chars` characters, saying what was cut."""
    lines = [" | ".join(columns)]
    shown = 0
    size = len(lines[0])
    for row in rows[:max_rows]:
        line = " | ".join(_cell(v) for v in row)
        if size + len(line) + 1 > max_chars:
            break
        lines.append(line)
        size += len(line) + 1
        shown += 1
    more = len(rows) - shown
    if more > 0 or truncated:
        total = f"{len(rows)}+" if truncated else str(len(rows))
        lines.append(f"... (showing {shown} of {total} rows)")
    elif not rows:
        lines.append("(no rows)")
    return "\n".join(lines)


def sqlite_ddl(db_path: Path) -> str:
    """The CREATE statements of a database's tables, as stored in sqlite_master."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND sql IS NOT NULL "
                           "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
    finally:
        con.close()
    return "\n\n".join(r[0].strip() + ";" for r in rows)


def table_columns(db_path: Path) -> list[tuple[str, list[str]]]:
    """(table, [columns]) of every table, for the random policy's queries."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        return [(t, [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')]) for t in tables]
    finally:
        con.close()


def schema_description(db_path: Path, ddl: str) -> str:
    """DDL plus a few sample rows of every table (read from the first database instance)."""
    parts = ["Database schema (SQLite):", ddl.strip(), "", f"Sample rows ({SAMPLE_ROWS} per table):"]
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        for table in tables:
            cur = con.execute(f'SELECT * FROM "{table}" LIMIT {SAMPLE_ROWS}')
            cols = [d[0] for d in cur.description]
            parts += [f"{table}:", format_table(cols, cur.fetchall(), max_rows=SAMPLE_ROWS), ""]
    finally:
        con.close()
    return "\n".join(parts).rstrip()


def task_prompt(schema: str, question: str, evidence: str | None) -> str:
    """The first user message of an episode."""
    text = f"{schema}\n\nQuestion: {question}"
    if evidence:
        text += f"\nHint: {evidence}"
    return text
