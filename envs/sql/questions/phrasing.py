"""How the templates speak: literals, conditions, projections, aggregates and foreign-key phrases in SQL and English.

Every function renders from the schema and the params alone (no database), which is what lets a stored task be
re-rendered exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..schemas import Column, ForeignKey, SchemaFamily, Table, foreign_keys


def fmt_num(v: float | int) -> str:
    """A number as SQL and questions print it: integral floats bare, others to two decimals."""
    if isinstance(v, float):
        if v.is_integer():
            return str(int(v))
        return repr(round(v, 2))
    return str(v)


def sql_lit(v: Any) -> str:
    """A literal as SQL: text single-quoted with quotes doubled, numbers via ``fmt_num``."""
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return fmt_num(v)


def nl_lit(col: Column, v: Any) -> str:
    """A literal as it appears in a question: text quoted, numbers and ISO dates bare."""
    if isinstance(v, str) and col.kind != "date":
        return f"'{v}'"
    return fmt_num(v) if not isinstance(v, str) else v


def article(phrase: str) -> str:
    """"a price", "an order"."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def join_words(words: Sequence[str], conj: str = "and") -> str:
    """"a", "a and b", "a, b and c"."""
    words = list(words)
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + f" {conj} " + words[-1]


def capitalized(text: str) -> str:
    """The text with its first letter upper-cased (the rest untouched, unlike ``str.capitalize``)."""
    return text[:1].upper() + text[1:]


def cond_sql(cond: dict, alias: str = "") -> str:
    """A condition ``{"col", "op", "val"}`` as a SQL predicate, optionally on a table alias."""
    a = f"{alias}." if alias else ""
    col, op, val = f"{a}{cond['col']}", cond["op"], cond.get("val")
    if op in ("=", "<", ">", "<=", ">="):
        return f"{col} {op} {sql_lit(val)}"
    if op == "between":
        return f"{col} BETWEEN {sql_lit(val[0])} AND {sql_lit(val[1])}"
    if op == "before":
        return f"{col} < {sql_lit(val)}"
    if op == "after":
        return f"{col} > {sql_lit(val)}"
    if op == "year":
        return f"strftime('%Y', {col}) = {sql_lit(val)}"
    if op == "starts":
        return f"{col} LIKE {sql_lit(val + '%')}"
    if op == "contains":
        return f"{col} LIKE {sql_lit('%' + val + '%')}"
    if op == "ends":
        return f"{col} LIKE {sql_lit('%' + val)}"
    if op == "in":
        return f"{col} IN ({', '.join(sql_lit(v) for v in val)})"
    if op == "is_null":
        return f"{col} IS NULL"
    if op == "not_null":
        return f"{col} IS NOT NULL"
    if op == "true":
        return f"{col} = 1"
    if op == "false":
        return f"{col} = 0"
    raise ValueError(f"unknown condition op {op!r}")


def where_clause(cond: dict | None) -> str:
    """" WHERE <condition>" for an optional condition ("" without one)."""
    return f" WHERE {cond_sql(cond)}" if cond else ""


CMP_NL = {">": "greater than", "<": "less than", ">=": "at least", "<=": "at most"}


def _value_phrase(col: Column, cond: dict) -> str:
    """The part after 'whose <col> is' / 'has a <col>' ("greater than 5", "between 1 and 3 (inclusive)")."""
    op, val = cond["op"], cond.get("val")
    if op in CMP_NL:
        return f"{CMP_NL[op]} {nl_lit(col, val)}"
    if op == "between":
        return f"between {nl_lit(col, val[0])} and {nl_lit(col, val[1])} (inclusive)"
    if op == "before":
        return f"before {val}"
    if op == "after":
        return f"after {val}"
    if op == "year":
        return f"in the year {val}"
    raise ValueError(op)


def rel_clause(t: Table, cond: dict, plural_subject: bool = True) -> str:
    """Relative clause after a noun: "whose price is greater than 5", "that are in stock"."""
    col = t.column(cond["col"])
    op, val = cond["op"], cond.get("val")
    be = "are" if plural_subject else "is"
    if op == "=":
        return f"whose {col.nl} is {nl_lit(col, val)}"
    if op in ("starts", "contains", "ends"):
        verb = {"starts": "starts with", "contains": "contains", "ends": "ends with"}[op]
        return f"whose {col.nl} {verb} '{val}'"
    if op == "in":
        lits = [nl_lit(col, v) for v in val]
        return f"whose {col.nl} is either {lits[0]} or {lits[1]}" if len(lits) == 2 else f"whose {col.nl} is one of {join_words(lits, 'or')}"
    if op == "is_null":
        return f"whose {col.nl} is missing"
    if op == "not_null":
        return f"whose {col.nl} is recorded"
    if op == "true":
        return f"that {be} {col.true_phrase}"
    if op == "false":
        return f"that {be} not {col.true_phrase}"
    return f"whose {col.nl} is {_value_phrase(col, cond)}"


def rel_suffix(t: Table, cond: dict | None, plural_subject: bool = True) -> str:
    """" whose ..." for an optional condition ("" without one), to follow a noun."""
    return f" {rel_clause(t, cond, plural_subject)}" if cond else ""


