"""The SQL question templates as records: the catalogue is well-formed, and every template samples and builds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import sqlglot

from agentgym.envs.sql.database import ensure_databases
from agentgym.envs.sql.questions import (
    TEMPLATE_BY_KIND,
    TEMPLATE_KINDS,
    TEMPLATES,
    Template,
    build_question,
    supported_kinds,
)
from agentgym.envs.sql.questions.instances import InstanceData, valid_gold
from agentgym.envs.sql.questions.template import pick
from agentgym.envs.sql.schemas import FAMILIES, Column, SchemaFamily, Table

# Draws per (family, template) before giving up; the rarest template fills in well under this on every family.
TRIES = 400


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    return ensure_databases(tmp_path_factory.mktemp("sqldb"))


def test_catalogue_has_one_record_per_kind_in_generation_order() -> None:
    kinds = [t.kind for t in TEMPLATES]
    assert len(kinds) == len(set(kinds)) == 19
    assert TEMPLATE_KINDS == tuple(kinds)
    assert TEMPLATE_BY_KIND == {t.kind: t for t in TEMPLATES}
    # the order seeds the suite: generation shuffles this list, so it must not drift
    assert TEMPLATE_KINDS[:7] == (
        "filter_eq", "filter_compare", "filter_like", "filter_in", "filter_between", "filter_date", "null_check",
    )
    assert TEMPLATE_KINDS[7:] == (
        "aggregate", "group_by", "group_having", "order_limit", "distinct", "join2", "join3", "join_aggregate",
        "nested_scalar", "nested_in", "set_op", "case_when",
    )
    for t in TEMPLATES:
        assert isinstance(t, Template)
        assert callable(t.sample) and callable(t.build) and callable(t.supports)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_supported_template_samples_valid_gold(dbs: dict[str, list[Path]], family: str) -> None:
    fam = FAMILIES[family]
    data = InstanceData(fam, dbs[family])
    try:
        for template in (TEMPLATE_BY_KIND[kind] for kind in supported_kinds(family)):
            rng = random.Random(f"{family}/{template.kind}")
            for _ in range(TRIES):
                params = template.sample(rng, data)
                if params is None:
                    continue
                built = template.build(fam, params)
                if valid_gold(data, built):
                    break
            else:
                pytest.fail(f"{family}/{template.kind}: no valid gold in {TRIES} draws")
            # params are JSON and alone determine the question (a stored task re-renders exactly)
            assert json.loads(json.dumps(params)) == params
            question = build_question(family, template.kind, json.loads(json.dumps(params)))
            assert (question.gold_sql, question.question) == (built.sql, built.question)
            assert question.template == template.kind
            assert question.group_key.startswith(f"{family}/{template.kind}/")
            assert question.question[-1] in ".?" and "{" not in question.question
            sqlglot.parse_one(built.sql, read="sqlite")
    finally:
        data.close()


def test_every_template_is_supported_by_a_shipped_family() -> None:
    # so the per-family test above samples every template somewhere
    assert {kind for family in FAMILIES for kind in supported_kinds(family)} == set(TEMPLATE_KINDS)


def test_schema_checks_refuse_what_a_schema_cannot_fill() -> None:
    # one table, a key and a name: nothing to compare, group, sort, join or nest on
    bare = SchemaFamily("bare", "bare things", (
        Table("item", "item", (Column("item_id", "INTEGER", "id", "item id"),
                               Column("name", "TEXT", "name", "name", unique=True)), (5, 10), "name"),
    ))
    supported = {t.kind for t in TEMPLATES if t.supports(bare)}
    assert supported == {"filter_like", "aggregate", "set_op"}


def test_pick_chooses_the_paraphrase_by_phr() -> None:
    assert [pick({"phr": phr}, "a", "b", "c") for phr in range(4)] == ["a", "b", "c", "a"]
