"""Program-first question generation: sample typed SQL templates, execute on every instance, keep only good gold.

A question is fully determined by ``(family, template, params)``: ``build_question`` renders the gold SQL and the
natural-language text from the params alone (no database), so a stored task can be re-rendered. Sampling
(``generate_questions``) reads literal values from the instance databases and rejects degenerate gold: empty,
all-NULL, identical on every instance, too many rows, ties at an ORDER BY (+ LIMIT) cut, non-deterministic SQL.

Each template is one ``Template`` record (kind, sampler, builder, schema check) in a module of its theme:
``filters``, ``aggregates``, ``ordering``, ``joins``, ``subqueries`` and ``compound``; ``catalog`` lists them in
generation order. ``phrasing`` renders SQL and English, ``sampling`` draws slots and literals, ``instances``
holds the databases and the degenerate-gold rule, ``hardness`` rates a query Spider-style.
"""

from __future__ import annotations

from .catalog import TEMPLATE_BY_KIND, TEMPLATE_KINDS, TEMPLATES, supported_kinds
from .generation import SqlQuestion, build_question, generate_questions, group_key
from .hardness import hardness
from .instances import MAX_ROWS
from .template import Template

__all__ = [
    "MAX_ROWS",
    "SqlQuestion",
    "TEMPLATES",
    "TEMPLATE_BY_KIND",
    "TEMPLATE_KINDS",
    "Template",
    "build_question",
    "generate_questions",
    "group_key",
    "hardness",
    "supported_kinds",
]
