"""Program-first question generation: sample typed SQL templates, execute on every instance, keep only good gold.

A question is fully determined by ``(family, template, params)``: ``build_question`` renders the gold SQL and the
natural-language text from the params alone (no database), so a stored task can be re-rendered. Sampling
(``generate_questions``) reads literal values from the instance databases and rejects degenerate gold: empty,
all-NULL, identical on every instance, too many rows, ties at an ORDER BY (+ LIMIT) cut, non-deterministic SQL.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from .database import stable_seed
from .schemas import FAMILIES, Column, ForeignKey, SchemaFamily, Table, foreign_keys

__all__ = [
    "MAX_ROWS",
    "SqlQuestion",
    "TEMPLATE_KINDS",
    "build_question",
    "generate_questions",
    "group_key",
    "hardness",
    "supported_kinds",
]

MAX_ROWS = 50  # gold results larger than this are rejected (observations truncate around 50 rows)

TEMPLATE_KINDS: tuple[str, ...] = (
    "filter_eq",
    "filter_compare",
    "filter_like",
    "filter_in",
    "filter_between",
    "filter_date",
    "null_check",
    "aggregate",
    "group_by",
    "group_having",
    "order_limit",
    "distinct",
    "join2",
    "join3",
    "join_aggregate",
    "nested_scalar",
    "nested_in",
    "set_op",
    "case_when",
)

# Param keys holding literal values (and the paraphrase choice): excluded from the near-duplicate group key.
_LITERAL_KEYS = frozenset({"val", "n", "k", "phr"})
_NONDETERMINISTIC = re.compile(r"random\s*\(|'now'|current_(date|time|timestamp)|changes\s*\(", re.IGNORECASE)


@dataclass(frozen=True)
class SqlQuestion:
    """One generated text-to-SQL task: NL question, gold SQL and metadata for splits and reporting."""

    family: str
    template: str  # template kind, e.g. "filter_like"
    params: dict  # JSON-able; with (family, template) it fully determines gold_sql and question
    question: str
    gold_sql: str
    difficulty: str  # Spider-style hardness: easy | medium | hard | extra
    group_key: str  # family + template + structural slots, literals excluded
    evidence: str | None = None  # optional BIRD-style hint


# ---------------------------------------------------------------------------------------------------------------
# Small rendering helpers


def _fmt_num(v: float | int) -> str:
    if isinstance(v, float):
        if v.is_integer():
            return str(int(v))
        return repr(round(v, 2))
    return str(v)


def _sql_lit(v: Any) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return _fmt_num(v)


def _nl_lit(col: Column, v: Any) -> str:
    """A literal as it appears in a question: text quoted, numbers and ISO dates bare."""
    if isinstance(v, str) and col.kind != "date":
        return f"'{v}'"
    return _fmt_num(v) if not isinstance(v, str) else v


def _a(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _join_words(words: Sequence[str], conj: str = "and") -> str:
    words = list(words)
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + f" {conj} " + words[-1]


def _pick(variants: Sequence[str], phr: int) -> str:
    return variants[phr % len(variants)]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class _Built:
    sql: str
    question: str
    notes: list[str] = field(default_factory=list)
    order_key_sql: str | None = None  # the sort key alone, full order, for tie checks
    limit: int = 0  # 0: ORDER BY without LIMIT (all keys must be distinct)


# ---------------------------------------------------------------------------------------------------------------
# Conditions: {"col": name, "op": op, "val": literal or list}


def _cond_sql(cond: dict, alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    col, op, val = f"{a}{cond['col']}", cond["op"], cond.get("val")
    if op in ("=", "<", ">", "<=", ">="):
        return f"{col} {op} {_sql_lit(val)}"
    if op == "between":
        return f"{col} BETWEEN {_sql_lit(val[0])} AND {_sql_lit(val[1])}"
    if op == "before":
        return f"{col} < {_sql_lit(val)}"
    if op == "after":
        return f"{col} > {_sql_lit(val)}"
    if op == "year":
        return f"strftime('%Y', {col}) = {_sql_lit(val)}"
    if op == "starts":
        return f"{col} LIKE {_sql_lit(val + '%')}"
    if op == "contains":
        return f"{col} LIKE {_sql_lit('%' + val + '%')}"
    if op == "ends":
        return f"{col} LIKE {_sql_lit('%' + val)}"
    if op == "in":
        return f"{col} IN ({', '.join(_sql_lit(v) for v in val)})"
    if op == "is_null":
        return f"{col} IS NULL"
    if op == "not_null":
        return f"{col} IS NOT NULL"
    if op == "true":
        return f"{col} = 1"
    if op == "false":
        return f"{col} = 0"
    raise ValueError(f"unknown condition op {op!r}")


_CMP_NL = {">": "greater than", "<": "less than", ">=": "at least", "<=": "at most"}


def _value_phrase(col: Column, cond: dict) -> str:
    """The part after 'whose <col> is' / 'has a <col>' ("greater than 5", "between 1 and 3 (inclusive)")."""
    op, val = cond["op"], cond.get("val")
    if op in _CMP_NL:
        return f"{_CMP_NL[op]} {_nl_lit(col, val)}"
    if op == "between":
        return f"between {_nl_lit(col, val[0])} and {_nl_lit(col, val[1])} (inclusive)"
    if op == "before":
        return f"before {val}"
    if op == "after":
        return f"after {val}"
    if op == "year":
        return f"in the year {val}"
    raise ValueError(op)


def _rel(t: Table, cond: dict, plural_subject: bool = True) -> str:
    """Relative clause after a noun: "whose price is greater than 5", "that are in stock"."""
    col = t.column(cond["col"])
    op, val = cond["op"], cond.get("val")
    be = "are" if plural_subject else "is"
    if op == "=":
        return f"whose {col.nl} is {_nl_lit(col, val)}"
    if op in ("starts", "contains", "ends"):
        verb = {"starts": "starts with", "contains": "contains", "ends": "ends with"}[op]
        return f"whose {col.nl} {verb} '{val}'"
    if op == "in":
        lits = [_nl_lit(col, v) for v in val]
        return f"whose {col.nl} is either {lits[0]} or {lits[1]}" if len(lits) == 2 else f"whose {col.nl} is one of {_join_words(lits, 'or')}"
    if op == "is_null":
        return f"whose {col.nl} is missing"
    if op == "not_null":
        return f"whose {col.nl} is recorded"
    if op == "true":
        return f"that {be} {col.true_phrase}"
    if op == "false":
        return f"that {be} not {col.true_phrase}"
    return f"whose {col.nl} is {_value_phrase(col, cond)}"


def _pred(t: Table, cond: dict) -> str:
    """Predicate for a singular subject: "has segment 'Corporate'", "has a price greater than 5", "is in stock"."""
    col = t.column(cond["col"])
    op, val = cond["op"], cond.get("val")
    if op == "=":
        return f"has {col.nl} {_nl_lit(col, val)}"
    if op in ("starts", "contains", "ends"):
        verb = {"starts": "starting with", "contains": "containing", "ends": "ending with"}[op]
        return f"has {_a(col.nl)} {verb} '{val}'"
    if op == "in":
        lits = [_nl_lit(col, v) for v in val]
        return f"has {col.nl} {_join_words(lits, 'or')}"
    if op == "is_null":
        return f"has no {col.nl} recorded"
    if op == "not_null":
        return f"has {_a(col.nl)} recorded"
    if op == "true":
        return f"is {col.true_phrase}"
    if op == "false":
        return f"is not {col.true_phrase}"
    of = "of " if op in (">=", "<=") else ""
    return f"has {_a(col.nl)} {of}{_value_phrase(col, cond)}"


def _cond_notes(t: Table, cond: dict | None) -> list[str]:
    if not cond:
        return []
    col = t.column(cond["col"])
    op = cond["op"]
    if op in ("is_null", "not_null"):
        return [f"A missing {col.nl} is stored as NULL."]
    if col.kind == "date":
        return ["Dates are stored as text in ISO format YYYY-MM-DD."]
    if op in ("starts", "contains", "ends"):
        return ["Text matching is case-insensitive."]
    if op in ("true", "false"):
        return [f"{t.name}.{col.name} = 1 means the {t.nl} is {col.true_phrase}."]
    return []


# ---------------------------------------------------------------------------------------------------------------
# Schema helpers


def _fam(name: str) -> SchemaFamily:
    return FAMILIES[name]


def _cols(t: Table, kinds: Sequence[str], *, nonnull: bool = False, exclude: Sequence[str] = ()) -> list[Column]:
    return [c for c in t.columns if c.kind in kinds and c.name not in exclude and not (nonnull and c.nullable)]


def _label(t: Table) -> Column:
    return t.column(t.label)


def _proj_sql(t: Table, names: Sequence[str], alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    return ", ".join(f"{a}{n}" for n in names)


def _proj_nl(t: Table, names: Sequence[str], plural_form: bool = True) -> str:
    """"names" for one projected column of several rows, "name and price" for several columns."""
    if len(names) == 1 and plural_form:
        return t.column(names[0]).nl_plural
    return _join_words([t.column(n).nl for n in names])


def _which(noun_plural: str, clause: str) -> str:
    """"Which customers have ..." from the clause "that have ..."."""
    return f"Which {noun_plural} {clause[5:] if clause.startswith('that ') else clause}"


def _edge(fam: SchemaFamily, child: str, fk: str) -> ForeignKey:
    for e in foreign_keys(fam):
        if e.child == child and e.column == fk:
            return e
    raise KeyError(f"{child}.{fk}")


def _ambiguous(fam: SchemaFamily, e: ForeignKey) -> bool:
    """True when the child reaches the parent through several fks (or itself): name the fk in the phrase."""
    if e.child == e.parent:
        return True
    return sum(1 for f in foreign_keys(fam) if f.child == e.child and f.parent == e.parent) > 1


def _inv(fam: SchemaFamily, e: ForeignKey, plural_subject: bool, quantifier: str) -> str:
    """Parent-to-child phrase: "that have at least one order" / "that are the origin airport of at least one flight"."""
    child = fam.table(e.child)
    fk_nl = child.column(e.column).nl
    if quantifier == "a":
        np = _a(child.nl)
    elif quantifier.startswith("at least") and not quantifier.endswith("one"):
        np = f"{quantifier} {child.nl_plural}"
    else:
        np = f"{quantifier} {child.nl}"
    if _ambiguous(fam, e):
        be = "are" if plural_subject else "is"
        return f"that {be} the {fk_nl} of {np}"
    have = "have" if plural_subject else "has"
    return f"that {have} {np}"


def _inv_none(fam: SchemaFamily, e: ForeignKey) -> str:
    child = fam.table(e.child)
    if _ambiguous(fam, e):
        return f"that are not the {child.column(e.column).nl} of any {child.nl}"
    return f"that have no {child.nl}"


def _join_on(fam: SchemaFamily, e: ForeignKey, child_alias: str, parent_alias: str) -> str:
    return f"{child_alias}.{e.column} = {parent_alias}.{e.parent_column}"


# ---------------------------------------------------------------------------------------------------------------
# Instance data: literal sampling and execution


class _Data:
    """Open read-only connections to every instance plus an in-memory copy of their rows (for literal sampling)."""

    def __init__(self, fam: SchemaFamily, paths: Sequence[Path]):
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
        for c in self.conns:
            c.close()

    def column(self, rng: random.Random, table: str, col: str) -> list:
        """Non-null values of a column in a randomly chosen instance."""
        inst = self.values[rng.randrange(len(self.values))]
        return [v for v in inst[table][col] if v is not None]

    def run(self, sql: str) -> list[list[tuple]] | None:
        out = []
        for c in self.conns:
            try:
                out.append(c.execute(sql).fetchmany(MAX_ROWS + 1))
            except sqlite3.Error:
                return None
        return out


def _nice(col: Column, v: float | int) -> float | int:
    if col.type == "INTEGER":
        return int(v)
    if abs(v) >= 10:
        return int(round(v))
    return round(float(v), 1)


def _quantile(rng: random.Random, values: list, lo: float, hi: float) -> Any:
    s = sorted(values)
    q = rng.uniform(lo, hi)
    return s[min(len(s) - 1, max(0, int(q * (len(s) - 1))))]


_COND_TYPES = ("eq", "bool", "cmp", "between", "date", "like", "in", "null")


def _cond_columns(t: Table, ctype: str, exclude: Sequence[str] = ()) -> list[Column]:
    if ctype == "eq" or ctype == "in":
        return _cols(t, ("categorical",), exclude=exclude)
    if ctype == "bool":
        return _cols(t, ("bool",), exclude=exclude)
    if ctype in ("cmp", "between"):
        return _cols(t, ("numeric", "money"), exclude=exclude)
    if ctype == "date":
        return _cols(t, ("date",), exclude=exclude)
    if ctype == "like":
        return _cols(t, ("person_name", "name"), exclude=exclude)
    if ctype == "null":
        return [c for c in t.columns if c.nullable and c.name not in exclude and c.kind != "fk"]
    raise ValueError(ctype)


def _sample_cond(
    rng: random.Random, D: _Data, t: Table, ctypes: Sequence[str], exclude: Sequence[str] = ()
) -> dict | None:
    """A condition of one of the given types on a column of t, with a literal drawn from instance data."""
    options = [ct for ct in ctypes if _cond_columns(t, ct, exclude)]
    if not options:
        return None
    ctype = rng.choice(options)
    col = rng.choice(_cond_columns(t, ctype, exclude))
    values = D.column(rng, t.name, col.name)
    if ctype == "null":
        return {"col": col.name, "op": rng.choice(("is_null", "not_null"))}
    if ctype == "bool":
        return {"col": col.name, "op": "true" if rng.random() < 0.75 else "false"}
    if not values:
        return None
    if ctype == "eq":
        return {"col": col.name, "op": "=", "val": rng.choice(sorted(set(values)))}
    if ctype == "in":
        distinct = sorted(set(values))
        if len(distinct) < 3:
            return None
        picked = rng.sample(distinct, rng.choice((2, 2, 3)))
        return {"col": col.name, "op": "in", "val": [v for v in col.vocab if v in picked]}
    if ctype == "cmp":
        op = rng.choice((">", "<", ">=", "<="))
        q = _quantile(rng, values, 0.75, 0.97) if op in (">", ">=") else _quantile(rng, values, 0.03, 0.25)
        return {"col": col.name, "op": op, "val": _nice(col, q)}
    if ctype == "between":
        a = rng.uniform(0.05, 0.85)
        w = rng.uniform(0.03, 0.12)
        lo, hi = _nice(col, _quantile(rng, values, a, a)), _nice(col, _quantile(rng, values, a + w, a + w))
        if not lo < hi:
            return None
        return {"col": col.name, "op": "between", "val": [lo, hi]}
    if ctype == "date":
        op = rng.choice(("between", "before", "after", "year"))
        if op == "year":
            return {"col": col.name, "op": "year", "val": rng.choice(sorted(values))[:4]}
        if op == "before":
            return {"col": col.name, "op": "before", "val": _quantile(rng, values, 0.02, 0.15)}
        if op == "after":
            return {"col": col.name, "op": "after", "val": _quantile(rng, values, 0.85, 0.98)}
        a = rng.uniform(0.0, 0.9)
        lo, hi = _quantile(rng, values, a, a), _quantile(rng, values, a + 0.06, a + 0.1)
        if not lo < hi:
            return None
        return {"col": col.name, "op": "between", "val": [lo, hi]}
    if ctype == "like":
        words = [w for w in rng.choice(sorted(values)).split() if w.isalpha() and len(w) >= 4]
        if not words:
            return None
        word = rng.choice(words)
        op = rng.choice(("starts", "contains", "ends"))
        if op == "starts":
            return {"col": col.name, "op": "starts", "val": word[: rng.choice((2, 3))]}
        if op == "contains":
            i = rng.randrange(0, len(word) - 2)
            return {"col": col.name, "op": "contains", "val": word[i : i + 3].lower()}
        return {"col": col.name, "op": "ends", "val": word[-3:].lower()}
    return None


def _table_with(rng: random.Random, fam: SchemaFamily, pred: Callable[[Table], bool]) -> Table | None:
    options = [t for t in fam.tables if pred(t)]
    return rng.choice(options) if options else None


def _extra_proj(rng: random.Random, t: Table, exclude: Sequence[str]) -> list[str]:
    """Label alone or label + one informative column."""
    label = t.label
    if rng.random() < 0.5:
        return [label]
    extra = [c.name for c in _cols(t, ("numeric", "money", "date", "categorical"), exclude=(label, *exclude))]
    return [label, rng.choice(extra)] if extra else [label]


# ---------------------------------------------------------------------------------------------------------------
# Templates: a sampler (rng, data) -> params | None and a builder (family, params) -> _Built per kind.


def _s_filter(ctypes: Sequence[str], count_mode: bool = False) -> Callable[[random.Random, _Data], dict | None]:
    """Sampler for single-table filters; with count_mode the question may ask for a COUNT instead of a list."""

    def sample(rng: random.Random, D: _Data) -> dict | None:
        t = _table_with(rng, D.fam, lambda t: any(_cond_columns(t, ct) for ct in ctypes))
        if t is None:
            return None
        cond = _sample_cond(rng, D, t, ctypes)
        if cond is None:
            return None
        proj = _extra_proj(rng, t, (cond["col"],))
        if cond["op"] in (">", "<", ">=", "<=", "between") and cond["col"] not in proj:
            proj = [t.label, cond["col"]] if cond["col"] != t.label else [t.label]
        params: dict = {"table": t.name, "proj": proj, "cond": cond, "phr": rng.randrange(3)}
        if count_mode:
            params["mode"] = rng.choice(("list", "count"))
        return params

    return sample


def _b_filter(fam: SchemaFamily, p: dict) -> _Built:
    t = fam.table(p["table"])
    cond = p["cond"]
    where = _cond_sql(cond)
    notes = _cond_notes(t, cond)
    if p.get("mode") == "count":
        sql = f"SELECT COUNT(*) FROM {t.name} WHERE {where}"
        q = _pick(
            (
                f"How many {t.nl_plural} are there {_rel(t, cond)}?",
                f"Count the {t.nl_plural} {_rel(t, cond)}.",
                f"What is the number of {t.nl_plural} {_rel(t, cond)}?",
            ),
            p["phr"],
        )
        return _Built(sql, q, notes)
    sql = f"SELECT {_proj_sql(t, p['proj'])} FROM {t.name} WHERE {where}"
    proj = _proj_nl(t, p["proj"])
    q = _pick(
        (
            f"List the {proj} of {t.nl_plural} {_rel(t, cond)}.",
            f"What are the {proj} of all {t.nl_plural} {_rel(t, cond)}?",
            f"Show the {_proj_nl(t, p['proj'], False)} of every {t.nl} {_rel(t, cond, False)}.",
        ),
        p["phr"],
    )
    return _Built(sql, q, notes)


def _s_null(rng: random.Random, D: _Data) -> dict | None:
    t = _table_with(rng, D.fam, lambda t: bool(_cond_columns(t, "null")))
    if t is None:
        return None
    cond = _sample_cond(rng, D, t, ("null",))
    if cond is None:
        return None
    mode = "count" if cond["op"] == "not_null" else rng.choice(("list", "count"))
    return {"table": t.name, "proj": [t.label], "cond": cond, "mode": mode, "phr": rng.randrange(3)}


def _agg_sql(agg: str, col: str | None, alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    if agg == "count":
        return "COUNT(*)"
    if agg == "count_distinct":
        return f"COUNT(DISTINCT {a}{col})"
    return f"{agg.upper()}({a}{col})"


def _agg_nl(agg: str, col: Column) -> str:
    """'average price', 'total quantity', 'highest salary', 'earliest hire date'."""
    if agg == "avg":
        return f"average {col.nl}"
    if agg == "sum":
        return f"sum of the {col.nl_plural}" if col.nl.startswith("total ") else f"total {col.nl}"
    if agg == "max":
        return f"{'latest' if col.kind == 'date' else 'highest'} {col.nl}"
    if agg == "min":
        return f"{'earliest' if col.kind == 'date' else 'lowest'} {col.nl}"
    raise ValueError(agg)


def _agg_options(t: Table, exclude: Sequence[str] = ()) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = [("count", None)]
    for c in _cols(t, ("categorical", "fk", "person_name"), exclude=exclude):
        out.append(("count_distinct", c.name))
    for c in _cols(t, ("numeric", "money"), exclude=exclude):
        out += [("avg", c.name), ("sum", c.name), ("max", c.name), ("min", c.name)]
    for c in _cols(t, ("date",), exclude=exclude):
        out += [("max", c.name), ("min", c.name)]
    return out


def _s_aggregate(rng: random.Random, D: _Data) -> dict | None:
    t = rng.choice(D.fam.tables)
    agg, col = rng.choice(_agg_options(t))
    cond = _sample_cond(rng, D, t, ("eq", "bool", "cmp", "date", "in"), exclude=(col,) if col else ())
    if cond is None and agg == "count":
        return None
    if cond is None or rng.random() < 0.15 and agg != "count":
        cond = None
    return {"table": t.name, "agg": agg, "col": col, "cond": cond, "phr": rng.randrange(2)}


def _b_aggregate(fam: SchemaFamily, p: dict) -> _Built:
    t = fam.table(p["table"])
    agg, cond = p["agg"], p["cond"]
    where = f" WHERE {_cond_sql(cond)}" if cond else ""
    rel = f" {_rel(t, cond)}" if cond else ""
    sql = f"SELECT {_agg_sql(agg, p['col'])} FROM {t.name}{where}"
    if agg == "count":
        q = _pick((f"How many {t.nl_plural} are there{rel}?", f"Count the {t.nl_plural}{rel}."), p["phr"])
    elif agg == "count_distinct":
        c = t.column(p["col"])
        scope = f"{t.nl_plural}{rel}" if cond else f"all {t.nl_plural}"
        q = _pick(
            (f"How many distinct {c.nl_plural} are there among {scope}?", f"Count the different {c.nl_plural} of {scope}."),
            p["phr"],
        )
    else:
        c = t.column(p["col"])
        scope = f"{t.nl_plural}{rel}" if cond else f"all {t.nl_plural}"
        q = _pick((f"What is the {_agg_nl(agg, c)} of {scope}?", f"Find the {_agg_nl(agg, c)} among {scope}."), p["phr"])
    return _Built(sql, q, _cond_notes(t, cond))


def _group_keys(t: Table, exclude: Sequence[str] = ()) -> list[Column]:
    return _cols(t, ("categorical",), nonnull=True, exclude=exclude)


def _s_group_by(rng: random.Random, D: _Data) -> dict | None:
    t = _table_with(rng, D.fam, lambda t: bool(_group_keys(t)))
    if t is None:
        return None
    key = rng.choice(_group_keys(t))
    options = [o for o in _agg_options(t, exclude=(key.name,)) if o[0] != "count_distinct"]
    agg, col = rng.choice(options)
    cond = _sample_cond(rng, D, t, ("eq", "bool", "cmp", "date"), exclude=(key.name,)) if rng.random() < 0.5 else None
    return {"table": t.name, "key": key.name, "agg": agg, "col": col, "cond": cond, "phr": rng.randrange(2)}


def _b_group_by(fam: SchemaFamily, p: dict) -> _Built:
    t = fam.table(p["table"])
    key, agg, cond = t.column(p["key"]), p["agg"], p["cond"]
    where = f" WHERE {_cond_sql(cond)}" if cond else ""
    rel = f" {_rel(t, cond)}" if cond else ""
    sql = f"SELECT {key.name}, {_agg_sql(agg, p['col'])} FROM {t.name}{where} GROUP BY {key.name}"
    if agg == "count":
        q = _pick(
            (
                f"For each {key.nl}, how many {t.nl_plural}{rel} are there?",
                f"Show each {key.nl} together with the number of {t.nl_plural}{rel}.",
            ),
            p["phr"],
        )
    else:
        what = _agg_nl(agg, t.column(p["col"]))
        q = _pick(
            (
                f"For each {key.nl}, what is the {what} of {t.nl_plural}{rel}?",
                f"Show each {key.nl} together with the {what} of its {t.nl_plural}{rel}.",
            ),
            p["phr"],
        )
    return _Built(sql, q, _cond_notes(t, cond))


def _s_group_having(rng: random.Random, D: _Data) -> dict | None:
    t = _table_with(rng, D.fam, lambda t: bool(_group_keys(t)))
    if t is None:
        return None
    key = rng.choice(_group_keys(t))
    nums = _cols(t, ("numeric", "money"))
    agg, col = ("count", None) if not nums or rng.random() < 0.5 else (rng.choice(("avg", "sum", "max")), rng.choice(nums).name)
    # aggregate per group in one instance, then cut between two group values
    inst = D.values[rng.randrange(len(D.values))][t.name]
    groups: dict[str, list] = {}
    for i, kv in enumerate(inst[key.name]):
        groups.setdefault(kv, []).append(None if col is None else inst[col][i])
    vals = []
    for kv in sorted(groups):
        xs = groups[kv] if col is None else [x for x in groups[kv] if x is not None]
        if not xs:
            continue
        if agg == "count":
            vals.append(len(xs))
        elif agg == "avg":
            vals.append(sum(xs) / len(xs))
        elif agg == "sum":
            vals.append(sum(xs))
        else:
            vals.append(max(xs))
    if len(vals) < 3:
        return None
    op = rng.choice((">", ">=", "<"))
    n = _quantile(rng, vals, 0.3, 0.7)
    n = int(n) if agg == "count" else _nice(t.column(col or ""), n)
    return {"table": t.name, "key": key.name, "agg": agg, "col": col, "op": op, "n": n,
            "show": rng.random() < 0.5, "phr": rng.randrange(2)}


def _b_group_having(fam: SchemaFamily, p: dict) -> _Built:
    t = fam.table(p["table"])
    key, agg, op, n = t.column(p["key"]), p["agg"], p["op"], p["n"]
    aggsql = _agg_sql(agg, p["col"])
    sel = f"{key.name}, {aggsql}" if p["show"] else key.name
    sql = f"SELECT {sel} FROM {t.name} GROUP BY {key.name} HAVING {aggsql} {op} {_fmt_num(n)}"
    cmp = {">": "more than", ">=": "at least", "<": "fewer than"}[op] if agg == "count" else _CMP_NL[op]
    if agg == "count":
        cond_nl = f"{cmp} {_fmt_num(n)} {t.nl if n == 1 else t.nl_plural}"
        q = _pick(
            (f"Which {key.nl_plural} have {cond_nl}?", f"List the {key.nl_plural} that have {cond_nl}."), p["phr"]
        )
        extra = f" Also give the number of {t.nl_plural} for each."
    else:
        what = _agg_nl(agg, t.column(p["col"]))
        q = _pick(
            (
                f"Which {key.nl_plural} have {_a(what)} of {t.nl_plural} {cmp} {_fmt_num(n)}?",
                f"List the {key.nl_plural} whose {what} of {t.nl_plural} is {cmp} {_fmt_num(n)}.",
            ),
            p["phr"],
        )
        extra = f" Also give that {what} for each."
    if p["show"]:
        q += extra
    return _Built(sql, q)


def _s_order_limit(rng: random.Random, D: _Data) -> dict | None:
    t = _table_with(rng, D.fam, lambda t: bool(_cols(t, ("numeric", "money", "date"), nonnull=True)))
    if t is None:
        return None
    col = rng.choice(_cols(t, ("numeric", "money", "date"), nonnull=True))
    k = rng.choice((1, 1, 3, 3, 5, 0))
    cond = None
    if k == 0 or rng.random() < 0.4:
        cond = _sample_cond(rng, D, t, ("eq", "bool", "in", "date", "like"), exclude=(col.name,))
        if cond is None:
            return None
    proj = [t.label] if (k == 1 and rng.random() < 0.5) or col.name == t.label else [t.label, col.name]
    return {"table": t.name, "col": col.name, "dir": rng.choice(("DESC", "ASC")), "k": k, "cond": cond,
            "proj": proj, "phr": rng.randrange(2)}


def _b_order_limit(fam: SchemaFamily, p: dict) -> _Built:
    t = fam.table(p["table"])
    col, k, cond, desc = t.column(p["col"]), p["k"], p["cond"], p["dir"] == "DESC"
    where = f" WHERE {_cond_sql(cond)}" if cond else ""
    order = f" ORDER BY {col.name} {p['dir']}"
    sql = f"SELECT {_proj_sql(t, p['proj'])} FROM {t.name}{where}{order}" + (f" LIMIT {k}" if k else "")
    key_sql = f"SELECT {col.name} FROM {t.name}{where}{order}"
    is_date = col.kind == "date"
    top = ("latest" if is_date else "highest") if desc else ("earliest" if is_date else "lowest")
    bottom = ("earliest" if is_date else "lowest") if desc else ("latest" if is_date else "highest")
    proj = _proj_nl(t, p["proj"], plural_form=k != 1)
    rel_pl = f" {_rel(t, cond)}" if cond else ""
    rel_sg = f" {_rel(t, cond, False)}" if cond else ""
    sorted_nl = f"sorted by {col.nl} from {top} to {bottom}"
    if k == 1:
        q = _pick(
            (
                f"Which {t.nl}{rel_sg} has the {top} {col.nl}? Give its {proj}.",
                f"Find the {proj} of the {t.nl}{rel_sg} with the {top} {col.nl}.",
            ),
            p["phr"],
        )
    elif k:
        q = _pick(
            (
                f"List the {proj} of the {k} {t.nl_plural}{rel_pl} with the {top} {col.nl}, {sorted_nl}.",
                f"Show the top {k} {t.nl_plural}{rel_pl} by {col.nl} ({top} first): their {proj}.",
            ),
            p["phr"],
        )
    else:
        q = _pick(
            (f"List the {proj} of {t.nl_plural}{rel_pl}, {sorted_nl}.", f"Show the {proj} of all {t.nl_plural}{rel_pl}, {sorted_nl}."),
            p["phr"],
        )
    return _Built(sql, q, _cond_notes(t, cond), order_key_sql=key_sql, limit=k)


def _s_distinct(rng: random.Random, D: _Data) -> dict | None:
    t = _table_with(rng, D.fam, lambda t: bool(_cols(t, ("categorical",))))
    if t is None:
        return None
    col = rng.choice(_cols(t, ("categorical",)))
    cond = _sample_cond(rng, D, t, ("eq", "bool", "cmp", "date", "like"), exclude=(col.name,))
    if cond is None:
        return None
    return {"table": t.name, "col": col.name, "cond": cond, "phr": rng.randrange(2)}


def _b_distinct(fam: SchemaFamily, p: dict) -> _Built:
    t = fam.table(p["table"])
    col, cond = t.column(p["col"]), p["cond"]
    sql = f"SELECT DISTINCT {col.name} FROM {t.name} WHERE {_cond_sql(cond)}"
    q = _pick(
        (
            f"Which distinct {col.nl_plural} appear among {t.nl_plural} {_rel(t, cond)}?",
            f"List the different {col.nl_plural} of {t.nl_plural} {_rel(t, cond)}, each once.",
        ),
        p["phr"],
    )
    return _Built(sql, q, _cond_notes(t, cond))


_JOIN_COND = ("eq", "bool", "cmp", "date", "in", "like")


def _s_join2(rng: random.Random, D: _Data) -> dict | None:
    if not D.edges:
        return None
    e = rng.choice(D.edges)
    child, parent = D.fam.table(e.child), D.fam.table(e.parent)
    variant = rng.choice(("child_by_parent", "parent_by_child", "pair"))
    if variant == "child_by_parent":
        cond = _sample_cond(rng, D, parent, _JOIN_COND)
        proj = _extra_proj(rng, child, (e.column,))
    else:
        cond = _sample_cond(rng, D, child, _JOIN_COND, exclude=(e.column,))
        proj = [child.label]
    if cond is None:
        return None
    return {"variant": variant, "child": e.child, "fk": e.column, "proj": proj, "cond": cond, "phr": rng.randrange(2)}


def _b_join2(fam: SchemaFamily, p: dict) -> _Built:
    e = _edge(fam, p["child"], p["fk"])
    child, parent = fam.table(e.child), fam.table(e.parent)
    fk_nl = child.column(e.column).nl
    cond, variant = p["cond"], p["variant"]
    frm = f"FROM {child.name} AS T1 JOIN {parent.name} AS T2 ON {_join_on(fam, e, 'T1', 'T2')}"
    if variant == "child_by_parent":
        sql = f"SELECT {_proj_sql(child, p['proj'], 'T1')} {frm} WHERE {_cond_sql(cond, 'T2')}"
        proj = _proj_nl(child, p["proj"])
        q = _pick(
            (
                f"List the {proj} of {child.nl_plural} whose {fk_nl} {_pred(parent, cond)}.",
                f"What are the {proj} of the {child.nl_plural} whose {fk_nl} {_pred(parent, cond)}?",
            ),
            p["phr"],
        )
        return _Built(sql, q, _cond_notes(parent, cond))
    lp = _label(parent)
    if variant == "parent_by_child":
        sql = f"SELECT DISTINCT T2.{lp.name} {frm} WHERE {_cond_sql(cond, 'T1')}"
        inv = _inv(fam, e, True, "at least one")
        q = _pick(
            (
                f"List the distinct {lp.nl_plural} of {parent.nl_plural} {inv} {_rel(child, cond, False)}.",
                f"What are the different {lp.nl_plural} of {parent.nl_plural} {inv} {_rel(child, cond, False)}?",
            ),
            p["phr"],
        )
        return _Built(sql, q, _cond_notes(child, cond))
    lc = _label(child)
    sql = f"SELECT T1.{lc.name}, T2.{lp.name} {frm} WHERE {_cond_sql(cond, 'T1')}"
    q = _pick(
        (
            f"For each {child.nl} {_rel(child, cond, False)}, show its {lc.nl} and the {lp.nl} of its {fk_nl}.",
            f"List the {lc.nl} of every {child.nl} {_rel(child, cond, False)} together with the {lp.nl} of its {fk_nl}.",
        ),
        p["phr"],
    )
    return _Built(sql, q, _cond_notes(child, cond))


def _paths3(fam: SchemaFamily) -> list[tuple[str, ForeignKey, ForeignKey]]:
    """Two-edge join paths: ("link", A<-M->B), ("down", A<-M<-C), ("up", A->M->B)."""
    edges = foreign_keys(fam)
    out = []
    for e1 in edges:
        for e2 in edges:
            if e1 == e2:
                continue
            if e1.child == e2.child and e1.child not in (e1.parent, e2.parent):
                out.append(("link", e1, e2))
            if e2.parent == e1.child and e1.child != e1.parent and e2.child != e2.parent:
                out.append(("down", e1, e2))
            if e1.parent == e2.child and e1.child != e1.parent and e2.child != e2.parent:
                out.append(("up", e1, e2))
    return out


def _s_join3(rng: random.Random, D: _Data) -> dict | None:
    paths = _paths3(D.fam)
    if not paths:
        return None
    pattern, e1, e2 = rng.choice(paths)
    last = D.fam.table(e2.parent if pattern in ("link", "up") else e2.child)
    exclude = (e2.column,) if pattern == "down" else ()
    cond = _sample_cond(rng, D, last, _JOIN_COND, exclude=exclude)
    if cond is None:
        return None
    p = {"pattern": pattern, "t1": e1.child, "fk1": e1.column, "t2": e2.child, "fk2": e2.column, "cond": cond,
         "phr": rng.randrange(2)}
    if pattern == "up":
        p["proj"] = _extra_proj(rng, D.fam.table(e1.child), (e1.column,))
    return p


def _b_join3(fam: SchemaFamily, p: dict) -> _Built:
    e1, e2 = _edge(fam, p["t1"], p["fk1"]), _edge(fam, p["t2"], p["fk2"])
    pattern, cond = p["pattern"], p["cond"]
    if pattern == "link":  # A <- M -> B, project A
        a, m, b = fam.table(e1.parent), fam.table(e1.child), fam.table(e2.parent)
        la = _label(a)
        sql = (
            f"SELECT DISTINCT T1.{la.name} FROM {a.name} AS T1 JOIN {m.name} AS T2 ON {_join_on(fam, e1, 'T2', 'T1')} "
            f"JOIN {b.name} AS T3 ON {_join_on(fam, e2, 'T2', 'T3')} WHERE {_cond_sql(cond, 'T3')}"
        )
        clause = f"{_inv(fam, e1, True, 'at least one')} whose {m.column(e2.column).nl} {_pred(b, cond)}"
        last = b
        q = _pick(
            (f"List the distinct {la.nl_plural} of {a.nl_plural} {clause}.", f"{_which(a.nl_plural, clause)}? Give their distinct {la.nl_plural}."),
            p["phr"],
        )
    elif pattern == "down":  # A <- M <- C, project A
        a, m, c = fam.table(e1.parent), fam.table(e1.child), fam.table(e2.child)
        la = _label(a)
        sql = (
            f"SELECT DISTINCT T1.{la.name} FROM {a.name} AS T1 JOIN {m.name} AS T2 ON {_join_on(fam, e1, 'T2', 'T1')} "
            f"JOIN {c.name} AS T3 ON {_join_on(fam, e2, 'T3', 'T2')} WHERE {_cond_sql(cond, 'T3')}"
        )
        clause = f"{_inv(fam, e1, True, 'at least one')} {_inv(fam, e2, False, 'at least one')} {_rel(c, cond, False)}"
        last = c
        q = _pick(
            (f"List the distinct {la.nl_plural} of {a.nl_plural} {clause}.", f"{_which(a.nl_plural, clause)}? Give their distinct {la.nl_plural}."),
            p["phr"],
        )
    else:  # up: A -> M -> B, project A
        a, m, b = fam.table(e1.child), fam.table(e1.parent), fam.table(e2.parent)
        proj = p["proj"]
        sql = (
            f"SELECT {_proj_sql(a, proj, 'T1')} FROM {a.name} AS T1 JOIN {m.name} AS T2 ON {_join_on(fam, e1, 'T1', 'T2')} "
            f"JOIN {b.name} AS T3 ON {_join_on(fam, e2, 'T2', 'T3')} WHERE {_cond_sql(cond, 'T3')}"
        )
        clause = f"whose {a.column(e1.column).nl} has {_a(m.column(e2.column).nl)} that {_pred(b, cond)}"
        last = b
        q = _pick(
            (f"List the {_proj_nl(a, proj)} of {a.nl_plural} {clause}.", f"What are the {_proj_nl(a, proj)} of the {a.nl_plural} {clause}?"),
            p["phr"],
        )
    return _Built(sql, q, _cond_notes(last, cond))


def _s_join_aggregate(rng: random.Random, D: _Data) -> dict | None:
    if not D.edges:
        return None
    e = rng.choice(D.edges)
    child, parent = D.fam.table(e.child), D.fam.table(e.parent)
    variant = rng.choice(("by_parent_cat", "per_parent", "filtered"))
    nums = _cols(child, ("numeric", "money"))
    aggcol: tuple[str, str | None] = ("count", None)
    if nums and rng.random() < 0.6:
        aggcol = (rng.choice(("avg", "sum", "max", "min")), rng.choice(nums).name)
    p: dict = {"variant": variant, "child": e.child, "fk": e.column, "agg": aggcol[0], "col": aggcol[1], "phr": rng.randrange(2)}
    if variant == "by_parent_cat":
        keys = _group_keys(parent)
        if not keys:
            return None
        p["key"] = rng.choice(keys).name
    elif variant == "per_parent":
        # children per parent in one instance; threshold around the upper part of the distribution
        counts: dict[int, int] = {}
        for v in D.column(rng, child.name, e.column):
            counts[v] = counts.get(v, 0) + 1
        if len(counts) < 3:
            return None
        p["agg"], p["col"] = "count", None
        p["n"] = int(_quantile(rng, list(counts.values()), 0.75, 0.97))
        if p["n"] < 2:
            return None
    else:
        cond = _sample_cond(rng, D, parent, _JOIN_COND)
        if cond is None:
            return None
        p["cond"] = cond
    return p


def _b_join_aggregate(fam: SchemaFamily, p: dict) -> _Built:
    e = _edge(fam, p["child"], p["fk"])
    child, parent = fam.table(e.child), fam.table(e.parent)
    fk_nl = child.column(e.column).nl
    agg, variant = p["agg"], p["variant"]
    aggsql = _agg_sql(agg, p["col"], "T1")
    frm = f"FROM {child.name} AS T1 JOIN {parent.name} AS T2 ON {_join_on(fam, e, 'T1', 'T2')}"
    what = None if agg == "count" else _agg_nl(agg, child.column(p["col"]))
    if variant == "by_parent_cat":
        key = parent.column(p["key"])
        # "customer segment", but "property type" rather than "property property type"
        key_nl = key.nl if key.nl.split()[0] == fk_nl.split()[-1] else f"{fk_nl} {key.nl}"
        sql = f"SELECT T2.{key.name}, {aggsql} {frm} GROUP BY T2.{key.name}"
        if what is None:
            q = _pick(
                (f"For each {key_nl}, how many {child.nl_plural} are there?", f"Count the {child.nl_plural} per {key_nl}."),
                p["phr"],
            )
        else:
            q = _pick(
                (f"What is the {what} of {child.nl_plural} for each {key_nl}?", f"For each {key_nl}, find the {what} of the {child.nl_plural}."),
                p["phr"],
            )
        return _Built(sql, q)
    if variant == "per_parent":
        lp = _label(parent)
        n = p["n"]
        sql = f"SELECT T2.{lp.name}, COUNT(*) {frm} GROUP BY T2.{e.parent_column} HAVING COUNT(*) >= {n}"
        inv = _inv(fam, e, True, f"at least {n}")
        q = _pick(
            (
                f"List the {lp.nl} of each {parent.nl} {_inv(fam, e, False, f'at least {n}')}, together with that number of {child.nl_plural}.",
                f"{_which(parent.nl_plural, inv)}? Show their {lp.nl_plural} and their numbers of {child.nl_plural}.",
            ),
            p["phr"],
        )
        return _Built(sql, q)
    cond = p["cond"]
    sql = f"SELECT {aggsql} {frm} WHERE {_cond_sql(cond, 'T2')}"
    if what is None:
        q = _pick(
            (f"How many {child.nl_plural} have {_a(fk_nl)} that {_pred(parent, cond)}?", f"Count the {child.nl_plural} whose {fk_nl} {_pred(parent, cond)}."),
            p["phr"],
        )
    else:
        q = _pick(
            (f"What is the {what} of {child.nl_plural} whose {fk_nl} {_pred(parent, cond)}?", f"Find the {what} among {child.nl_plural} whose {fk_nl} {_pred(parent, cond)}."),
            p["phr"],
        )
    return _Built(sql, q, _cond_notes(parent, cond))


def _s_nested_scalar(rng: random.Random, D: _Data) -> dict | None:
    t = _table_with(rng, D.fam, lambda t: bool(_cols(t, ("numeric", "money"), nonnull=True)))
    if t is None:
        return None
    col = rng.choice(_cols(t, ("numeric", "money"), nonnull=True))
    variant = rng.choice(("above_avg", "count_vs_avg", "vs_extreme"))
    cond = _sample_cond(rng, D, t, ("eq", "bool", "date", "in"), exclude=(col.name,))
    if cond is None and variant != "count_vs_avg":
        return None
    return {"variant": variant, "table": t.name, "col": col.name, "op": rng.choice((">", "<")), "cond": cond,
            "proj": [t.label, col.name] if col.name != t.label else [t.label], "phr": rng.randrange(2)}


def _b_nested_scalar(fam: SchemaFamily, p: dict) -> _Built:
    t = fam.table(p["table"])
    col, op, cond, variant = t.column(p["col"]), p["op"], p["cond"], p["variant"]
    above = "above" if op == ">" else "below"
    proj = _proj_nl(t, p["proj"])
    if variant == "above_avg":
        sql = (
            f"SELECT {_proj_sql(t, p['proj'])} FROM {t.name} WHERE {col.name} {op} (SELECT AVG({col.name}) FROM {t.name}) "
            f"AND {_cond_sql(cond)}"
        )
        q = _pick(
            (
                f"Among {t.nl_plural} {_rel(t, cond)}, list the {proj} of those whose {col.nl} is {above} the average {col.nl} of all {t.nl_plural}.",
                f"Which {t.nl_plural} {_rel(t, cond)} have {_a(col.nl)} {above} the overall average {col.nl}? Show their {proj}.",
            ),
            p["phr"],
        )
    elif variant == "count_vs_avg":
        inner_where = f" WHERE {_cond_sql(cond)}" if cond else ""
        scope = f"{t.nl_plural} {_rel(t, cond)}" if cond else f"all {t.nl_plural}"
        sql = f"SELECT COUNT(*) FROM {t.name} WHERE {col.name} {op} (SELECT AVG({col.name}) FROM {t.name}{inner_where})"
        q = _pick(
            (
                f"How many {t.nl_plural} have {_a(col.nl)} {above} the average {col.nl} of {scope}?",
                f"Count the {t.nl_plural} whose {col.nl} is {above} the average {col.nl} of {scope}.",
            ),
            p["phr"],
        )
    else:
        extreme = "MAX" if op == ">" else "MIN"
        cmp = "higher" if op == ">" else "lower"
        sql = (
            f"SELECT {_proj_sql(t, p['proj'])} FROM {t.name} WHERE {col.name} {op} "
            f"(SELECT {extreme}({col.name}) FROM {t.name} WHERE {_cond_sql(cond)})"
        )
        q = _pick(
            (
                f"List the {proj} of {t.nl_plural} whose {col.nl} is {cmp} than that of every {t.nl} {_rel(t, cond, False)}.",
                f"Which {t.nl_plural} have {_a(col.nl)} {cmp} than all {t.nl_plural} {_rel(t, cond)}? Show their {proj}.",
            ),
            p["phr"],
        )
    return _Built(sql, q, _cond_notes(t, cond))


def _s_nested_in(rng: random.Random, D: _Data) -> dict | None:
    if not D.edges:
        return None
    e = rng.choice(D.edges)
    child = D.fam.table(e.child)
    variant = rng.choice(("in", "not_in", "count_not_in"))
    cond = _sample_cond(rng, D, child, _JOIN_COND, exclude=(e.column,))
    if variant == "in" and cond is None:
        return None
    if variant != "in" and rng.random() < 0.5:
        cond = None
    return {"variant": variant, "child": e.child, "fk": e.column, "cond": cond, "phr": rng.randrange(2)}


def _b_nested_in(fam: SchemaFamily, p: dict) -> _Built:
    e = _edge(fam, p["child"], p["fk"])
    child, parent = fam.table(e.child), fam.table(e.parent)
    lp = _label(parent)
    cond, variant = p["cond"], p["variant"]
    conds = [_cond_sql(cond)] if cond else []
    if variant != "in" and child.column(e.column).nullable:
        conds.append(f"{e.column} IS NOT NULL")
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    sub = f"SELECT {e.column} FROM {child.name}{where}"
    rel = f" {_rel(child, cond, False)}" if cond else ""
    notes = _cond_notes(child, cond)
    if variant == "in":
        sql = f"SELECT {lp.name} FROM {parent.name} WHERE {e.parent_column} IN ({sub})"
        q = _pick(
            (
                f"{_which(parent.nl_plural, _inv(fam, e, True, 'some'))}{rel}? List their {lp.nl_plural}.",
                f"Give the {lp.nl} of every {parent.nl} {_inv(fam, e, False, 'some')}{rel}.",
            ),
            p["phr"],
        )
        return _Built(sql, q, notes)
    none = _inv_none(fam, e) + rel
    if variant == "not_in":
        sql = f"SELECT {lp.name} FROM {parent.name} WHERE {e.parent_column} NOT IN ({sub})"
        q = _pick((f"List the {lp.nl_plural} of {parent.nl_plural} {none}.", f"{_which(parent.nl_plural, none)}? Give their {lp.nl_plural}."), p["phr"])
        return _Built(sql, q, notes)
    sql = f"SELECT COUNT(*) FROM {parent.name} WHERE {e.parent_column} NOT IN ({sub})"
    q = _pick((f"How many {parent.nl_plural} are there {none}?", f"Count the {parent.nl_plural} {none}."), p["phr"])
    return _Built(sql, q, notes)


_SET_OPS = ("UNION", "INTERSECT", "EXCEPT")


def _s_set_op(rng: random.Random, D: _Data) -> dict | None:
    op = rng.choice(_SET_OPS)
    if D.edges and rng.random() < 0.5:
        e = rng.choice(D.edges)
        child = D.fam.table(e.child)
        c1 = _sample_cond(rng, D, child, ("eq", "bool", "cmp", "date", "in"), exclude=(e.column,))
        c2 = _sample_cond(rng, D, child, ("eq", "bool", "cmp", "date", "in"), exclude=(e.column, c1["col"]) if c1 else ())
        if c1 is None or c2 is None:
            return None
        return {"variant": "via_join", "op": op, "child": e.child, "fk": e.column, "cond1": c1, "cond2": c2, "phr": rng.randrange(2)}
    t = rng.choice(D.fam.tables)
    c1 = _sample_cond(rng, D, t, ("eq", "bool", "cmp", "date", "like", "in"))
    if c1 is None:
        return None
    c2 = _sample_cond(rng, D, t, ("eq", "bool", "cmp", "date", "like", "in"), exclude=(c1["col"],))
    if c2 is None:
        return None
    return {"variant": "same_table", "op": op, "table": t.name, "cond1": c1, "cond2": c2, "phr": rng.randrange(2)}


def _b_set_op(fam: SchemaFamily, p: dict) -> _Built:
    op, c1, c2 = p["op"], p["cond1"], p["cond2"]
    if p["variant"] == "via_join":
        e = _edge(fam, p["child"], p["fk"])
        child, parent = fam.table(e.child), fam.table(e.parent)
        lab = _label(parent)
        frm = f"FROM {child.name} AS T1 JOIN {parent.name} AS T2 ON {_join_on(fam, e, 'T1', 'T2')}"
        s1 = f"SELECT T2.{lab.name} {frm} WHERE {_cond_sql(c1, 'T1')}"
        s2 = f"SELECT T2.{lab.name} {frm} WHERE {_cond_sql(c2, 'T1')}"
        inv = _inv(fam, e, True, "a")
        x1 = f"{parent.nl_plural} {inv} {_rel(child, c1, False)}"
        x2 = f"{parent.nl_plural} {inv} {_rel(child, c2, False)}"
        notes = _cond_notes(child, c1) + _cond_notes(child, c2)
    else:
        t = fam.table(p["table"])
        lab = _label(t)
        s1 = f"SELECT {lab.name} FROM {t.name} WHERE {_cond_sql(c1)}"
        s2 = f"SELECT {lab.name} FROM {t.name} WHERE {_cond_sql(c2)}"
        x1, x2 = f"{t.nl_plural} {_rel(t, c1)}", f"{t.nl_plural} {_rel(t, c2)}"
        notes = _cond_notes(t, c1) + _cond_notes(t, c2)
    sql = f"{s1} {op} {s2}"
    labs = lab.nl_plural
    if op == "UNION":
        q = _pick(
            (
                f"List, without duplicates, every {lab.nl} that belongs to {x1} or to {x2}.",
                f"Combine the {labs} of {x1} with the {labs} of {x2}, listing each {lab.nl} once.",
            ),
            p["phr"],
        )
    elif op == "INTERSECT":
        q = _pick(
            (
                f"List the {labs} that appear both among the {labs} of {x1} and among the {labs} of {x2}.",
                f"Which {labs} are shared by {x1} and {x2}? List each once.",
            ),
            p["phr"],
        )
    else:
        q = _pick(
            (
                f"List the {labs} of {x1}, excluding every {lab.nl} that also belongs to {x2}. List each once.",
                f"Which {labs} appear among {x1} but not among {x2}? List each once.",
            ),
            p["phr"],
        )
    return _Built(sql, q, list(dict.fromkeys(notes)))


def _s_case_when(rng: random.Random, D: _Data) -> dict | None:
    t = _table_with(rng, D.fam, lambda t: bool(_cols(t, ("numeric", "money"))))
    if t is None:
        return None
    col = rng.choice(_cols(t, ("numeric", "money")))
    values = D.column(rng, t.name, col.name)
    if not values:
        return None
    val = _nice(col, _quantile(rng, values, 0.3, 0.7))
    if rng.random() < 0.5 and _group_keys(t, exclude=(col.name,)):
        key = rng.choice(_group_keys(t, exclude=(col.name,)))
        return {"variant": "count_by_group", "table": t.name, "col": col.name, "key": key.name, "val": val, "phr": rng.randrange(2)}
    cond = _sample_cond(rng, D, t, ("eq", "bool", "date", "like", "in"), exclude=(col.name,))
    if cond is None:
        return None
    return {"variant": "label_rows", "table": t.name, "col": col.name, "cond": cond, "val": val, "phr": rng.randrange(2)}


def _b_case_when(fam: SchemaFamily, p: dict) -> _Built:
    t = fam.table(p["table"])
    col, val = t.column(p["col"]), p["val"]
    v = _fmt_num(val)
    if p["variant"] == "count_by_group":
        key = t.column(p["key"])
        sql = f"SELECT {key.name}, SUM(CASE WHEN {col.name} > {v} THEN 1 ELSE 0 END) FROM {t.name} GROUP BY {key.name}"
        q = _pick(
            (
                f"For each {key.nl}, count the {t.nl_plural} whose {col.nl} is greater than {v} (report 0 for a {key.nl} with none).",
                f"Show every {key.nl} with the number of its {t.nl_plural} that have {_a(col.nl)} above {v}, including {key.nl_plural} where that number is 0.",
            ),
            p["phr"],
        )
        return _Built(sql, q)
    cond = p["cond"]
    lab = _label(t)
    sql = (
        f"SELECT {lab.name}, CASE WHEN {col.name} >= {v} THEN 'high' ELSE 'low' END FROM {t.name} "
        f"WHERE {_cond_sql(cond)}"
    )
    q = _pick(
        (
            f"For each {t.nl} {_rel(t, cond, False)}, show its {lab.nl} and the label 'high' if its {col.nl} is at least {v}, otherwise 'low'.",
            f"List the {lab.nl} of every {t.nl} {_rel(t, cond, False)} with a second column that is 'high' when its {col.nl} is {v} or more and 'low' otherwise.",
        ),
        p["phr"],
    )
    notes = _cond_notes(t, cond)
    if col.nullable:
        notes.append(f"{_cap(_a(t.nl))} with a missing {col.nl} gets 'low'.")
    return _Built(sql, q, notes)


_SAMPLERS: dict[str, Callable[[random.Random, _Data], dict | None]] = {
    "filter_eq": _s_filter(("eq", "bool")),
    "filter_compare": _s_filter(("cmp",)),
    "filter_like": _s_filter(("like",)),
    "filter_in": _s_filter(("in",), count_mode=True),
    "filter_between": _s_filter(("between",)),
    "filter_date": _s_filter(("date",), count_mode=True),
    "null_check": _s_null,
    "aggregate": _s_aggregate,
    "group_by": _s_group_by,
    "group_having": _s_group_having,
    "order_limit": _s_order_limit,
    "distinct": _s_distinct,
    "join2": _s_join2,
    "join3": _s_join3,
    "join_aggregate": _s_join_aggregate,
    "nested_scalar": _s_nested_scalar,
    "nested_in": _s_nested_in,
    "set_op": _s_set_op,
    "case_when": _s_case_when,
}

_BUILDERS: dict[str, Callable[[SchemaFamily, dict], _Built]] = {
    "filter_eq": _b_filter,
    "filter_compare": _b_filter,
    "filter_like": _b_filter,
    "filter_in": _b_filter,
    "filter_between": _b_filter,
    "filter_date": _b_filter,
    "null_check": _b_filter,
    "aggregate": _b_aggregate,
    "group_by": _b_group_by,
    "group_having": _b_group_having,
    "order_limit": _b_order_limit,
    "distinct": _b_distinct,
    "join2": _b_join2,
    "join3": _b_join3,
    "join_aggregate": _b_join_aggregate,
    "nested_scalar": _b_nested_scalar,
    "nested_in": _b_nested_in,
    "set_op": _b_set_op,
    "case_when": _b_case_when,
}

assert tuple(_SAMPLERS) == TEMPLATE_KINDS and tuple(_BUILDERS) == TEMPLATE_KINDS


def supported_kinds(family: str) -> tuple[str, ...]:
    """Template kinds whose slots the family's schema can fill (static check, no data)."""
    fam = _fam(family)
    ts = fam.tables
    has = lambda pred: any(pred(t) for t in ts)  # noqa: E731
    edges = foreign_keys(fam)
    ok = {
        "filter_eq": has(lambda t: bool(_cond_columns(t, "eq") or _cond_columns(t, "bool"))),
        "filter_compare": has(lambda t: bool(_cond_columns(t, "cmp"))),
        "filter_like": has(lambda t: bool(_cond_columns(t, "like"))),
        "filter_in": has(lambda t: bool(_cond_columns(t, "in"))),
        "filter_between": has(lambda t: bool(_cond_columns(t, "between"))),
        "filter_date": has(lambda t: bool(_cond_columns(t, "date"))),
        "null_check": has(lambda t: bool(_cond_columns(t, "null"))),
        "aggregate": True,
        "group_by": has(lambda t: bool(_group_keys(t))),
        "group_having": has(lambda t: bool(_group_keys(t))),
        "order_limit": has(lambda t: bool(_cols(t, ("numeric", "money", "date"), nonnull=True))),
        "distinct": has(lambda t: bool(_cols(t, ("categorical",)))),
        "join2": bool(edges),
        "join3": bool(_paths3(fam)),
        "join_aggregate": bool(edges),
        "nested_scalar": has(lambda t: bool(_cols(t, ("numeric", "money"), nonnull=True))),
        "nested_in": bool(edges),
        "set_op": True,
        "case_when": has(lambda t: bool(_cols(t, ("numeric", "money")))),
    }
    return tuple(k for k in TEMPLATE_KINDS if ok[k])


