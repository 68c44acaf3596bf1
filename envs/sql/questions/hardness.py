"""Spider's hardness rule of thumb ('easy' | 'medium' | 'hard' | 'extra'), computed from a query's components."""

from __future__ import annotations

import sqlglot
from sqlglot import exp


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
