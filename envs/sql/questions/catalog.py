"""The catalogue of question templates, in the order generation cycles through them.

The order is part of the suite's identity: generation shuffles this list with a seeded rng, so adding, removing
or reordering templates changes which questions a seed produces (and so the suite's pinned manifests).
A new template is one ``Template`` record in the ``TEMPLATES`` of its theme module.
"""

from __future__ import annotations

from ..schemas import FAMILIES
from . import aggregates, compound, filters, joins, ordering, subqueries
from .template import Template

TEMPLATES: tuple[Template, ...] = (
    *filters.TEMPLATES,
    *aggregates.TEMPLATES,
    *ordering.TEMPLATES,
    *joins.TEMPLATES,
    *subqueries.TEMPLATES,
    *compound.TEMPLATES,
)
TEMPLATE_KINDS: tuple[str, ...] = tuple(t.kind for t in TEMPLATES)
TEMPLATE_BY_KIND: dict[str, Template] = {t.kind: t for t in TEMPLATES}


def supported_kinds(family: str) -> tuple[str, ...]:
    """Template kinds whose slots the family's schema can fill (static check, no data)."""
    fam = FAMILIES[family]
    return tuple(t.kind for t in TEMPLATES if t.supports(fam))
