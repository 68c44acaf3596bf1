"""User SQL datasets on disk (Spider and BIRD layouts) as task suites: same tools, reward and benchmark CLI.

Nothing is downloaded: the user points at the files. Each loader validates what it reads and raises one
``DatasetError`` naming the file, the entry and the field (or the database) that is wrong. Splits are the
dataset's own (train / dev / test files). Every ``.sqlite`` file in a database's folder is an instance of
it, so Spider's test-suite databases are used when present (test-suite execution accuracy); BIRD's
set-based EX is reported beside it in ``reward_components["ex_set"]``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.envs.sql.prompting import schema_description, sqlite_ddl, table_columns
from agentgym.envs.sql.suite import SqlWorld
from agentgym.errors import DatasetError
from agentgym.tasks import SplitRule, Task, TaskSuite


@dataclass(frozen=True)
class Entry:
    """One question of a dataset file, validated."""

    split: str
    source: str  # "file: entry N", for error messages
    db_id: str
    question: str
    gold_sql: str
    evidence: str | None
    difficulty: str | None


def _read_list(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of entries, got {type(data).__name__}")
    return data


def _entries(path: Path, split: str, *, sql_field: str, optional: Sequence[str] = ()) -> list[Entry]:
    out = []
    for i, item in enumerate(_read_list(path)):
        where = f"{path}: entry {i}"
        if not isinstance(item, dict):
            raise DatasetError(f"{where}: expected an object, got {type(item).__name__}")
        for name in ("question", sql_field, "db_id"):
            if name not in item:
                raise DatasetError(f"{where}: missing field '{name}'")
            if not isinstance(item[name], str) or not item[name].strip():
                raise DatasetError(f"{where}: field '{name}' must be a non-empty string")
        evidence = item.get("evidence") if "evidence" in optional else None
        if evidence is not None and not isinstance(evidence, str):
            raise DatasetError(f"{where}: field 'evidence' must be a string")
        difficulty = item.get("difficulty") if isinstance(item.get("difficulty"), str) else None
        out.append(Entry(split, where, item["db_id"], item["question"].strip(), item[sql_field].strip(),
                         evidence.strip() or None if evidence else None, difficulty))
    return out


def _instances(db_root: Path, db_id: str, source: str) -> list[Path]:
    """The database of `db_id` first, then the other .sqlite files of its folder (test-suite instances)."""
    folder = db_root / db_id
    main = folder / f"{db_id}.sqlite"
    if not main.is_file():
        raise DatasetError(f"{source}: unknown db_id {db_id!r}: no database at {main}")
    paths = [main] + sorted(p for p in folder.glob("*.sqlite") if p != main)
    for p in paths:
        try:
            con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
            try:
                if not con.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]:
                    raise DatasetError(f"{p}: the database has no tables")
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise DatasetError(f"{p}: unreadable database ({exc})") from None
    return paths


def build_world(name: str, entries: Iterable[Entry], db_roots: dict[str, Path]) -> SqlWorld:
    """A world from validated entries; `db_roots` maps a split to its database folder."""
    databases: dict[str, list[Path]] = {}
    schemas: dict[str, str] = {}
    tables: dict[str, list[tuple[str, list[str]]]] = {}
    tasks: dict[str, Task] = {}
    splits: dict[str, str] = {}
    for e in entries:
        if e.db_id not in databases:
            databases[e.db_id] = _instances(db_roots[e.split], e.db_id, e.source)
            schemas[e.db_id] = schema_description(databases[e.db_id][0], sqlite_ddl(databases[e.db_id][0]))
            tables[e.db_id] = table_columns(databases[e.db_id][0])
        task = Task(kind="sql", family=e.db_id, template=name,
                    params={"db_id": e.db_id, "question": e.question, "query": e.gold_sql},
                    data={"question": e.question, "gold_sql": e.gold_sql, "evidence": e.evidence},
                    difficulty=e.difficulty)
        if task.id not in tasks:  # a question repeated across files counts once, in its first split
            tasks[task.id] = task
            splits[task.id] = e.split
    if not tasks:
        raise DatasetError(f"the {name} dataset has no questions")
    suite = TaskSuite(f"sql-{name}", "user", tasks.values(), SplitRule(), fixed_splits=splits)
    return SqlWorld(suite, databases, schemas, tables)


SPIDER_FILES = {"train": ("train_spider.json", "train_others.json"), "dev": ("dev.json",), "test": ("test.json",)}


def load_spider(root: Path) -> SqlWorld:
    """Spider: tables.json, train_spider.json / train_others.json / dev.json / test.json (question, query,
    db_id), database/<db_id>/<db_id>.sqlite (test.json may use test_database/)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory (expected a Spider dataset with tables.json and dev.json)")
    known = None
    if (root / "tables.json").exists():
        known = set()
        for i, schema in enumerate(_read_list(root / "tables.json")):
            if not isinstance(schema, dict) or not isinstance(schema.get("db_id"), str):
                raise DatasetError(f"{root / 'tables.json'}: entry {i}: missing field 'db_id'")
            known.add(schema["db_id"])
    entries: list[Entry] = []
    for split, names in SPIDER_FILES.items():
        for file in names:
            if (root / file).exists():
                entries += _entries(root / file, split, sql_field="query")
    if not entries:
        raise DatasetError(f"{root}: no question file found (expected one of "
                           f"{', '.join(n for names in SPIDER_FILES.values() for n in names)})")
    if known is not None:
        for e in entries:
            if e.db_id not in known:
                raise DatasetError(f"{e.source}: unknown db_id {e.db_id!r}: not in {root / 'tables.json'}")
    test_db = root / "test_database" if (root / "test_database").is_dir() else root / "database"
    return build_world("spider", entries, {"train": root / "database", "dev": root / "database", "test": test_db})


def load_bird(root: Path) -> SqlWorld:
    """BIRD: <split>.json (question, SQL, db_id, evidence, difficulty) with <split>_databases/<db_id>/<db_id>.sqlite,
    either directly in the folder or in a <split>/ sub-folder, for split in train, dev, test."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory (expected a BIRD dataset with dev.json and dev_databases/)")
    entries: list[Entry] = []
    db_roots: dict[str, Path] = {}
    for split in ("train", "dev", "test"):
        for folder in (root, root / split):
            file = folder / f"{split}.json"
            if file.exists():
                db_root = folder / f"{split}_databases"
                if not db_root.is_dir():
                    raise DatasetError(f"{file}: its databases are missing: no folder {db_root}")
                entries += _entries(file, split, sql_field="SQL", optional=("evidence",))
                db_roots[split] = db_root
                break
    if not entries:
        raise DatasetError(f"{root}: no question file found (expected train.json, dev.json or test.json, "
                           "directly or in train/, dev/, test/)")
    return build_world("bird", entries, db_roots)


LOADERS: dict[str, Callable[[Path], SqlWorld]] = {"spider": load_spider, "bird": load_bird}
