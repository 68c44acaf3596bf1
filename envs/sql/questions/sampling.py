"""How the templates draw their slots: schema columns that fit a slot, and literals read from the instance data."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from ..schemas import Column, ForeignKey, SchemaFamily, Table, foreign_keys
from .instances import InstanceData

# Condition types a join or subquery template may put on the far table of a foreign key.
JOIN_CONDITIONS = ("eq", "bool", "cmp", "date", "in", "like")


def columns_of(t: Table, kinds: Sequence[str], *, nonnull: bool = False, exclude: Sequence[str] = ()) -> list[Column]:
    """The table's columns of the given kinds, optionally only NOT NULL ones, minus ``exclude``."""
    return [c for c in t.columns if c.kind in kinds and c.name not in exclude and not (nonnull and c.nullable)]


def group_keys(t: Table, exclude: Sequence[str] = ()) -> list[Column]:
    """Columns a GROUP BY may use: NOT NULL categoricals."""
    return columns_of(t, ("categorical",), nonnull=True, exclude=exclude)


def nice(col: Column, v: float | int) -> float | int:
    """A round literal for the column: integers stay integers, large numbers round to units, small to tenths."""
    if col.type == "INTEGER":
        return int(v)
    if abs(v) >= 10:
        return int(round(v))
    return round(float(v), 1)


def quantile(rng: random.Random, values: list, lo: float, hi: float) -> Any:
    """A value at a random quantile in [lo, hi] of the values."""
    s = sorted(values)
    q = rng.uniform(lo, hi)
    return s[min(len(s) - 1, max(0, int(q * (len(s) - 1))))]


def cond_columns(t: Table, ctype: str, exclude: Sequence[str] = ()) -> list[Column]:
    """Columns of the table that a condition of type ``ctype`` can test."""
    if ctype == "eq" or ctype == "in":
        return columns_of(t, ("categorical",), exclude=exclude)
    if ctype == "bool":
        return columns_of(t, ("bool",), exclude=exclude)
    if ctype in ("cmp", "between"):
        return columns_of(t, ("numeric", "money"), exclude=exclude)
    if ctype == "date":
        return columns_of(t, ("date",), exclude=exclude)
    if ctype == "like":
        return columns_of(t, ("person_name", "name"), exclude=exclude)
    if ctype == "null":
        return [c for c in t.columns if c.nullable and c.name not in exclude and c.kind != "fk"]
    raise ValueError(ctype)


def sample_cond(
    rng: random.Random, D: InstanceData, t: Table, ctypes: Sequence[str], exclude: Sequence[str] = ()
) -> dict | None:
    """A condition of one of the given types on a column of t, with a literal drawn from instance data."""
    options = [ct for ct in ctypes if cond_columns(t, ct, exclude)]
    if not options:
        return None
    ctype = rng.choice(options)
    col = rng.choice(cond_columns(t, ctype, exclude))
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
        q = quantile(rng, values, 0.75, 0.97) if op in (">", ">=") else quantile(rng, values, 0.03, 0.25)
        return {"col": col.name, "op": op, "val": nice(col, q)}
    if ctype == "between":
        a = rng.uniform(0.05, 0.85)
        w = rng.uniform(0.03, 0.12)
        lo, hi = nice(col, quantile(rng, values, a, a)), nice(col, quantile(rng, values, a + w, a + w))
        if not lo < hi:
            return None
        return {"col": col.name, "op": "between", "val": [lo, hi]}
    if ctype == "date":
        op = rng.choice(("between", "before", "after", "year"))
        if op == "year":
            return {"col": col.name, "op": "year", "val": rng.choice(sorted(values))[:4]}
        if op == "before":
            return {"col": col.name, "op": "before", "val": quantile(rng, values, 0.02, 0.15)}
        if op == "after":
            return {"col": col.name, "op": "after", "val": quantile(rng, values, 0.85, 0.98)}
        a = rng.uniform(0.0, 0.9)
        lo, hi = quantile(rng, values, a, a), quantile(rng, values, a + 0.06, a + 0.1)
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


def table_with(rng: random.Random, fam: SchemaFamily, pred: Callable[[Table], bool]) -> Table | None:
    """A random table of the family that satisfies ``pred``, or None."""
    options = [t for t in fam.tables if pred(t)]
    return rng.choice(options) if options else None


def has_column(kinds: Sequence[str], *, nonnull: bool = False) -> Callable[[Table], bool]:
    """A table predicate: the table has a column of one of the kinds (NOT NULL when asked)."""
    return lambda t: bool(columns_of(t, kinds, nonnull=nonnull))


def table_and_column(
    rng: random.Random, fam: SchemaFamily, kinds: Sequence[str], *, nonnull: bool = False
) -> tuple[Table, Column] | None:
    """A random table with a column of one of the kinds, and a random such column; None when no table has one."""
    t = table_with(rng, fam, has_column(kinds, nonnull=nonnull))
    if t is None:
        return None
    return t, rng.choice(columns_of(t, kinds, nonnull=nonnull))


def random_edge(rng: random.Random, D: InstanceData) -> ForeignKey | None:
    """A random foreign key of the family, or None when it has none."""
    return rng.choice(D.edges) if D.edges else None


def extra_proj(rng: random.Random, t: Table, exclude: Sequence[str]) -> list[str]:
    """Label alone or label + one informative column."""
    label = t.label
    if rng.random() < 0.5:
        return [label]
    extra = [c.name for c in columns_of(t, ("numeric", "money", "date", "categorical"), exclude=(label, *exclude))]
    return [label, rng.choice(extra)] if extra else [label]


def any_table(pred: Callable[[Table], bool]) -> Callable[[SchemaFamily], bool]:
    """A schema check for ``Template.supports``: some table of the family satisfies ``pred``."""
    return lambda fam: any(pred(t) for t in fam.tables)


def has_edges(fam: SchemaFamily) -> bool:
    """A schema check for ``Template.supports``: the family has at least one foreign key."""
    return bool(foreign_keys(fam))


def always(fam: SchemaFamily) -> bool:
    """A schema check for ``Template.supports``: every family can fill the template."""
    return True
