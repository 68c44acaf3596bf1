"""Join templates over the schema's foreign keys: two tables, three tables along a path, and joins with aggregates."""

from __future__ import annotations

import random

from ..schemas import ForeignKey, SchemaFamily, foreign_keys
from .instances import InstanceData
from .phrasing import (
    agg_nl,
    agg_sql,
    article,
    child_parent_join,
    cond_notes,
    cond_sql,
    find_edge,
    inverse_clause,
    join_on,
    label_column,
    predicate,
    proj_nl,
    proj_sql,
    rel_clause,
    which,
)
from .sampling import (
    JOIN_CONDITIONS,
    columns_of,
    extra_proj,
    group_keys,
    has_edges,
    quantile,
    random_edge,
    sample_cond,
)
from .template import Built, Template, pick


def _sample_join2(rng: random.Random, D: InstanceData) -> dict | None:
    e = random_edge(rng, D)
    if e is None:
        return None
    child, parent = D.fam.table(e.child), D.fam.table(e.parent)
    variant = rng.choice(("child_by_parent", "parent_by_child", "pair"))
    if variant == "child_by_parent":
        cond = sample_cond(rng, D, parent, JOIN_CONDITIONS)
        proj = extra_proj(rng, child, (e.column,))
    else:
        cond = sample_cond(rng, D, child, JOIN_CONDITIONS, exclude=(e.column,))
        proj = [child.label]
    if cond is None:
        return None
    return {"variant": variant, "child": e.child, "fk": e.column, "proj": proj, "cond": cond, "phr": rng.randrange(2)}


def _build_join2(fam: SchemaFamily, p: dict) -> Built:
    e, child, parent, frm = child_parent_join(fam, p["child"], p["fk"])
    fk_nl = child.column(e.column).nl
    cond, variant = p["cond"], p["variant"]
    if variant == "child_by_parent":
        sql = f"SELECT {proj_sql(child, p['proj'], 'T1')} {frm} WHERE {cond_sql(cond, 'T2')}"
        proj = proj_nl(child, p["proj"])
        q = pick(p, f"List the {proj} of {child.nl_plural} whose {fk_nl} {predicate(parent, cond)}.",
                    f"What are the {proj} of the {child.nl_plural} whose {fk_nl} {predicate(parent, cond)}?")
        return Built(sql, q, cond_notes(parent, cond))
    lp = label_column(parent)
    if variant == "parent_by_child":
        sql = f"SELECT DISTINCT T2.{lp.name} {frm} WHERE {cond_sql(cond, 'T1')}"
        inv = inverse_clause(fam, e, True, "at least one")
        q = pick(p, f"List the distinct {lp.nl_plural} of {parent.nl_plural} {inv} {rel_clause(child, cond, False)}.",
                    f"What are the different {lp.nl_plural} of {parent.nl_plural} {inv} {rel_clause(child, cond, False)}?")
        return Built(sql, q, cond_notes(child, cond))
    lc = label_column(child)
    sql = f"SELECT T1.{lc.name}, T2.{lp.name} {frm} WHERE {cond_sql(cond, 'T1')}"
    q = pick(p, f"For each {child.nl} {rel_clause(child, cond, False)}, show its {lc.nl} and the {lp.nl} of its {fk_nl}.",
                f"List the {lc.nl} of every {child.nl} {rel_clause(child, cond, False)} together with the {lp.nl} of its {fk_nl}.")
    return Built(sql, q, cond_notes(child, cond))


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


def _has_path3(fam: SchemaFamily) -> bool:
    return bool(_paths3(fam))


def _sample_join3(rng: random.Random, D: InstanceData) -> dict | None:
    paths = _paths3(D.fam)
    if not paths:
        return None
    pattern, e1, e2 = rng.choice(paths)
    last = D.fam.table(e2.parent if pattern in ("link", "up") else e2.child)
    exclude = (e2.column,) if pattern == "down" else ()
    cond = sample_cond(rng, D, last, JOIN_CONDITIONS, exclude=exclude)
    if cond is None:
        return None
    p = {"pattern": pattern, "t1": e1.child, "fk1": e1.column, "t2": e2.child, "fk2": e2.column, "cond": cond,
         "phr": rng.randrange(2)}
    if pattern == "up":
        p["proj"] = extra_proj(rng, D.fam.table(e1.child), (e1.column,))
    return p


