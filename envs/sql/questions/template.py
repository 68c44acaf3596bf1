"""What a question template is: one record holding its kind, its sampler, its builder and its schema check.

A sampler draws JSON-able params from the instance data (or gives up with ``None``); a builder renders the gold
SQL and the question text from the params alone, so a stored task can be re-rendered without any database.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..schemas import SchemaFamily

if TYPE_CHECKING:
    from .instances import InstanceData


@dataclass
class Built:
    """A builder's output: gold SQL, question text, evidence notes and what the tie check needs."""

    sql: str
    question: str
    notes: list[str] = field(default_factory=list)
    order_key_sql: str | None = None  # the sort key alone, full order, for tie checks
    limit: int = 0  # 0: ORDER BY without LIMIT (all keys must be distinct)


Sampler = Callable[[random.Random, "InstanceData"], "dict | None"]
Builder = Callable[[SchemaFamily, dict], Built]


@dataclass(frozen=True)
class Template:
    """One question template: everything about it in one place."""

    kind: str  # stored in every task, e.g. "filter_like"
    sample: Sampler  # (rng, instance data) -> params, or None when this draw does not fit
    build: Builder  # (family, params) -> Built, no database access
    supports: Callable[[SchemaFamily], bool]  # static check: can the family's schema fill the slots?


def pick(params: dict, *variants: str) -> str:
    """The paraphrase chosen by ``params["phr"]`` among the variants."""
    return variants[params["phr"] % len(variants)]
