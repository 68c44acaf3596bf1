"""The instance databases a family's questions are checked on, and the rule that rejects degenerate gold SQL.

Gold is kept only when it runs on every instance, is neither empty nor all-NULL nor larger than ``MAX_ROWS``
anywhere, differs between instances (so a memorised answer cannot pass), and has no ties at an ORDER BY cut.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..schemas import SchemaFamily, foreign_keys
from .template import Built

MAX_ROWS = 50  # gold results larger than this are rejected (observations truncate around 50 rows)


_NONDETERMINISTIC = re.compile(r"random\s*\(|'now'|current_(date|time|timestamp)|changes\s*\(", re.IGNORECASE)


class InstanceData:
    """Open read-only connections to every instance plus an in-memory copy of their rows (for literal sampling)."""

    def __init__(self, fam: SchemaFamily, paths: Sequence[Path]) -> None:
        self.fam = fam
        self.conns: list[sqlite3.Connection] = []
        self.values: list[dict[str, dict[str, list]]] = []
        for p in paths:
            conn = sqlite3.connect(Path(p).resolve().as_uri() + "?mode=ro", uri=True)
            self.conns.append(conn)
            inst: dict[str, dict[str, list]] = {}
            for t in fam.tables:
                cur = conn.execute(f"SELECT * FROM {t.name} ORDER BY {t.pk.name}")
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
                inst[t.name] = {n: [r[i] for r in rows] for i, n in enumerate(names)}
            self.values.append(inst)
        self.edges = foreign_keys(fam)

    def close(self) -> None:
        """Close every instance connection."""
        for c in self.conns:
            c.close()

    def column(self, rng: random.Random, table: str, col: str) -> list:
        """Non-null values of a column in a randomly chosen instance."""
        inst = self.values[rng.randrange(len(self.values))]
        return [v for v in inst[table][col] if v is not None]

    def run(self, sql: str) -> list[list[tuple]] | None:
        """The first ``MAX_ROWS + 1`` rows of the query on every instance, or None when it fails on any."""
        out = []
        for c in self.conns:
            try:
                out.append(c.execute(sql).fetchmany(MAX_ROWS + 1))
            except sqlite3.Error:
                return None
        return out


def _norm_cell(v: Any) -> Any:
    return round(v, 6) if isinstance(v, float) else v


def _canon(rows: list[tuple], ordered: bool) -> tuple:
    norm = [tuple(_norm_cell(v) for v in r) for r in rows]
    return tuple(norm) if ordered else tuple(sorted(norm, key=repr))


def valid_gold(D: InstanceData, built: Built) -> bool:
    """Reject degenerate gold: errors, empty / all-NULL / >MAX_ROWS on any instance, identical everywhere, ties."""
    if _NONDETERMINISTIC.search(built.sql):
        return False
    results = D.run(built.sql)
    if results is None:
        return False
    for rows in results:
        if not rows or len(rows) > MAX_ROWS:
            return False
        if all(v is None for r in rows for v in r):
            return False
    ordered = built.order_key_sql is not None
    if len({_canon(rows, ordered) for rows in results}) == 1:
        return False
    if ordered:
        keys_all = D.run(built.order_key_sql or "")
        if keys_all is None:
            return False
        for rows in keys_all:
            keys = [r[0] for r in rows]
            if built.limit:
                # strictly more candidates than the cut, distinct keys up to and across the cut
                if len(keys) <= built.limit or len(set(keys[: built.limit + 1])) != built.limit + 1:
                    return False
            elif len(keys) > MAX_ROWS or len(set(keys)) != len(keys):
                return False
    return True
