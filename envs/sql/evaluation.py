"""Execution-based scoring of predicted SQL: test-suite EX (the reward) plus BIRD set-EX and partial signals.

A single database lets wrong queries pass by coincidence; comparing against the gold on several database
instances (Spider's test-suite accuracy, re-implemented here: bag semantics, order only when the gold has a
top-level ORDER BY, column permutations allowed, numeric tolerance) makes the reward hard to game.  Set-EX,
EXPLAIN-based syntax checks and Jaccard similarities are reported as auxiliary components.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .executor import QueryResult, SqlExecutor

__all__ = [
    "order_matters",
    "results_match",
    "set_match",
    "schema_linking_jaccard",
    "ngram_jaccard",
    "SqlEvaluation",
    "evaluate_sql",
    "clear_gold_cache",
]

log = logging.getLogger(__name__)

Rows = Sequence[Sequence[Any]]

# ------------------------------------------------------------------------------------------------------------
# Value normalisation


def _tol_digits(float_tol: float) -> int:
    if float_tol <= 0:
        return 15
    return max(0, min(15, int(round(-math.log10(float_tol)))))


def _norm_value(v: Any, digits: int) -> Any:
    """Hashable canonical form: ints stay exact; floats are rounded to the tolerance (integral floats equal ints)."""
    if v is None or isinstance(v, (str, bytes)):
        return v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            return v
        r = round(v, digits)
        if r == 0.0:
            return 0  # also folds -0.0
        # Large magnitudes: also drop summation-order noise below 12 significant digits.
        if abs(r) >= 1e6:
            r = float(f"{r:.12g}")
        if r.is_integer() and abs(r) < 2**53:
            return int(r)
        return r
    if isinstance(v, memoryview):
        return bytes(v)
    return v


def _rows_of(x: QueryResult | Rows) -> list[tuple] | None:
    """Rows of a result; None if it is an errored or truncated QueryResult (which can never match)."""
    if isinstance(x, QueryResult):
        if not x.ok or x.truncated:
            return None
        return [tuple(r) for r in x.rows]
    return [tuple(r) for r in x]


def _norm_rows(rows: list[tuple], digits: int) -> list[tuple]:
    return [tuple(_norm_value(v, digits) for v in r) for r in rows]


# ------------------------------------------------------------------------------------------------------------
# Result comparison


def results_match(
    gold: QueryResult | Rows, pred: QueryResult | Rows, *, ordered: bool, float_tol: float = 1e-6
) -> bool:
    """Spider test-suite equality: same column count; rows equal as a bag (or as a list if ``ordered``),
    allowing any permutation of the predicted columns; numbers equal within ``float_tol``; NULL equals NULL.

    Errored or truncated QueryResults never match.
    """
    g_raw, p_raw = _rows_of(gold), _rows_of(pred)
    if g_raw is None or p_raw is None:
        return False
    if isinstance(gold, QueryResult) and isinstance(pred, QueryResult) and gold.columns and pred.columns:
        if len(gold.columns) != len(pred.columns):
            return False
    if len(g_raw) != len(p_raw):
        return False
    if not g_raw:
        return True  # both empty (column counts, when known, already checked)
    ncols = len(g_raw[0])
    if any(len(r) != ncols for r in g_raw) or any(len(r) != ncols for r in p_raw):
        return False
    digits = _tol_digits(float_tol)
    g, p = _norm_rows(g_raw, digits), _norm_rows(p_raw, digits)

    def equal_under(perm: Sequence[int]) -> bool:
        permuted = [tuple(r[k] for k in perm) for r in p]
        return permuted == g if ordered else Counter(permuted) == Counter(g)

    identity = list(range(ncols))
    if equal_under(identity):
        return True
    if not ordered and Counter(tuple(sorted(map(_sort_key, r))) for r in g) != Counter(
        tuple(sorted(map(_sort_key, r))) for r in p
    ):
        return False  # fast reject: the multisets of unordered rows differ, no permutation can help
    # Candidate pred columns for each gold column: same multiset (or same sequence, if ordered) of values.
    if ordered:
        g_cols = [tuple(r[j] for r in g) for j in range(ncols)]
        p_cols = [tuple(r[k] for r in p) for k in range(ncols)]
    else:
        g_cols = [Counter(r[j] for r in g) for j in range(ncols)]  # type: ignore[misc]
        p_cols = [Counter(r[k] for r in p) for k in range(ncols)]  # type: ignore[misc]
    candidates = [[k for k in range(ncols) if p_cols[k] == g_cols[j]] for j in range(ncols)]
    if any(not c for c in candidates):
        return False
    # Most constrained gold column first; prune on partial projections; skip duplicate pred columns.
    order = sorted(range(ncols), key=lambda j: len(candidates[j]))
    budget = [5_000]  # search nodes; adversarially symmetric results give up (no match) instead of hanging

    def project_gold(cols: list[int]) -> Any:
        proj = [tuple(r[j] for j in cols) for r in g]
        return proj if ordered else Counter(proj)

    def project_pred(cols: list[int]) -> Any:
        proj = [tuple(r[k] for k in cols) for r in p]
        return proj if ordered else Counter(proj)

    p_vecs = [tuple(r[k] for r in p) for k in range(ncols)]  # identical pred columns are interchangeable
    assignment: dict[int, int] = {}

    def search(depth: int) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if depth == ncols:
            return equal_under([assignment[j] for j in range(ncols)])
        j = order[depth]
        used = set(assignment.values())
        tried: set[tuple[Any, ...]] = set()
        for k in candidates[j]:
            if k in used or p_vecs[k] in tried:
                continue
            tried.add(p_vecs[k])
            assignment[j] = k
            cols = order[: depth + 1]
            if depth == 0 or project_pred([assignment[c] for c in cols]) == project_gold(cols):
                if search(depth + 1):
                    return True
            del assignment[j]
        return False

    return search(0)


def _sort_key(v: Any) -> tuple[int, Any]:
    """Total order over mixed SQLite values (NULL < numbers < text < blobs)."""
    if v is None:
        return (0, 0)
    if isinstance(v, (int, float)):
        return (1, v)
    if isinstance(v, str):
        return (2, v)
    return (3, v)


def set_match(gold_rows: QueryResult | Rows, pred_rows: QueryResult | Rows, *, float_tol: float = 1e-6) -> bool:
    """BIRD execution accuracy: ``set(pred) == set(gold)`` (duplicates and order ignored, columns positional)."""
    g, p = _rows_of(gold_rows), _rows_of(pred_rows)
    if g is None or p is None:
        return False
    digits = _tol_digits(float_tol)
    return set(_norm_rows(g, digits)) == set(_norm_rows(p, digits))


# ------------------------------------------------------------------------------------------------------------
# SQL structure


_TOKEN_RE = re.compile(
    r"""'(?:[^']|'')*'?            # single-quoted string literal (kept verbatim)
      | "(?:[^"]|"")*"?            # double-quoted identifier
      | `[^`]*`? | \[[^\]]*\]?      # other identifier quotes
      | \d+\.?\d*(?:[eE][+-]?\d+)? | \.\d+(?:[eE][+-]?\d+)?
      | [A-Za-z_][A-Za-z_0-9$]*
      | <> | != | <= | >= | == | \|\| | << | >>
      | \S""",
    re.VERBOSE,
)
_COMMENT_RE = re.compile(r"--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)


def _tokens(sql: str) -> list[str]:
    """Lowercased tokens of ``sql`` with comments removed; string literals keep their case."""
    out: list[str] = []
    pos = 0
    # Remove comments outside of string literals: tokenise first, dropping comment spans as we go.
    text = sql
    while pos < len(text):
        m = _COMMENT_RE.match(text, pos)
        if m:
            pos = m.end()
            continue
        if text[pos].isspace():
            pos += 1
            continue
        m = _TOKEN_RE.match(text, pos)
        if not m:  # pragma: no cover - \S always matches
            pos += 1
            continue
        tok = m.group(0)
        out.append(tok if tok.startswith("'") else tok.lower())
        pos = m.end()
    while out and out[-1] == ";":
        out.pop()
    return out


def _top_level_order_by_regex(sql: str) -> bool:
    depth = 0
    toks = _tokens(sql)
    for i, t in enumerate(toks):
        if t == "(":
            depth += 1
        elif t == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and t == "order" and i + 1 < len(toks) and toks[i + 1] == "by":
            return True
    return False


def order_matters(gold_sql: str) -> bool:
    """True iff the gold query has a top-level ORDER BY (then row order is part of the answer)."""
    try:
        import sqlglot

        tree = sqlglot.parse_one(gold_sql, read="sqlite")
    except Exception:
        return _top_level_order_by_regex(gold_sql)
    if tree is None:
        return _top_level_order_by_regex(gold_sql)
    return bool(tree.args.get("order"))


def _schema_items(sql: str) -> set[str] | None:
    """Tables and table-qualified columns referenced by ``sql`` (lowercased); None if it does not parse."""
    try:
        import sqlglot
        from sqlglot import exp
        from sqlglot.optimizer.scope import traverse_scope

        trees = [t for t in sqlglot.parse(sql, read="sqlite") if t is not None]
    except Exception:
        return None
    if not trees:
        return None
    items: set[str] = set()
    for tree in trees:
        try:
            scopes = traverse_scope(tree)
        except Exception:
            scopes = []
        if not scopes:  # fallback without scoping: alias map over the whole statement
            aliases = {}
            for t in tree.find_all(exp.Table):
                name = t.name.lower()
                if name:
                    items.add(name)
                    aliases[(t.alias_or_name or name).lower()] = name
            tables = set(aliases.values())
            for c in tree.find_all(exp.Column):
                if isinstance(c.this, exp.Star):
                    continue
                q = c.table.lower()
                if q and q in aliases:
                    items.add(f"{aliases[q]}.{c.name.lower()}")
                elif not q and len(tables) == 1:
                    items.add(f"{next(iter(tables))}.{c.name.lower()}")
                else:
                    items.add(c.name.lower())
            continue
        for scope in scopes:
            table_sources = {
                alias.lower(): src.name.lower()
                for alias, src in scope.sources.items()
                if isinstance(src, exp.Table) and src.name
            }
            items.update(table_sources.values())
            selected = [s for s in scope.selected_sources.values()]
            only_table = None
            if len(selected) == 1:
                node = selected[0][1] if isinstance(selected[0], tuple) else selected[0]
                if isinstance(node, exp.Table) and node.name:
                    only_table = node.name.lower()
            for c in scope.columns:
                if isinstance(c.this, exp.Star) or not c.name:
                    continue
                owner = c.find_ancestor(exp.Select)
                if owner is not None and owner is not scope.expression and isinstance(scope.expression, exp.Select):
                    continue  # belongs to a nested scope, which handles it
                name = c.name.lower()
                q = c.table.lower()
                if q:
                    owner_table = _resolve_qualifier(scope, q)
                    items.add(f"{owner_table}.{name}" if owner_table else name)
                elif only_table:
                    items.add(f"{only_table}.{name}")
                else:
                    items.add(name)
    return items


def _resolve_qualifier(scope: Any, qualifier: str) -> str | None:
    """The real table a column qualifier (alias or name) refers to, searching enclosing scopes (correlation)."""
    from sqlglot import exp

    while scope is not None:
        for alias, src in scope.sources.items():
            if alias.lower() == qualifier:
                return src.name.lower() if isinstance(src, exp.Table) and src.name else None
        scope = scope.parent
    return None


def _jaccard(a: set[Any], b: set[Any]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def schema_linking_jaccard(pred_sql: str, gold_sql: str) -> float:
    """Jaccard similarity of the tables and table.column names the two queries use (0.0 if pred does not parse)."""
    p = _schema_items(pred_sql)
    if p is None:
        return 0.0
    g = _schema_items(gold_sql) or set()
    return _jaccard(p, g)


def _ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    if not tokens:
        return set()
    if len(tokens) < n:
        return {tuple(tokens)}
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def ngram_jaccard(pred_sql: str, gold_sql: str, n: int = 2) -> float:
    """Jaccard similarity of token n-gram sets of the normalised queries (lowercase, comments and
    whitespace dropped, quoted literals kept verbatim, trailing ';' ignored)."""
    return _jaccard(_ngrams(_tokens(pred_sql), n), _ngrams(_tokens(gold_sql), n))


# ------------------------------------------------------------------------------------------------------------
# Orchestration


@dataclass(frozen=True)
class SqlEvaluation:
    """All scores for one prediction; ``test_suite_match`` is the reward."""

    test_suite_match: bool  # pred matches gold on EVERY instance
    per_instance: list[bool]
    set_match: bool  # BIRD-style, on the first instance
    syntax_ok: bool  # EXPLAIN succeeds on the first instance
    schema_jaccard: float
    ngram_jaccard: float
    error: str | None  # the prediction's execution error on the first instance that failed, if any
    gold_errors: list[str] = field(default_factory=list)  # gold failures (a data bug); those instances count as 0

    def components(self) -> dict[str, float]:
        """Reward components as floats, for logging and weighted partial rewards."""
        return {
            "ex_test_suite": float(self.test_suite_match),
            "ex_set": float(self.set_match),
            "syntax_ok": float(self.syntax_ok),
            "schema_jaccard": float(self.schema_jaccard),
            "ngram_jaccard": float(self.ngram_jaccard),
        }


_GOLD_CACHE: "OrderedDict[tuple[Any, ...], QueryResult]" = OrderedDict()
_GOLD_CACHE_MAX = 4096
_GOLD_LOCK = threading.Lock()


def clear_gold_cache() -> None:
    """Forget cached gold results."""
    with _GOLD_LOCK:
        _GOLD_CACHE.clear()


def _gold_key(path: Path, gold_sql: str) -> tuple[Any, ...]:
    try:
        st = os.stat(path)
        sig: tuple[Any, ...] = (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        sig = ()
    return (os.path.abspath(path), sig, gold_sql)


async def _gold_result(executor: SqlExecutor, path: Path, gold_sql: str, timeout_s: float) -> QueryResult:
    key = _gold_key(path, gold_sql)
    with _GOLD_LOCK:
        hit = _GOLD_CACHE.get(key)
        if hit is not None:
            _GOLD_CACHE.move_to_end(key)
            return hit
    res = await executor.execute(path, gold_sql, timeout_s=timeout_s)
    if res.ok and not res.truncated:
        with _GOLD_LOCK:
            _GOLD_CACHE[key] = res
            while len(_GOLD_CACHE) > _GOLD_CACHE_MAX:
                _GOLD_CACHE.popitem(last=False)
    return res


async def evaluate_sql(
    executor: SqlExecutor,
    instance_paths: Sequence[Path],
    gold_sql: str,
    pred_sql: str,
    *,
    timeout_s: float = 5.0,
) -> SqlEvaluation:
    """Score ``pred_sql`` against ``gold_sql`` on every database instance (Spider test-suite EX) plus auxiliaries.

    A prediction that errors or is truncated on an instance does not match there.  A gold query that fails is
    a data bug: it is logged, reported in ``gold_errors``, and that instance counts as a mismatch.
    """
    paths = [Path(p) for p in instance_paths]
    if not paths:
        raise ValueError("evaluate_sql needs at least one database instance")
    schema_j = schema_linking_jaccard(pred_sql, gold_sql)
    ngram_j = ngram_jaccard(pred_sql, gold_sql)
    syntax_err = await executor.explain(paths[0], pred_sql, timeout_s=timeout_s)
    if syntax_err is not None:
        return SqlEvaluation(
            test_suite_match=False,
            per_instance=[False] * len(paths),
            set_match=False,
            syntax_ok=False,
            schema_jaccard=schema_j,
            ngram_jaccard=ngram_j,
            error=syntax_err,
        )
    ordered = order_matters(gold_sql)
    golds, preds = await asyncio.gather(
        asyncio.gather(*(_gold_result(executor, p, gold_sql, timeout_s) for p in paths)),
        asyncio.gather(*(executor.execute(p, pred_sql, timeout_s=timeout_s) for p in paths)),
    )
    per_instance: list[bool] = []
    error: str | None = None
    gold_errors: list[str] = []
    for path, g, pr in zip(paths, golds, preds):
        if not g.ok or g.truncated:
            msg = f"gold query failed on {path.name}: {g.error or 'result truncated'}"
            log.warning("%s (gold: %s)", msg, gold_sql)
            gold_errors.append(msg)
            per_instance.append(False)
            continue
        if error is None:
            if not pr.ok:
                error = pr.error
            elif pr.truncated:
                error = "the prediction's result was truncated (too many rows or bytes)"
        per_instance.append(results_match(g, pr, ordered=ordered))
    return SqlEvaluation(
        test_suite_match=all(per_instance),
        per_instance=per_instance,
        set_match=set_match(golds[0], preds[0]),
        syntax_ok=True,
        schema_jaccard=schema_j,
        ngram_jaccard=ngram_j,
        error=error,
        gold_errors=gold_errors,
    )
