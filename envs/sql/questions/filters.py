"""Single-table filter templates: equality, comparison, LIKE, IN, BETWEEN, dates and NULL checks."""

from __future__ import annotations

import random

from ..schemas import SchemaFamily, Table
from .instances import InstanceData
from .phrasing import cond_notes, cond_sql, proj_nl, proj_sql, rel_clause
from .sampling import any_table, cond_columns, extra_proj, sample_cond, table_with
from .template import Built, Template, pick


def _filter(kind: str, ctypes: tuple[str, ...], count_mode: bool = False) -> Template:
    """A single-table filter template on conditions of the given types; with count_mode it may ask for a COUNT."""

    def fits(t: Table) -> bool:
        return any(cond_columns(t, ct) for ct in ctypes)

    def sample(rng: random.Random, D: InstanceData) -> dict | None:
        t = table_with(rng, D.fam, fits)
        if t is None:
            return None
        cond = sample_cond(rng, D, t, ctypes)
        if cond is None:
            return None
        proj = extra_proj(rng, t, (cond["col"],))
        if cond["op"] in (">", "<", ">=", "<=", "between") and cond["col"] not in proj:
            proj = [t.label, cond["col"]] if cond["col"] != t.label else [t.label]
        params: dict = {"table": t.name, "proj": proj, "cond": cond, "phr": rng.randrange(3)}
        if count_mode:
            params["mode"] = rng.choice(("list", "count"))
        return params

    return Template(kind, sample, _build_filter, any_table(fits))


def _build_filter(fam: SchemaFamily, p: dict) -> Built:
    """A list of rows (or their COUNT, in count mode) of one table under one condition."""
    t = fam.table(p["table"])
    cond = p["cond"]
    where = cond_sql(cond)
    notes = cond_notes(t, cond)
    if p.get("mode") == "count":
        sql = f"SELECT COUNT(*) FROM {t.name} WHERE {where}"
        q = pick(p, f"How many {t.nl_plural} are there {rel_clause(t, cond)}?",
                    f"Count the {t.nl_plural} {rel_clause(t, cond)}.",
                    f"What is the number of {t.nl_plural} {rel_clause(t, cond)}?")
        return Built(sql, q, notes)
    sql = f"SELECT {proj_sql(t, p['proj'])} FROM {t.name} WHERE {where}"
    proj = proj_nl(t, p["proj"])
    q = pick(p, f"List the {proj} of {t.nl_plural} {rel_clause(t, cond)}.",
                f"What are the {proj} of all {t.nl_plural} {rel_clause(t, cond)}?",
                f"Show the {proj_nl(t, p['proj'], False)} of every {t.nl} {rel_clause(t, cond, False)}.")
    return Built(sql, q, notes)


def _has_nullable(t: Table) -> bool:
    return bool(cond_columns(t, "null"))


def _sample_null(rng: random.Random, D: InstanceData) -> dict | None:
    t = table_with(rng, D.fam, _has_nullable)
    if t is None:
        return None
    cond = sample_cond(rng, D, t, ("null",))
    if cond is None:
        return None
    mode = "count" if cond["op"] == "not_null" else rng.choice(("list", "count"))
    return {"table": t.name, "proj": [t.label], "cond": cond, "mode": mode, "phr": rng.randrange(3)}


TEMPLATES: tuple[Template, ...] = (
    _filter("filter_eq", ("eq", "bool")),
    _filter("filter_compare", ("cmp",)),
    _filter("filter_like", ("like",)),
    _filter("filter_in", ("in",), count_mode=True),
    _filter("filter_between", ("between",)),
    _filter("filter_date", ("date",), count_mode=True),
    Template("null_check", _sample_null, _build_filter, any_table(_has_nullable)),
)