def predicate(t: Table, cond: dict) -> str:
    """Predicate for a singular subject: "has segment 'Corporate'", "has a price greater than 5", "is in stock"."""
    col = t.column(cond["col"])
    op, val = cond["op"], cond.get("val")
    if op == "=":
        return f"has {col.nl} {nl_lit(col, val)}"
    if op in ("starts", "contains", "ends"):
        verb = {"starts": "starting with", "contains": "containing", "ends": "ending with"}[op]
        return f"has {article(col.nl)} {verb} '{val}'"
    if op == "in":
        lits = [nl_lit(col, v) for v in val]
        return f"has {col.nl} {join_words(lits, 'or')}"
    if op == "is_null":
        return f"has no {col.nl} recorded"
    if op == "not_null":
        return f"has {article(col.nl)} recorded"
    if op == "true":
        return f"is {col.true_phrase}"
    if op == "false":
        return f"is not {col.true_phrase}"
    of = "of " if op in (">=", "<=") else ""
    return f"has {article(col.nl)} {of}{_value_phrase(col, cond)}"


def cond_notes(t: Table, cond: dict | None) -> list[str]:
    """Evidence notes a condition needs (NULL storage, date format, case-insensitive LIKE, boolean coding)."""
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


def label_column(t: Table) -> Column:
    """The column that names a row of the table (its label)."""
    return t.column(t.label)


def proj_sql(t: Table, names: Sequence[str], alias: str = "") -> str:
    """A SELECT list of the named columns, optionally on a table alias."""
    a = f"{alias}." if alias else ""
    return ", ".join(f"{a}{n}" for n in names)


def proj_nl(t: Table, names: Sequence[str], plural_form: bool = True) -> str:
    """"names" for one projected column of several rows, "name and price" for several columns."""
    if len(names) == 1 and plural_form:
        return t.column(names[0]).nl_plural
    return join_words([t.column(n).nl for n in names])


def which(noun_plural: str, clause: str) -> str:
    """"Which customers have ..." from the clause "that have ..."."""
    return f"Which {noun_plural} {clause[5:] if clause.startswith('that ') else clause}"


def find_edge(fam: SchemaFamily, child: str, fk: str) -> ForeignKey:
    """The foreign key ``child.fk`` of the family."""
    for e in foreign_keys(fam):
        if e.child == child and e.column == fk:
            return e
    raise KeyError(f"{child}.{fk}")


def _ambiguous(fam: SchemaFamily, e: ForeignKey) -> bool:
    """True when the child reaches the parent through several fks (or itself): name the fk in the phrase."""
    if e.child == e.parent:
        return True
    return sum(1 for f in foreign_keys(fam) if f.child == e.child and f.parent == e.parent) > 1


def inverse_clause(fam: SchemaFamily, e: ForeignKey, plural_subject: bool, quantifier: str) -> str:
    """Parent-to-child phrase: "that have at least one order" / "that are the origin airport of at least one flight"."""
    child = fam.table(e.child)
    fk_nl = child.column(e.column).nl
    if quantifier == "a":
        np = article(child.nl)
    elif quantifier.startswith("at least") and not quantifier.endswith("one"):
        np = f"{quantifier} {child.nl_plural}"
    else:
        np = f"{quantifier} {child.nl}"
    if _ambiguous(fam, e):
        be = "are" if plural_subject else "is"
        return f"that {be} the {fk_nl} of {np}"
    have = "have" if plural_subject else "has"
    return f"that {have} {np}"


def no_child_clause(fam: SchemaFamily, e: ForeignKey) -> str:
    """Parent-to-child negation: "that have no order" / "that are not the origin airport of any flight"."""
    child = fam.table(e.child)
    if _ambiguous(fam, e):
        return f"that are not the {child.column(e.column).nl} of any {child.nl}"
    return f"that have no {child.nl}"


def join_on(fam: SchemaFamily, e: ForeignKey, child_alias: str, parent_alias: str) -> str:
    """The ON condition joining the child alias to the parent alias along ``e``."""
    return f"{child_alias}.{e.column} = {parent_alias}.{e.parent_column}"


def child_parent_join(fam: SchemaFamily, child: str, fk: str) -> tuple[ForeignKey, Table, Table, str]:
    """The edge ``child.fk``, its child and parent tables, and "FROM child AS T1 JOIN parent AS T2 ON ..."."""
    e = find_edge(fam, child, fk)
    child_t, parent_t = fam.table(e.child), fam.table(e.parent)
    return e, child_t, parent_t, f"FROM {child_t.name} AS T1 JOIN {parent_t.name} AS T2 ON {join_on(fam, e, 'T1', 'T2')}"


def agg_sql(agg: str, col: str | None, alias: str = "") -> str:
    """"COUNT(*)", "COUNT(DISTINCT T1.x)", "AVG(price)"."""
    a = f"{alias}." if alias else ""
    if agg == "count":
        return "COUNT(*)"
    if agg == "count_distinct":
        return f"COUNT(DISTINCT {a}{col})"
    return f"{agg.upper()}({a}{col})"


def agg_nl(agg: str, col: Column) -> str:
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
