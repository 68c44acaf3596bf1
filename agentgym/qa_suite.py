"""Question/answer datasets as task suites: rows from JSONL/JSON, Parquet, a saved or in-memory Hugging Face dataset.

A row needs a question and one or more gold answers; the names of those fields (and of the optional id,
split, family and difficulty fields) are given by a ``QAFields``, with dotted paths for nested fields
(``answers.text`` in SQuAD). A task's id is a hash of the dataset name and the row's id (or, without an
id field, of its question), so it is the same on every machine and in every row order. Splits are the
dataset's own where it has them (the split field, a ``DatasetDict`` key or a file named ``train.jsonl``,
``validation.parquet``...), else a hash split of the task id.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.datafiles import DATA_SUFFIXES, SPLIT_WORDS, data_files, file_split, read_entries, warn_near_duplicates
from agentgym.errors import DatasetError
from agentgym.extras import require
from agentgym.tasks import SplitRule, Task, TaskSuite

PARQUET_SUFFIX = ".parquet"
SPLIT_RANK = {"train": 0, "dev": 1, "test": 2}
# A folder written by ``datasets.Dataset.save_to_disk`` (or a DatasetDict's) holds one of these files.
HF_DISK_MARKERS = ("dataset_dict.json", "state.json")


@dataclass(frozen=True)
class QAFields:
    """Which field of a row holds what; dotted names reach into nested fields (``answers.text``). None: absent."""

    question: str = "question"
    answers: str = "answer"            # a string, a number, or a list of them
    id: str | None = "id"
    split: str | None = "split"
    family: str | None = None
    difficulty: str | None = None


Row = tuple[str, Mapping[str, Any], str | None]  # (where, row, split announced by the source)


def _lookup(row: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a row, or None when any part is missing."""
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _split_name(name: Any) -> str | None:
    """A split name as a dataset spells it ("validation", "Train") as ours (dev, train), or None if unknown."""
    return SPLIT_WORDS.get(str(name).strip().lower()) if name is not None else None


def _is_hf_disk_folder(path: Path) -> bool:
    return path.is_dir() and any((path / marker).exists() for marker in HF_DISK_MARKERS)


def _parquet_rows(path: Path) -> Iterator[Row]:
    parquet = require("pyarrow.parquet", "hf")
    try:
        table = parquet.read_table(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise DatasetError(f"{path}: cannot read the Parquet file ({exc})") from None
    split = file_split(path.with_name(path.name.removesuffix(PARQUET_SUFFIX)))
    for i, row in enumerate(table.to_pylist()):
        yield f"{path}: row {i}", row, split


def _rows_of_file(path: Path) -> Iterator[Row]:
    if path.name.lower().endswith(PARQUET_SUFFIX):
        yield from _parquet_rows(path)
        return
    split = file_split(path)
    for where, entry in read_entries(path):
        yield where, entry, split


def _rows_of_path(path: Path) -> Iterator[Row]:
    if _is_hf_disk_folder(path):
        datasets = require("datasets", "hf")
        yield from iter_rows(datasets.load_from_disk(str(path)), where=str(path))
        return
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(PARQUET_SUFFIX))
        try:
            files = sorted(files + data_files(path))
        except DatasetError:
            if not files:
                raise DatasetError(f"{path}: no data file in the folder (expected names ending in "
                                   f"{', '.join(DATA_SUFFIXES + (PARQUET_SUFFIX,))})") from None
    else:
        files = data_files(path)
    for file in files:
        yield from _rows_of_file(file)


def iter_rows(source: Any, *, where: str = "rows") -> Iterator[Row]:
    """(where, row, announced split) for every row of a source.

    A source is a path (a JSON/JSONL file, optionally gzipped, a Parquet file, a folder of them, or a folder
    written by ``datasets``' ``save_to_disk``), a mapping of split name to rows (a ``datasets.DatasetDict``
    is one), or any iterable of row mappings (a ``datasets.Dataset`` is one).
    """
    if isinstance(source, (str, Path)):
        yield from _rows_of_path(Path(source))
        return
    if isinstance(source, Mapping):
        for name, rows in source.items():
            split = _split_name(name)
            if split is None:
                raise DatasetError(f"{where}: unknown split name {name!r} (expected one of {', '.join(SPLIT_WORDS)})")
            for i, row in enumerate(rows):
                yield f"{where}[{name!r}] row {i}", row, split
        return
    if isinstance(source, Iterable):
        for i, row in enumerate(source):
            yield f"{where}: row {i}", row, None
        return
    raise DatasetError(f"{where}: expected a path, rows or a datasets.Dataset, not {type(source).__name__}")


