"""Nested-query templates: comparisons against a scalar subquery, and IN / NOT IN over a child table."""

from __future__ import annotations

import random

from ..schemas import SchemaFamily
from .instances import InstanceData
from .phrasing import (
    article,
    cond_notes,
    cond_sql,
    find_edge,
    inverse_clause,
    label_column,
    no_child_clause,
    proj_nl,
    proj_sql,
    rel_clause,
    rel_suffix,
    where_clause,
    which,
)
from .sampling import JOIN_CONDITIONS, any_table, has_column, has_edges, random_edge, sample_cond, table_and_column
from .template import Built, Template, pick


_NUMERIC = ("numeric", "money")


def _sample_nested_scalar(rng: random.Random, D: InstanceData) -> dict | None:
    picked = table_and_column(rng, D.fam, _NUMERIC, nonnull=True)
    if picked is None:
        return None
    t, col = picked
    variant = rng.choice(("above_avg", "count_vs_avg", "vs_extreme"))
    cond = sample_cond(rng, D, t, ("eq", "bool", "date", "in"), exclude=(col.name,))
    if cond is None and variant != "count_vs_avg":
        return None
    return {"variant": variant, "table": t.name, "col": col.name, "op": rng.choice((">", "<")), "cond": cond,
            "proj": [t.label, col.name] if col.name != t.label else [t.label], "phr": rng.randrange(2)}


def _build_nested_scalar(fam: SchemaFamily, p: dict) -> Built:
    t = fam.table(p["table"])
    col, op, cond, variant = t.column(p["col"]), p["op"], p["cond"], p["variant"]
    above = "above" if op == ">" else "below"
    proj = proj_nl(t, p["proj"])
    if variant == "above_avg":
        sql = (
            f"SELECT {proj_sql(t, p['proj'])} FROM {t.name} WHERE {col.name} {op} (SELECT AVG({col.name}) FROM {t.name}) "
            f"AND {cond_sql(cond)}"
        )
        q = pick(p, f"Among {t.nl_plural} {rel_clause(t, cond)}, list the {proj} of those whose {col.nl} is {above} the average {col.nl} of all {t.nl_plural}.",
                    f"Which {t.nl_plural} {rel_clause(t, cond)} have {article(col.nl)} {above} the overall average {col.nl}? Show their {proj}.")
    elif variant == "count_vs_avg":
        inner_where = where_clause(cond)
        scope = f"{t.nl_plural} {rel_clause(t, cond)}" if cond else f"all {t.nl_plural}"
        sql = f"SELECT COUNT(*) FROM {t.name} WHERE {col.name} {op} (SELECT AVG({col.name}) FROM {t.name}{inner_where})"
        q = pick(p, f"How many {t.nl_plural} have {article(col.nl)} {above} the average {col.nl} of {scope}?",
                    f"Count the {t.nl_plural} whose {col.nl} is {above} the average {col.nl} of {scope}.")
    else:
        extreme = "MAX" if op == ">" else "MIN"
        cmp = "higher" if op == ">" else "lower"
        sql = (
            f"SELECT {proj_sql(t, p['proj'])} FROM {t.name} WHERE {col.name} {op} "
            f"(SELECT {extreme}({col.name}) FROM {t.name} WHERE {cond_sql(cond)})"
        )
        q = pick(p, f"List the {proj} of {t.nl_plural} whose {col.nl} is {cmp} than that of every {t.nl} {rel_clause(t, cond, False)}.",
                    f"Which {t.nl_plural} have {article(col.nl)} {cmp} than all {t.nl_plural} {rel_clause(t, cond)}? Show their {proj}.")
    return Built(sql, q, cond_notes(t, cond))


def _sample_nested_in(rng: random.Random, D: InstanceData) -> dict | None:
    e = random_edge(rng, D)
    if e is None:
        return None
    child = D.fam.table(e.child)
    variant = rng.choice(("in", "not_in", "count_not_in"))
    cond = sample_cond(rng, D, child, JOIN_CONDITIONS, exclude=(e.column,))
    if variant == "in" and cond is None:
        return None
    if variant != "in" and rng.random() < 0.5:
        cond = None
    return {"variant": variant, "child": e.child, "fk": e.column, "cond": cond, "phr": rng.randrange(2)}


def _build_nested_in(fam: SchemaFamily, p: dict) -> Built:
    e = find_edge(fam, p["child"], p["fk"])
    child, parent = fam.table(e.child), fam.table(e.parent)
    lp = label_column(parent)
    cond, variant = p["cond"], p["variant"]
    conds = [cond_sql(cond)] if cond else []
    if variant != "in" and child.column(e.column).nullable:
        conds.append(f"{e.column} IS NOT NULL")
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    sub = f"SELECT {e.column} FROM {child.name}{where}"
    rel = rel_suffix(child, cond, False)
    notes = cond_notes(child, cond)
    if variant == "in":
        sql = f"SELECT {lp.name} FROM {parent.name} WHERE {e.parent_column} IN ({sub})"
        q = pick(p, f"{which(parent.nl_plural, inverse_clause(fam, e, True, 'some'))}{rel}? List their {lp.nl_plural}.",
                    f"Give the {lp.nl} of every {parent.nl} {inverse_clause(fam, e, False, 'some')}{rel}.")
        return Built(sql, q, notes)
    none = no_child_clause(fam, e) + rel
    if variant == "not_in":
        sql = f"SELECT {lp.name} FROM {parent.name} WHERE {e.parent_column} NOT IN ({sub})"
        q = pick(p, f"List the {lp.nl_plural} of {parent.nl_plural} {none}.",
                    f"{which(parent.nl_plural, none)}? Give their {lp.nl_plural}.")
        return Built(sql, q, notes)
    sql = f"SELECT COUNT(*) FROM {parent.name} WHERE {e.parent_column} NOT IN ({sub})"
    q = pick(p, f"How many {parent.nl_plural} are there {none}?",
                f"Count the {parent.nl_plural} {none}.")
    return Built(sql, q, notes)


TEMPLATES: tuple[Template, ...] = (
    Template("nested_scalar", _sample_nested_scalar, _build_nested_scalar, any_table(has_column(_NUMERIC, nonnull=True))),
    Template("nested_in", _sample_nested_in, _build_nested_in, has_edges),
)
