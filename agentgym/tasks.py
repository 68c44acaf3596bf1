"""Tasks, held-out splits and versioned task suites.

A task is (kind, family, template, params); its id is a hash of that canonical form, so the same task
has the same id on every machine whatever seed produced it. Splits have two held-out axes, as the best
benchmarks do: out-of-distribution (whole families never seen in training) and in-distribution (a hash
split of the rest, over a near-duplicate group key so that paraphrases never straddle splits).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from agentgym.errors import UnknownTaskError
from agentgym.jsonutil import canonical_json, sha256_hex

Split = Literal["train", "dev", "test"]
SPLITS: tuple[str, ...] = ("train", "dev", "test")
HELD_OUT: tuple[str, ...] = ("dev", "test")


@dataclass(frozen=True)
class Task:
    """One task. Only (kind, family, template, params) define it; ``data`` is derived payload (prompt, gold)."""

    kind: str
    family: str
    template: str
    params: Mapping[str, Any]
    data: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    group: str | None = field(default=None, compare=False, hash=False)  # near-duplicate group (IID split key)
    difficulty: str | None = field(default=None, compare=False, hash=False)

    def canonical(self) -> str:
        """The canonical JSON the id hashes."""
        return canonical_json({"kind": self.kind, "family": self.family, "template": self.template,
                               "params": self.params})

    @cached_property
    def id(self) -> str:
        """16 hex characters of SHA-256 over the canonical form."""
        return sha256_hex(self.canonical())[:16]

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(frozen=True)
class SplitRule:
    """Assign tasks to splits: whole families for OOD dev/test, then a hash of the group key for IID."""

    ood_test_families: frozenset[str] = frozenset()
    ood_dev_families: frozenset[str] = frozenset()
    iid_test_percent: int = 10
    iid_dev_percent: int = 10

    def assign(self, task: Task) -> tuple[str, str | None]:
        """Return (split, held-out axis) where the axis is 'ood', 'iid' or None for train."""
        if task.family in self.ood_test_families:
            return "test", "ood"
        if task.family in self.ood_dev_families:
            return "dev", "ood"
        bucket = int(sha256_hex(task.group or task.id)[:8], 16) % 100
        if bucket < self.iid_test_percent:
            return "test", "iid"
        if bucket < self.iid_test_percent + self.iid_dev_percent:
            return "dev", "iid"
        return "train", None


@dataclass(frozen=True)
class Manifest:
    """A frozen list of task ids for one split of one suite version, with a checksum."""

    suite: str
    version: str
    split: str
    task_ids: tuple[str, ...]

    @property
    def checksum(self) -> str:
        return sha256_hex("\n".join(self.task_ids))

    def to_json(self) -> dict[str, Any]:
        return {"suite": self.suite, "version": self.version, "split": self.split,
                "count": len(self.task_ids), "checksum": self.checksum, "task_ids": list(self.task_ids)}


class TaskSuite:
    """A versioned collection of tasks with a split rule (or fixed splits); listed in id order, so manifests are stable."""

    def __init__(self, name: str, version: str, tasks: Iterable[Task], rule: SplitRule,
                 pinned_path: str | Path | None = None, fixed_splits: Mapping[str, str] | None = None):
        self.name = name
        self.version = version
        self.rule = rule
        self.pinned_path = Path(pinned_path) if pinned_path else None  # the committed manifest, if any
        self._tasks: dict[str, Task] = {}
        for task in sorted(tasks, key=lambda t: t.id):
            if task.id in self._tasks:
                raise ValueError(f"duplicate task {task.id} in suite {name}: {task.canonical()}")
            self._tasks[task.id] = task
        # Datasets that ship their own splits (Spider, BIRD, ...) pass them as fixed_splits (task id -> split).
        self._split: dict[str, tuple[str, str | None]] = {
            tid: ((fixed_splits[tid], None if fixed_splits[tid] == "train" else "dataset")
                  if fixed_splits is not None else rule.assign(t))
            for tid, t in self._tasks.items()}

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, task_id: str) -> Task:
        """The task with this id, or UnknownTaskError."""
        try:
            return self._tasks[task_id]
        except KeyError:
            raise UnknownTaskError(f"task {task_id!r} is not in suite {self.name} {self.version}") from None

    def split_of(self, task_id: str) -> str | None:
        """The split of a task id (None for a task outside this suite)."""
        return self._split.get(task_id, (None, None))[0]

    def axis_of(self, task_id: str) -> str | None:
        """'ood' or 'iid' for held-out tasks, None for train or unknown tasks."""
        return self._split.get(task_id, (None, None))[1]

    def tasks(self, split: str | None = None, axis: str | None = None) -> list[Task]:
        """Tasks of one split (all if None), optionally one held-out axis ('ood' or 'iid'), in id order."""
        if split is not None and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return [t for tid, t in self._tasks.items()
                if (split is None or self._split[tid][0] == split) and (axis is None or self._split[tid][1] == axis)]

    def manifest(self, split: str) -> Manifest:
        return Manifest(self.name, self.version, split, tuple(t.id for t in self.tasks(split)))

    def matches_pinned(self, split: str) -> bool | None:
        """Whether this split's checksum equals the committed manifest's (None when nothing is committed)."""
        if self.pinned_path is None or not self.pinned_path.exists():
            return None
        pinned = load_pinned(self.pinned_path)["splits"].get(split, {})
        return pinned.get("checksum") == self.manifest(split).checksum

    def pinned(self) -> dict[str, Any]:
        """What gets committed: held-out manifests in full, the train split by count and checksum."""
        out: dict[str, Any] = {"suite": self.name, "version": self.version, "splits": {}}
        for split in SPLITS:
            m = self.manifest(split).to_json()
            if split == "train":
                m.pop("task_ids")
            out["splits"][split] = m
        return out


def load_pinned(path: str | Path) -> dict[str, Any]:
    """Read a committed manifest file."""
    return json.loads(Path(path).read_text())


_WORD = re.compile(r"[a-z0-9]+")


def shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    """Word n-grams of lower-cased text (the near-duplicate unit)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return frozenset({tuple(words)}) if words else frozenset()
    return frozenset(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    """|a & b| / |a | b| (0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def near_duplicates(left: Sequence[str], right: Sequence[str], *, threshold: float = 0.8, n: int = 3,
                    normalize: Callable[[str], str] | None = None) -> list[tuple[int, int, float]]:
    """Pairs (i, j, similarity) with word n-gram Jaccard >= threshold between two lists of texts.

    Uses an inverted index over shingles, so comparing thousands of texts stays fast.
    """
    norm = normalize or (lambda s: s)
    right_sh = [shingles(norm(t), n) for t in right]
    index: dict[tuple[str, ...], list[int]] = {}
    for j, sh in enumerate(right_sh):
        for g in sh:
            index.setdefault(g, []).append(j)
    pairs: list[tuple[int, int, float]] = []
    for i, text in enumerate(left):
        sh = shingles(norm(text), n)
        counts: dict[int, int] = {}
        for g in sh:
            for j in index.get(g, ()):
                counts[j] = counts.get(j, 0) + 1
        for j, inter in counts.items():
            sim = inter / (len(sh) + len(right_sh[j]) - inter)
            if sim >= threshold:
                pairs.append((i, j, sim))
    return pairs
