"""The SQL task suite: databases and questions generated on first use, split across databases (as Spider/BIRD).

OOD held-out = whole schema families never seen in training (test: flights, real_estate; dev: sports).
IID held-out = a hash split of the other families' questions over their near-duplicate group key, so two
questions that differ only in a literal never straddle train and test.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.cache import cache_dir
from agentgym.errors import DatasetError
from agentgym.envs.sql.database import ensure_databases, stable_seed
from agentgym.envs.sql.prompting import schema_description
from agentgym.envs.sql.questions import generate_questions, group_key
from agentgym.envs.sql.schemas import FAMILIES, ddl
from agentgym.tasks import SplitRule, Task, TaskSuite

SUITE_NAME = "sql-v0"
SUITE_VERSION = "v0"
QUESTIONS_PER_FAMILY = 200
SPLIT_RULE = SplitRule(ood_test_families=frozenset({"flights", "real_estate"}),
                       ood_dev_families=frozenset({"sports"}), iid_test_percent=10, iid_dev_percent=10)
MANIFEST = Path(__file__).with_name("manifests") / f"{SUITE_NAME}.json"


@dataclass(frozen=True)
class SqlWorld:
    """Everything episodes share: the suite, each family's database instances and schema description."""

    suite: TaskSuite
    databases: dict[str, list[Path]]               # family (or db_id) -> instances, the first shown to the agent
    schemas: dict[str, str]                        # family -> DDL plus sample rows
    tables: dict[str, list[tuple[str, list[str]]]]  # family -> (table, columns), for random queries


# Keys of question params that vary *within* a near-duplicate group: literals, comparison operators,
# aggregate and sort choices, projections and paraphrase picks. Dropping them leaves the question's skeleton
# (template, variant, tables and condition columns), which is what the IID hash split is taken over.
_WITHIN_GROUP_KEYS = frozenset({"val", "n", "k", "phr", "op", "dir", "agg", "mode", "show", "proj"})


def split_group(family: str, template: str, params: Mapping[str, Any]) -> str:
    """The near-duplicate group of a question: its skeleton without literals, operators or projections."""
    return group_key(family, template, dict(params), exclude=_WITHIN_GROUP_KEYS)


_LOCK = threading.Lock()
_WORLDS: dict[tuple[str, str], SqlWorld] = {}


def load_world(dataset: str = "generated", path: str | Path | None = None) -> SqlWorld:
    """The generated suite (default), or a user dataset ("spider", "bird") at `path`; built once per process."""
    if dataset == "generated":
        root = Path(path) if path else cache_dir("sql", SUITE_VERSION)
        key = ("generated", str(root))
        builder = lambda: _generated_world(root)  # noqa: E731
    else:
        from agentgym.envs.sql.datasets import LOADERS

        if dataset not in LOADERS:
            raise DatasetError(f"unknown SQL dataset {dataset!r}; expected 'generated' or one of {sorted(LOADERS)}")
        if path is None:
            raise DatasetError(f"dataset {dataset!r} needs path=DIR pointing at the files on disk")
        key = (dataset, str(Path(path).resolve()))
        builder = lambda: LOADERS[dataset](Path(path))  # noqa: E731
    with _LOCK:
        if key not in _WORLDS:
            _WORLDS[key] = builder()
        return _WORLDS[key]


def suite_for(*, dataset: str = "generated", path: str | Path | None = None, **_options: Any) -> TaskSuite:
    """The suite ``SqlEnv(dataset=..., path=...)`` serves (no other option shapes it): the registry's loader."""
    return load_world(dataset, path).suite


def _generated_world(root: Path) -> SqlWorld:
    databases = ensure_databases(root)
    tasks: list[Task] = []
    schemas: dict[str, str] = {}
    tables: dict[str, list[tuple[str, list[str]]]] = {}
    for name, family in FAMILIES.items():
        schemas[name] = schema_description(databases[name][0], ddl(family))
        tables[name] = [(t.name, [c.name for c in t.columns]) for t in family.tables]
        for q in generate_questions(name, databases[name], seed=stable_seed(SUITE_NAME, name), count=QUESTIONS_PER_FAMILY):
            tasks.append(Task(kind="sql", family=name, template=q.template, params=q.params,
                              data={"question": q.question, "gold_sql": q.gold_sql, "evidence": q.evidence},
                              group=split_group(name, q.template, q.params), difficulty=q.difficulty))
    suite = TaskSuite(SUITE_NAME, SUITE_VERSION, tasks, SPLIT_RULE, pinned_path=MANIFEST)
    return SqlWorld(suite, databases, schemas, tables)