def _answers(value: Any, where: str, field_name: str) -> list[str]:
    """Gold answers as a non-empty list of strings (a single string or number counts as one answer)."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise DatasetError(f"{where}: field {field_name!r} must be a non-empty answer or list of answers, "
                           f"got {json.dumps(value, default=str)[:80]}")
    out = []
    for item in value:
        if not isinstance(item, (str, int, float)) or isinstance(item, bool) or not str(item).strip():
            raise DatasetError(f"{where}: field {field_name!r} holds {item!r}, not a non-empty answer")
        out.append(str(item))
    return out


def qa_task(row: Mapping[str, Any], fields: QAFields, *, name: str, where: str) -> Task:
    """One row as a Task (``data``: question, answers and the row itself); DatasetError names a bad row."""
    if not isinstance(row, Mapping):
        raise DatasetError(f"{where}: a row is a JSON object, not {type(row).__name__}")
    question = _lookup(row, fields.question)
    if not isinstance(question, str) or not question.strip():
        raise DatasetError(f"{where}: field {fields.question!r} must be a non-empty string (the question)")
    answers = _answers(_lookup(row, fields.answers), where, fields.answers)
    row_id = _lookup(row, fields.id) if fields.id else None
    family = _lookup(row, fields.family) if fields.family else None
    difficulty = _lookup(row, fields.difficulty) if fields.difficulty else None
    # The dataset's own id defines the task when there is one; without it the question text does.
    params = {"id": str(row_id)} if row_id is not None else {"question": question}
    return Task(kind=name, family=str(family) if family is not None else name, template="qa", params=params,
                data={"question": question, "answers": answers, "row": dict(row)},
                difficulty=str(difficulty) if difficulty is not None else None)


def qa_suite(source: Any, fields: QAFields = QAFields(), *, name: str = "qa", version: str = "v0",
             rule: SplitRule = SplitRule(), pinned_path: str | Path | None = None) -> TaskSuite:
    """A TaskSuite over the rows of `source` (see ``iter_rows``); the dataset's splits win over `rule`'s hash split.

    A row repeated (same id, or same question without ids) counts once, in its earliest split (train, then
    dev, then test); a repeat with a different question or answers is a DatasetError.
    """
    tasks: dict[str, tuple[Task, str | None, str]] = {}
    for where, row, announced in iter_rows(source):
        task = qa_task(row, fields, name=name, where=where)
        own = _lookup(row, fields.split) if fields.split else None
        split = _split_name(own) if own is not None else announced
        if own is not None and split is None:
            raise DatasetError(f"{where}: unknown split {own!r} in field {fields.split!r} "
                               f"(expected one of {', '.join(SPLIT_WORDS)})")
        seen = tasks.get(task.id)
        if seen is not None:
            if (seen[0].data["question"], seen[0].data["answers"]) != (task.data["question"], task.data["answers"]):
                raise DatasetError(f"{where}: repeats {seen[2]} ({task.params}) with a different question or answers")
            if SPLIT_RANK.get(split or "test", 2) >= SPLIT_RANK.get(seen[1] or "test", 2):
                continue
        tasks[task.id] = (task, split, where)
    if not tasks:
        raise DatasetError(f"{source if isinstance(source, (str, Path)) else 'rows'}: no rows")
    fixed = None
    if any(split is not None for _, split, _ in tasks.values()):
        # Rows without a split of their own take the hash split, so a partly split dataset still has every split.
        fixed = {tid: split or rule.assign(task)[0] for tid, (task, split, _) in tasks.items()}
    suite = TaskSuite(name, version, [t for t, _, _ in tasks.values()], rule, pinned_path=pinned_path,
                      fixed_splits=fixed)
    warn_near_duplicates(suite, source if isinstance(source, (str, Path)) else name)
    return suite


def _path_key(path: Path) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    """The resolved path plus the size and mtime of every file under it: a changed file misses the cache."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return str(path.resolve()), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


@functools.lru_cache(maxsize=8)
def _cached_suite(key: tuple[Any, ...], path: str, fields: QAFields, name: str, version: str, rule: SplitRule,
                  pinned_path: str | None) -> TaskSuite:
    return qa_suite(path, fields, name=name, version=version, rule=rule, pinned_path=pinned_path)


def load_qa_suite(source: Any, fields: QAFields = QAFields(), *, name: str = "qa", version: str = "v0",
                  rule: SplitRule = SplitRule(), pinned_path: str | Path | None = None) -> TaskSuite:
    """``qa_suite``, read once per process for a path (every env of a benchmark shares the parsed suite)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise DatasetError(f"{path}: no such file or directory")
        return _cached_suite(_path_key(path), str(path), fields, name, version, rule,
                             str(pinned_path) if pinned_path else None)
    return qa_suite(source, fields, name=name, version=version, rule=rule, pinned_path=pinned_path)