# ---------------------------------------------------------------------------------------------------------------
# Difficulty (Spider's hardness rule of thumb) and group keys


def _own(select: exp.Expression, kind: type) -> list[exp.Expression]:
    """Nodes of a kind inside a SELECT but outside its nested subqueries."""
    out = []
    for node in select.walk(prune=lambda n: n is not select and isinstance(n, (exp.Select, exp.SetOperation))):
        if isinstance(node, kind) and node is not select:
            out.append(node)
    return out


def hardness(sql: str) -> str:
    """Spider-style hardness ('easy' | 'medium' | 'hard' | 'extra') from the SQL's components."""
    tree = sqlglot.parse_one(sql, read="sqlite")
    comp2 = 0
    main = tree
    while isinstance(main, exp.SetOperation):
        comp2 += 1
        main = main.left
    assert isinstance(main, exp.Select)
    comp2 += sum(1 for s in tree.find_all(exp.Select) if s is not main and not isinstance(s.parent, exp.SetOperation))
    where, group = main.args.get("where"), main.args.get("group")
    comp1 = sum(1 for part in ("where", "group", "order", "limit") if main.args.get(part))
    comp1 += len(main.args.get("joins") or [])
    comp1 += len(_own(main, exp.Or)) + len(_own(main, exp.Like))
    aggs = len(_own(main, exp.AggFunc))
    where_conds = 1 + len(_own(where, exp.And)) if where is not None else 0
    others = int(aggs > 1) + int(len(main.expressions) > 1) + int(where_conds > 1)
    others += int(group is not None and len(group.expressions) > 1)
    if comp1 <= 1 and others == 0 and comp2 == 0:
        return "easy"
    if (others <= 2 and comp1 <= 1 and comp2 == 0) or (comp1 <= 2 and others < 2 and comp2 == 0):
        return "medium"
    if (
        (others > 2 and comp1 <= 2 and comp2 == 0)
        or (2 < comp1 <= 3 and others <= 2 and comp2 == 0)
        or (comp1 <= 1 and others == 0 and comp2 <= 1)
    ):
        return "hard"
    return "extra"


