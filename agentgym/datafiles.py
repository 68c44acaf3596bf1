"""Reading user dataset files (JSON lists or JSON lines, optionally gzipped) the same way for every env.

Loaders of user datasets (SQL, code, search) share these: which files a path holds, their entries with an
exact location for error messages, the split a file name announces, and a warning when training items
nearly repeat held-out ones.
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentgym.errors import DatasetError
from agentgym.tasks import Task, TaskSuite, near_duplicates

DATA_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
SPLIT_WORDS = {"train": "train", "training": "train", "prompt": "train", "dev": "dev", "val": "dev",
               "valid": "dev", "validation": "dev", "test": "test"}
NEAR_DUPLICATE_THRESHOLD = 0.7


def data_files(path: str | Path) -> list[Path]:
    """`path` itself, or the data files directly inside a folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DatasetError(f"{path}: no such file or directory")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES))
    if not files:
        raise DatasetError(f"{path}: no data file in the folder (expected names ending in {', '.join(DATA_SUFFIXES)})")
    return files


def read_entries(path: Path) -> list[tuple[str, Any]]:
    """(where, entry) pairs of a JSON list or a JSON-lines file, gunzipped when the name ends in .gz."""
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as f:
                text = f.read()
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc})") from None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DatasetError(f"{path}: not valid JSON ({exc})") from None
        return [(f"{path}: entry {i}", item) for i, item in enumerate(data)]
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                entries.append((f"{path}: line {n}", json.loads(line)))
            except ValueError as exc:
                raise DatasetError(f"{path}: line {n}: not valid JSON ({exc})") from None
    return entries


def file_split(path: Path) -> str | None:
    """The split a file's name announces (``train_spider.json`` -> train, ``test5.jsonl`` -> test), if any."""
    stem = path.name.lower()
    for suffix in (".gz", ".jsonl", ".json"):
        stem = stem.removesuffix(suffix)
    for word in re.split(r"[^a-z0-9]+", stem):
        split = SPLIT_WORDS.get(word.rstrip("0123456789"))
        if split:
            return split
    return None


def warn_near_duplicates(suite: TaskSuite, where: str | Path, *, label: Callable[[Task], str] | None = None,
                         normalize: Callable[[str], str] | None = None) -> None:
    """Warn when training questions nearly repeat held-out ones (word 3-gram Jaccard >= 0.7)."""
    train, held = suite.tasks("train"), suite.tasks("dev") + suite.tasks("test")
    if not train or not held:
        return
    pairs = near_duplicates([t.data["question"] for t in train], [t.data["question"] for t in held],
                            threshold=NEAR_DUPLICATE_THRESHOLD, normalize=normalize)
    if pairs:
        i, j, sim = pairs[0]
        name = label or (lambda t: t.data["question"])
        warnings.warn(f"{where}: {len(pairs)} training item(s) nearly repeat held-out ones (e.g. "
                      f"{name(train[i])!r} ~ {name(held[j])!r}, similarity {sim:.2f}): held-out scores may be "
                      "inflated", stacklevel=3)
