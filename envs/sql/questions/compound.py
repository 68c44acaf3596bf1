"""Compound templates: set operations (UNION / INTERSECT / EXCEPT) and CASE expressions."""

from __future__ import annotations

import random

from ..schemas import SchemaFamily
from .instances import InstanceData
from .phrasing import (
    article,
    capitalized,
    child_parent_join,
    cond_notes,
    cond_sql,
    fmt_num,
    inverse_clause,
    label_column,
    rel_clause,
)
from .sampling import always, any_table, group_keys, has_column, nice, quantile, sample_cond, table_and_column
from .template import Built, Template, pick

_SET_OPS = ("UNION", "INTERSECT", "EXCEPT")


def _sample_set_op(rng: random.Random, D: InstanceData) -> dict | None:
    op = rng.choice(_SET_OPS)
    if D.edges and rng.random() < 0.5:
        e = rng.choice(D.edges)
        child = D.fam.table(e.child)
        c1 = sample_cond(rng, D, child, ("eq", "bool", "cmp", "date", "in"), exclude=(e.column,))
        c2 = sample_cond(rng, D, child, ("eq", "bool", "cmp", "date", "in"), exclude=(e.column, c1["col"]) if c1 else ())
        if c1 is None or c2 is None:
            return None
        return {"variant": "via_join", "op": op, "child": e.child, "fk": e.column, "cond1": c1, "cond2": c2, "phr": rng.randrange(2)}
    t = rng.choice(D.fam.tables)
    c1 = sample_cond(rng, D, t, ("eq", "bool", "cmp", "date", "like", "in"))
    if c1 is None:
        return None
    c2 = sample_cond(rng, D, t, ("eq", "bool", "cmp", "date", "like", "in"), exclude=(c1["col"],))
    if c2 is None:
        return None
    return {"variant": "same_table", "op": op, "table": t.name, "cond1": c1, "cond2": c2, "phr": rng.randrange(2)}


def _build_set_op(fam: SchemaFamily, p: dict) -> Built:
    op, c1, c2 = p["op"], p["cond1"], p["cond2"]
    if p["variant"] == "via_join":
        e, child, parent, frm = child_parent_join(fam, p["child"], p["fk"])
        lab = label_column(parent)
        s1 = f"SELECT T2.{lab.name} {frm} WHERE {cond_sql(c1, 'T1')}"
        s2 = f"SELECT T2.{lab.name} {frm} WHERE {cond_sql(c2, 'T1')}"
        inv = inverse_clause(fam, e, True, "a")
        x1 = f"{parent.nl_plural} {inv} {rel_clause(child, c1, False)}"
        x2 = f"{parent.nl_plural} {inv} {rel_clause(child, c2, False)}"
        notes = cond_notes(child, c1) + cond_notes(child, c2)
    else:
        t = fam.table(p["table"])
        lab = label_column(t)
        s1 = f"SELECT {lab.name} FROM {t.name} WHERE {cond_sql(c1)}"
        s2 = f"SELECT {lab.name} FROM {t.name} WHERE {cond_sql(c2)}"
        x1, x2 = f"{t.nl_plural} {rel_clause(t, c1)}", f"{t.nl_plural} {rel_clause(t, c2)}"
        notes = cond_notes(t, c1) + cond_notes(t, c2)
    sql = f"{s1} {op} {s2}"
    labs = lab.nl_plural
    if op == "UNION":
        q = pick(p, f"List, without duplicates, every {lab.nl} that belongs to {x1} or to {x2}.",
                    f"Combine the {labs} of {x1} with the {labs} of {x2}, listing each {lab.nl} once.")
    elif op == "INTERSECT":
        q = pick(p, f"List the {labs} that appear both among the {labs} of {x1} and among the {labs} of {x2}.",
                    f"Which {labs} are shared by {x1} and {x2}? List each once.")
    else:
        q = pick(p, f"List the {labs} of {x1}, excluding every {lab.nl} that also belongs to {x2}. List each once.",
                    f"Which {labs} appear among {x1} but not among {x2}? List each once.")
    return Built(sql, q, list(dict.fromkeys(notes)))


_NUMERIC = ("numeric", "money")


def _sample_case_when(rng: random.Random, D: InstanceData) -> dict | None:
    picked = table_and_column(rng, D.fam, _NUMERIC)
    if picked is None:
        return None
    t, col = picked
    values = D.column(rng, t.name, col.name)
    if not values:
        return None
    val = nice(col, quantile(rng, values, 0.3, 0.7))
    if rng.random() < 0.5 and group_keys(t, exclude=(col.name,)):
        key = rng.choice(group_keys(t, exclude=(col.name,)))
        return {"variant": "count_by_group", "table": t.name, "col": col.name, "key": key.name, "val": val, "phr": rng.randrange(2)}
    cond = sample_cond(rng, D, t, ("eq", "bool", "date", "like", "in"), exclude=(col.name,))
    if cond is None:
        return None
    return {"variant": "label_rows", "table": t.name, "col": col.name, "cond": cond, "val": val, "phr": rng.randrange(2)}


def _build_case_when(fam: SchemaFamily, p: dict) -> Built:
    t = fam.table(p["table"])
    col, val = t.column(p["col"]), p["val"]
    v = fmt_num(val)
    if p["variant"] == "count_by_group":
        key = t.column(p["key"])
        sql = f"SELECT {key.name}, SUM(CASE WHEN {col.name} > {v} THEN 1 ELSE 0 END) FROM {t.name} GROUP BY {key.name}"
        q = pick(p, f"For each {key.nl}, count the {t.nl_plural} whose {col.nl} is greater than {v} (report 0 for a {key.nl} with none).",
                    f"Show every {key.nl} with the number of its {t.nl_plural} that have {article(col.nl)} above {v}, including {key.nl_plural} where that number is 0.")
        return Built(sql, q)
    cond = p["cond"]
    lab = label_column(t)
    sql = (
        f"SELECT {lab.name}, CASE WHEN {col.name} >= {v} THEN 'high' ELSE 'low' END FROM {t.name} "
        f"WHERE {cond_sql(cond)}"
    )
    q = pick(p, f"For each {t.nl} {rel_clause(t, cond, False)}, show its {lab.nl} and the label 'high' if its {col.nl} is at least {v}, otherwise 'low'.",
                f"List the {lab.nl} of every {t.nl} {rel_clause(t, cond, False)} with a second column that is 'high' when its {col.nl} is {v} or more and 'low' otherwise.")
    notes = cond_notes(t, cond)
    if col.nullable:
        notes.append(f"{capitalized(article(t.nl))} with a missing {col.nl} gets 'low'.")
    return Built(sql, q, notes)


TEMPLATES: tuple[Template, ...] = (
    Template("set_op", _sample_set_op, _build_set_op, always),
    Template("case_when", _sample_case_when, _build_case_when, any_table(has_column(_NUMERIC))),
)
