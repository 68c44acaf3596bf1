"""Aggregate templates: one aggregate over a table, per-group aggregates, and groups filtered by HAVING."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..schemas import SchemaFamily, Table
from .instances import InstanceData
from .phrasing import CMP_NL, agg_nl, agg_sql, article, cond_notes, fmt_num, rel_suffix, where_clause
from .sampling import always, any_table, columns_of, group_keys, nice, quantile, sample_cond, table_with
from .template import Built, Template, pick


def _agg_options(t: Table, exclude: Sequence[str] = ()) -> list[tuple[str, str | None]]:
    """(aggregate, column) pairs that make sense on the table; COUNT(*) has no column."""
    out: list[tuple[str, str | None]] = [("count", None)]
    for c in columns_of(t, ("categorical", "fk", "person_name"), exclude=exclude):
        out.append(("count_distinct", c.name))
    for c in columns_of(t, ("numeric", "money"), exclude=exclude):
        out += [("avg", c.name), ("sum", c.name), ("max", c.name), ("min", c.name)]
    for c in columns_of(t, ("date",), exclude=exclude):
        out += [("max", c.name), ("min", c.name)]
    return out


def _sample_aggregate(rng: random.Random, D: InstanceData) -> dict | None:
    t = rng.choice(D.fam.tables)
    agg, col = rng.choice(_agg_options(t))
    cond = sample_cond(rng, D, t, ("eq", "bool", "cmp", "date", "in"), exclude=(col,) if col else ())
    if cond is None and agg == "count":
        return None
    if cond is None or rng.random() < 0.15 and agg != "count":
        cond = None
    return {"table": t.name, "agg": agg, "col": col, "cond": cond, "phr": rng.randrange(2)}


def _build_aggregate(fam: SchemaFamily, p: dict) -> Built:
    t = fam.table(p["table"])
    agg, cond = p["agg"], p["cond"]
    where = where_clause(cond)
    rel = rel_suffix(t, cond)
    sql = f"SELECT {agg_sql(agg, p['col'])} FROM {t.name}{where}"
    if agg == "count":
        q = pick(p, f"How many {t.nl_plural} are there{rel}?",
                    f"Count the {t.nl_plural}{rel}.")
        return Built(sql, q, cond_notes(t, cond))
    c = t.column(p["col"])
    scope = f"{t.nl_plural}{rel}" if cond else f"all {t.nl_plural}"
    if agg == "count_distinct":
        q = pick(p, f"How many distinct {c.nl_plural} are there among {scope}?",
                    f"Count the different {c.nl_plural} of {scope}.")
    else:
        q = pick(p, f"What is the {agg_nl(agg, c)} of {scope}?",
                    f"Find the {agg_nl(agg, c)} among {scope}.")
    return Built(sql, q, cond_notes(t, cond))


def _has_group_key(t: Table) -> bool:
    return bool(group_keys(t))


def _sample_group_by(rng: random.Random, D: InstanceData) -> dict | None:
    t = table_with(rng, D.fam, _has_group_key)
    if t is None:
        return None
    key = rng.choice(group_keys(t))
    options = [o for o in _agg_options(t, exclude=(key.name,)) if o[0] != "count_distinct"]
    agg, col = rng.choice(options)
    cond = sample_cond(rng, D, t, ("eq", "bool", "cmp", "date"), exclude=(key.name,)) if rng.random() < 0.5 else None
    return {"table": t.name, "key": key.name, "agg": agg, "col": col, "cond": cond, "phr": rng.randrange(2)}


def _build_group_by(fam: SchemaFamily, p: dict) -> Built:
    t = fam.table(p["table"])
    key, agg, cond = t.column(p["key"]), p["agg"], p["cond"]
    where = where_clause(cond)
    rel = rel_suffix(t, cond)
    sql = f"SELECT {key.name}, {agg_sql(agg, p['col'])} FROM {t.name}{where} GROUP BY {key.name}"
    if agg == "count":
        q = pick(p, f"For each {key.nl}, how many {t.nl_plural}{rel} are there?",
                    f"Show each {key.nl} together with the number of {t.nl_plural}{rel}.")
    else:
        what = agg_nl(agg, t.column(p["col"]))
        q = pick(p, f"For each {key.nl}, what is the {what} of {t.nl_plural}{rel}?",
                    f"Show each {key.nl} together with the {what} of its {t.nl_plural}{rel}.")
    return Built(sql, q, cond_notes(t, cond))


def _sample_group_having(rng: random.Random, D: InstanceData) -> dict | None:
    t = table_with(rng, D.fam, _has_group_key)
    if t is None:
        return None
    key = rng.choice(group_keys(t))
    nums = columns_of(t, ("numeric", "money"))
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
    n = quantile(rng, vals, 0.3, 0.7)
    n = int(n) if agg == "count" else nice(t.column(col or ""), n)
    return {"table": t.name, "key": key.name, "agg": agg, "col": col, "op": op, "n": n,
            "show": rng.random() < 0.5, "phr": rng.randrange(2)}


def _build_group_having(fam: SchemaFamily, p: dict) -> Built:
    t = fam.table(p["table"])
    key, agg, op, n = t.column(p["key"]), p["agg"], p["op"], p["n"]
    aggsql = agg_sql(agg, p["col"])
    sel = f"{key.name}, {aggsql}" if p["show"] else key.name
    sql = f"SELECT {sel} FROM {t.name} GROUP BY {key.name} HAVING {aggsql} {op} {fmt_num(n)}"
    cmp = {">": "more than", ">=": "at least", "<": "fewer than"}[op] if agg == "count" else CMP_NL[op]
    if agg == "count":
        cond_nl = f"{cmp} {fmt_num(n)} {t.nl if n == 1 else t.nl_plural}"
        q = pick(p, f"Which {key.nl_plural} have {cond_nl}?",
                    f"List the {key.nl_plural} that have {cond_nl}.")
        extra = f" Also give the number of {t.nl_plural} for each."
    else:
        what = agg_nl(agg, t.column(p["col"]))
        q = pick(p, f"Which {key.nl_plural} have {article(what)} of {t.nl_plural} {cmp} {fmt_num(n)}?",
                    f"List the {key.nl_plural} whose {what} of {t.nl_plural} is {cmp} {fmt_num(n)}.")
        extra = f" Also give that {what} for each."
    if p["show"]:
        q += extra
    return Built(sql, q)


TEMPLATES: tuple[Template, ...] = (
    Template("aggregate", _sample_aggregate, _build_aggregate, always),
    Template("group_by", _sample_group_by, _build_group_by, any_table(_has_group_key)),
    Template("group_having", _sample_group_having, _build_group_having, any_table(_has_group_key)),
)