def _structure(obj: Any, exclude: frozenset[str]) -> Any:
    if isinstance(obj, dict):
        return {k: _structure(v, exclude) for k, v in sorted(obj.items()) if k not in exclude}
    if isinstance(obj, list):
        return [_structure(v, exclude) for v in obj]
    return obj


def group_key(family: str, template: str, params: dict, exclude: frozenset[str] = _LITERAL_KEYS) -> str:
    """Near-duplicate key: family, template and the params' structure without the `exclude` keys.

    By default only literal values are excluded (tables, columns and operators stay); callers that want coarser
    groups pass a larger `exclude` set.
    """
    return f"{family}/{template}/" + json.dumps(_structure(params, exclude), sort_keys=True, separators=(",", ":"))


def build_question(family: str, template: str, params: dict) -> SqlQuestion:
    """Render gold SQL and question text from (family, template, params) alone (no database access)."""
    built = _BUILDERS[template](_fam(family), params)
    notes = list(dict.fromkeys(built.notes))
    return SqlQuestion(
        family=family,
        template=template,
        params=params,
        question=built.question,
        gold_sql=built.sql,
        difficulty=hardness(built.sql),
        group_key=group_key(family, template, params),
        evidence=" ".join(notes) if notes else None,
    )


# ---------------------------------------------------------------------------------------------------------------
# Validation against the instances