def _build_join3(fam: SchemaFamily, p: dict) -> Built:
    e1, e2 = find_edge(fam, p["t1"], p["fk1"]), find_edge(fam, p["t2"], p["fk2"])
    pattern, cond = p["pattern"], p["cond"]
    if pattern in ("link", "down"):  # A <- M -> B or A <- M <- C: distinct labels of A
        a, m = fam.table(e1.parent), fam.table(e1.child)
        last = fam.table(e2.parent if pattern == "link" else e2.child)
        la = label_column(a)
        on_last = join_on(fam, e2, "T2", "T3") if pattern == "link" else join_on(fam, e2, "T3", "T2")
        sql = (
            f"SELECT DISTINCT T1.{la.name} FROM {a.name} AS T1 JOIN {m.name} AS T2 ON {join_on(fam, e1, 'T2', 'T1')} "
            f"JOIN {last.name} AS T3 ON {on_last} WHERE {cond_sql(cond, 'T3')}"
        )
        has_m = inverse_clause(fam, e1, True, "at least one")
        if pattern == "link":
            clause = f"{has_m} whose {m.column(e2.column).nl} {predicate(last, cond)}"
        else:
            clause = f"{has_m} {inverse_clause(fam, e2, False, 'at least one')} {rel_clause(last, cond, False)}"
        q = pick(p, f"List the distinct {la.nl_plural} of {a.nl_plural} {clause}.",
                    f"{which(a.nl_plural, clause)}? Give their distinct {la.nl_plural}.")
    else:  # up: A -> M -> B, project A
        a, m, last = fam.table(e1.child), fam.table(e1.parent), fam.table(e2.parent)
        proj = p["proj"]
        sql = (
            f"SELECT {proj_sql(a, proj, 'T1')} FROM {a.name} AS T1 JOIN {m.name} AS T2 ON {join_on(fam, e1, 'T1', 'T2')} "
            f"JOIN {last.name} AS T3 ON {join_on(fam, e2, 'T2', 'T3')} WHERE {cond_sql(cond, 'T3')}"
        )
        clause = f"whose {a.column(e1.column).nl} has {article(m.column(e2.column).nl)} that {predicate(last, cond)}"
        q = pick(p, f"List the {proj_nl(a, proj)} of {a.nl_plural} {clause}.",
                    f"What are the {proj_nl(a, proj)} of the {a.nl_plural} {clause}?")
    return Built(sql, q, cond_notes(last, cond))


def _sample_join_aggregate(rng: random.Random, D: InstanceData) -> dict | None:
    e = random_edge(rng, D)
    if e is None:
        return None
    child, parent = D.fam.table(e.child), D.fam.table(e.parent)
    variant = rng.choice(("by_parent_cat", "per_parent", "filtered"))
    nums = columns_of(child, ("numeric", "money"))
    aggcol: tuple[str, str | None] = ("count", None)
    if nums and rng.random() < 0.6:
        aggcol = (rng.choice(("avg", "sum", "max", "min")), rng.choice(nums).name)
    p: dict = {"variant": variant, "child": e.child, "fk": e.column, "agg": aggcol[0], "col": aggcol[1], "phr": rng.randrange(2)}
    if variant == "by_parent_cat":
        keys = group_keys(parent)
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
        p["n"] = int(quantile(rng, list(counts.values()), 0.75, 0.97))
        if p["n"] < 2:
            return None
    else:
        cond = sample_cond(rng, D, parent, JOIN_CONDITIONS)
        if cond is None:
            return None
        p["cond"] = cond
    return p


def _build_join_aggregate(fam: SchemaFamily, p: dict) -> Built:
    e, child, parent, frm = child_parent_join(fam, p["child"], p["fk"])
    fk_nl = child.column(e.column).nl
    agg, variant = p["agg"], p["variant"]
    aggsql = agg_sql(agg, p["col"], "T1")
    what = None if agg == "count" else agg_nl(agg, child.column(p["col"]))
    if variant == "by_parent_cat":
        key = parent.column(p["key"])
        # "customer segment", but "property type" rather than "property property type"
        key_nl = key.nl if key.nl.split()[0] == fk_nl.split()[-1] else f"{fk_nl} {key.nl}"
        sql = f"SELECT T2.{key.name}, {aggsql} {frm} GROUP BY T2.{key.name}"
        if what is None:
            q = pick(p, f"For each {key_nl}, how many {child.nl_plural} are there?",
                        f"Count the {child.nl_plural} per {key_nl}.")
        else:
            q = pick(p, f"What is the {what} of {child.nl_plural} for each {key_nl}?",
                        f"For each {key_nl}, find the {what} of the {child.nl_plural}.")
        return Built(sql, q)
    if variant == "per_parent":
        lp = label_column(parent)
        n = p["n"]
        sql = f"SELECT T2.{lp.name}, COUNT(*) {frm} GROUP BY T2.{e.parent_column} HAVING COUNT(*) >= {n}"
        inv = inverse_clause(fam, e, True, f"at least {n}")
        q = pick(p, f"List the {lp.nl} of each {parent.nl} {inverse_clause(fam, e, False, f'at least {n}')}, together with that number of {child.nl_plural}.",
                    f"{which(parent.nl_plural, inv)}? Show their {lp.nl_plural} and their numbers of {child.nl_plural}.")
        return Built(sql, q)
    cond = p["cond"]
    sql = f"SELECT {aggsql} {frm} WHERE {cond_sql(cond, 'T2')}"
    if what is None:
        q = pick(p, f"How many {child.nl_plural} have {article(fk_nl)} that {predicate(parent, cond)}?",
                    f"Count the {child.nl_plural} whose {fk_nl} {predicate(parent, cond)}.")
    else:
        q = pick(p, f"What is the {what} of {child.nl_plural} whose {fk_nl} {predicate(parent, cond)}?",
                    f"Find the {what} among {child.nl_plural} whose {fk_nl} {predicate(parent, cond)}.")
    return Built(sql, q, cond_notes(parent, cond))


TEMPLATES: tuple[Template, ...] = (
    Template("join2", _sample_join2, _build_join2, has_edges),
    Template("join3", _sample_join3, _build_join3, _has_path3),
    Template("join_aggregate", _sample_join_aggregate, _build_join_aggregate, has_edges),
)
