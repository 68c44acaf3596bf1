"""Question generation: cycle the supported templates over a family's instances, keep unique valid gold.

Also the question record itself (``SqlQuestion``), its re-rendering from stored params (``build_question``) and
the near-duplicate key the splits are taken over (``group_key``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..database import stable_seed
from ..schemas import FAMILIES
from .catalog import TEMPLATE_BY_KIND, supported_kinds
from .hardness import hardness
from .instances import InstanceData, valid_gold

# Param keys holding literal values (and the paraphrase choice): excluded from the near-duplicate group key.
_LITERAL_KEYS = frozenset({"val", "n", "k", "phr"})


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
    built = TEMPLATE_BY_KIND[template].build(FAMILIES[family], params)
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


def generate_questions(family: str, instance_paths: Sequence[Path], *, seed: int, count: int) -> list[SqlQuestion]:
    """Sample up to ``count`` unique, validated questions for a family, cycling over every supported template kind.

    Deterministic for (family, instance contents, seed, count); may return fewer when the family runs out.
    """
    fam = FAMILIES[family]
    D = InstanceData(fam, instance_paths)
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
                template = TEMPLATE_BY_KIND[kind]
                params = template.sample(rng, D)
                if params is not None:
                    built = template.build(fam, params)
                    if built.sql not in seen_sql and built.question not in seen_text and valid_gold(D, built):
                        seen_sql.add(built.sql)
                        seen_text.add(built.question)
                        out.append(build_question(family, kind, params))
                        accepted = True
                fails[kind] = 0 if accepted else fails[kind] + 1
            kinds = [k for k in kinds if fails[k] < 60]
        return out
    finally:
        D.close()