def _norm_cell(v: Any) -> Any:
    return round(v, 6) if isinstance(v, float) else v


def _canon(rows: list[tuple], ordered: bool) -> tuple:
    norm = [tuple(_norm_cell(v) for v in r) for r in rows]
    return tuple(norm) if ordered else tuple(sorted(norm, key=repr))


def _valid(D: _Data, built: _Built) -> bool:
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


def generate_questions(family: str, instance_paths: Sequence[Path], *, seed: int, count: int) -> list[SqlQuestion]:
    """Sample up to ``count`` unique, validated questions for a family, cycling over every supported template kind.

    Deterministic for (family, instance contents, seed, count); may return fewer when the family runs out.
    """
    fam = _fam(family)
    D = _Data(fam, instance_paths)
    try:
        rng = random.Random(stable_seed("agentgym-sql-questions", family, seed))
        kinds = list(supported_kinds(family))
        fails = {k: 0 for k in kinds}
        out: list[SqlQuestion] = []
        seen_sql: set[str] = set()
        seen_text: set[str] = set()
        budget = max(200, 40 * count)
        while len(out) < count and kinds and budget > 0:
            order = list(kinds)
            rng.shuffle(order)
            for kind in order:
                if len(out) >= count or budget <= 0:
                    break
                budget -= 1
                accepted = False
                params = _SAMPLERS[kind](rng, D)
                if params is not None:
                    built = _BUILDERS[kind](fam, params)
                    if built.sql not in seen_sql and built.question not in seen_text and _valid(D, built):
                        seen_sql.add(built.sql)
                        seen_text.add(built.question)
                        out.append(build_question(family, kind, params))
                        accepted = True
                fails[kind] = 0 if accepted else fails[kind] + 1
            kinds = [k for k in kinds if fails[k] < 60]
        return out
    finally:
        D.close()
