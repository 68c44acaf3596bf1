"""Templates that shape the result rows: ORDER BY (with or without LIMIT) and DISTINCT."""

from __future__ import annotations

import random

from ..schemas import SchemaFamily
from .instances import InstanceData
from .phrasing import cond_notes, cond_sql, proj_nl, proj_sql, rel_clause, rel_suffix, where_clause
from .sampling import any_table, has_column, sample_cond, table_and_column
from .template import Built, Template, pick


_SORTABLE = ("numeric", "money", "date")
_DISTINCTABLE = ("categorical",)


def _sample_order_limit(rng: random.Random, D: InstanceData) -> dict | None:
    picked = table_and_column(rng, D.fam, _SORTABLE, nonnull=True)
    if picked is None:
        return None
    t, col = picked
    k = rng.choice((1, 1, 3, 3, 5, 0))
    cond = None
    if k == 0 or rng.random() < 0.4:
        cond = sample_cond(rng, D, t, ("eq", "bool", "in", "date", "like"), exclude=(col.name,))
        if cond is None:
            return None
    proj = [t.label] if (k == 1 and rng.random() < 0.5) or col.name == t.label else [t.label, col.name]
    return {"table": t.name, "col": col.name, "dir": rng.choice(("DESC", "ASC")), "k": k, "cond": cond,
            "proj": proj, "phr": rng.randrange(2)}


def _build_order_limit(fam: SchemaFamily, p: dict) -> Built:
    t = fam.table(p["table"])
    col, k, cond, desc = t.column(p["col"]), p["k"], p["cond"], p["dir"] == "DESC"
    where = where_clause(cond)
    order = f" ORDER BY {col.name} {p['dir']}"
    sql = f"SELECT {proj_sql(t, p['proj'])} FROM {t.name}{where}{order}" + (f" LIMIT {k}" if k else "")
    key_sql = f"SELECT {col.name} FROM {t.name}{where}{order}"
    is_date = col.kind == "date"
    top = ("latest" if is_date else "highest") if desc else ("earliest" if is_date else "lowest")
    bottom = ("earliest" if is_date else "lowest") if desc else ("latest" if is_date else "highest")
    proj = proj_nl(t, p["proj"], plural_form=k != 1)
    rel_pl = rel_suffix(t, cond)
    rel_sg = rel_suffix(t, cond, False)
    sorted_nl = f"sorted by {col.nl} from {top} to {bottom}"
    if k == 1:
        q = pick(p, f"Which {t.nl}{rel_sg} has the {top} {col.nl}? Give its {proj}.",
                    f"Find the {proj} of the {t.nl}{rel_sg} with the {top} {col.nl}.")
    elif k:
        q = pick(p, f"List the {proj} of the {k} {t.nl_plural}{rel_pl} with the {top} {col.nl}, {sorted_nl}.",
                    f"Show the top {k} {t.nl_plural}{rel_pl} by {col.nl} ({top} first): their {proj}.")
    else:
        q = pick(p, f"List the {proj} of {t.nl_plural}{rel_pl}, {sorted_nl}.",
                    f"Show the {proj} of all {t.nl_plural}{rel_pl}, {sorted_nl}.")
    return Built(sql, q, cond_notes(t, cond), order_key_sql=key_sql, limit=k)


def _sample_distinct(rng: random.Random, D: InstanceData) -> dict | None:
    picked = table_and_column(rng, D.fam, _DISTINCTABLE)
    if picked is None:
        return None
    t, col = picked
    cond = sample_cond(rng, D, t, ("eq", "bool", "cmp", "date", "like"), exclude=(col.name,))
    if cond is None:
        return None
    return {"table": t.name, "col": col.name, "cond": cond, "phr": rng.randrange(2)}


def _build_distinct(fam: SchemaFamily, p: dict) -> Built:
    t = fam.table(p["table"])
    col, cond = t.column(p["col"]), p["cond"]
    sql = f"SELECT DISTINCT {col.name} FROM {t.name} WHERE {cond_sql(cond)}"
    q = pick(p, f"Which distinct {col.nl_plural} appear among {t.nl_plural} {rel_clause(t, cond)}?",
                f"List the different {col.nl_plural} of {t.nl_plural} {rel_clause(t, cond)}, each once.")
    return Built(sql, q, cond_notes(t, cond))


TEMPLATES: tuple[Template, ...] = (
    Template("order_limit", _sample_order_limit, _build_order_limit, any_table(has_column(_SORTABLE, nonnull=True))),
    Template("distinct", _sample_distinct, _build_distinct, any_table(has_column(_DISTINCTABLE))),
)
