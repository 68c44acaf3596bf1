"""Episode records: everything a trainer or a report needs, stored as append-only JSONL that survives a crash.

One line per finished episode. A crash can at worst leave a torn last line; readers skip it and the
writer cuts it off before appending, so a file never holds half an episode. A file damaged in other
ways (a line of garbage, NUL bytes, JSON that is not a record) is never read as records: readers name
the bad line, and ``set_aside_damaged`` moves such lines into a side file so a resume can run their
episodes again.
"""

from __future__ import annotations

import asyncio
import json
import os
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from agentgym.jsonutil import to_jsonable

SCHEMA_VERSION = 1


@dataclass
class TurnRecord:
    """One turn: messages in, the action out (text, tokens, log-probs), the reward, info and timings."""

    turn: int
    observation: list[dict[str, Any]]          # env messages the policy saw before acting (new this turn)
    action: dict[str, Any]                     # the assistant message
    action_text: str
    reward: float
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    prompt_token_ids: list[int] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    loss_mask_spans: list[tuple[int, int]] | None = None  # [start, end) spans of model tokens in prompt+action ids
    finish_reason: str | None = None
    model_version: int | str | None = None
    policy_ms: float = 0.0
    env_ms: float = 0.0


@dataclass
class EpisodeRecord:
    """One episode: identity (task, split, seed, sample), turns, outcome, termination and failures."""

    episode_id: str
    env_id: str
    task_id: str
    split: str | None
    seed: int | None
    sample: int = 0
    group_id: str | None = None
    policy: str = ""
    first_observation: list[dict[str, Any]] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    final_observation: list[dict[str, Any]] = field(default_factory=list)
    reward: float | None = None           # the return: sum of turn rewards (None after an infrastructure failure)
    outcome_reward: float | None = None
    success: bool | None = None           # None when the episode could not be scored
    termination: str = "unknown"           # submitted | turn_budget | infra_error | deadline | policy_error
    reward_components: dict[str, float] = field(default_factory=dict)
    infra_errors: list[dict[str, Any]] = field(default_factory=list)  # every failed attempt, kept
    attempts: int = 1
    task_info: dict[str, Any] = field(default_factory=dict)   # family, template, difficulty, axis
    wall_ms: float = 0.0
    started_at: float = 0.0
    schema_version: int = SCHEMA_VERSION

    @property
    def key(self) -> str:
        """What identifies a job in a run: task and sample index (resume uses it)."""
        return f"{self.task_id}#{self.sample}"

    @property
    def scored(self) -> bool:
        """Whether the episode counts towards success rates (infrastructure failures do not)."""
        return self.success is not None

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EpisodeRecord:
        """Rebuild a record from its JSON form; ``RecordFormatError`` when a field is missing or of the wrong type."""
        if not isinstance(data, Mapping):
            raise RecordFormatError(f"a record is a JSON object, not {type(data).__name__}")
        _check_fields(cls, data)
        for i, turn in enumerate(data.get("turns", [])):
            _check_fields(TurnRecord, turn, where=f"turns[{i}].")
        data = dict(data)
        turn_fields = set(TurnRecord.__dataclass_fields__)
        turn_fields = turn_fields - {"loss_mask_spans"}
        turns = [TurnRecord(**{k: v for k, v in t.items() if k in turn_fields},  # newer files may add fields
                            loss_mask_spans=[tuple(s) for s in t["loss_mask_spans"]]
                            if t.get("loss_mask_spans") is not None else None)
                 for t in data.pop("turns", [])]
        known = set(cls.__dataclass_fields__)
        return cls(turns=turns, **{k: v for k, v in data.items() if k in known})


class RecordFormatError(ValueError):
    """A line of a records file is not an episode record (bad JSON, wrong shape or wrong field types)."""


_HINTS: dict[type, dict[str, Any]] = {}


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint (ints count as floats, bools never as numbers)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type) and is_dataclass(hint):
        return isinstance(value, Mapping)  # checked field by field by its own caller
    if origin is list:
        return isinstance(value, list) and (not args or all(_conforms(v, args[0]) for v in value))
    if origin is tuple:  # JSON has no tuples: a fixed-length list
        return isinstance(value, (list, tuple)) and len(value) == len(args) \
            and all(_conforms(v, a) for v, a in zip(value, args))
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and _conforms(v, args[1]) for k, v in value.items())
    return isinstance(value, origin or hint)


def _check_fields(cls: type, data: Any, where: str = "") -> None:
    """Raise ``RecordFormatError`` unless `data` holds every required field of `cls` with values of the right types."""
    if not isinstance(data, Mapping):
        raise RecordFormatError(f"{where.rstrip('.') or 'the record'} is a JSON object, not {type(data).__name__}")
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:  # a required field
                raise RecordFormatError(f"field {where}{f.name} is missing")
            continue
        if not _conforms(data[f.name], hints[f.name]):
            raise RecordFormatError(f"field {where}{f.name} has the wrong type ({type(data[f.name]).__name__})")


def parse_record_line(raw: bytes) -> EpisodeRecord:
    """One line of a records file as a record; ``RecordFormatError`` says why it is not one."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RecordFormatError(f"not valid JSON ({type(exc).__name__})") from None
    return EpisodeRecord.from_json(data)


@dataclass(frozen=True)
class DamagedLine:
    """A line of a records file that is not a record: its 1-based number, why, and its bytes (no newline)."""

    line: int
    reason: str
    raw: bytes


def damaged_path(path: str | Path) -> Path:
    """The side file that keeps the damaged lines set aside from a records file."""
    path = Path(path)
    return path.with_name(path.name + ".damaged")


def set_aside_damaged(path: str | Path) -> list[DamagedLine]:
    """Move every line of `path` that is not a record (and a torn last line) into its ``.damaged`` side file.

    The good lines stay, in order. Crash-safe: the damaged lines are appended (and fsync'd) to the side
    file before the records file is atomically replaced, so a line can at worst be kept twice, never lost.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    good: list[bytes] = []
    damaged: list[DamagedLine] = []
    for i, raw in enumerate(lines):
        last = i == len(lines) - 1
        if not raw.strip():
            continue
        if last:  # no newline after it: a write that never finished
            damaged.append(DamagedLine(i + 1, "torn last line (no newline)", raw))
            continue
        try:
            parse_record_line(raw)
        except RecordFormatError as exc:
            damaged.append(DamagedLine(i + 1, str(exc), raw))
            continue
        good.append(raw)
    if not damaged:
        return []
    side = damaged_path(path)
    with open(side, "ab") as f:
        f.write(b"".join(d.raw + b"\n" for d in damaged))
        f.flush()
        os.fsync(f.fileno())
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(b"".join(raw + b"\n" for raw in good))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return damaged


def _repair_tail(path: Path) -> None:
    """Cut a torn last line (no trailing newline) left by a crash mid-write."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return
        pos = size
        chunk = 65536
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            block = f.read(pos - start)
            idx = block.rfind(b"\n")
            if idx >= 0:
                f.truncate(start + idx + 1)
                return
            pos = start
        f.truncate(0)


class EpisodeWriter:
    """Append-only JSONL writer: each episode is one fsync'd line; writes run off the event loop."""

    def __init__(self, path: str | Path, *, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _repair_tail(self.path)
        self._fsync = fsync
        self._file = open(self.path, "ab")
        self._lock = asyncio.Lock()

    def write(self, record: EpisodeRecord) -> None:
        """Append one record (blocking)."""
        line = (json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        self._file.write(line)
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    async def awrite(self, record: EpisodeRecord) -> None:
        """Append one record from async code without blocking the loop."""
        async with self._lock:
            await asyncio.to_thread(self.write, record)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_episodes(path: str | Path) -> Iterator[EpisodeRecord]:
    """Read records back. A last line without its newline is a torn write (the writer cuts it): skipped.

    Any other line that is not a record raises ``RecordFormatError`` naming it (``set_aside_damaged``
    moves such lines out of the way).
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for i, raw in enumerate(lines[:-1]):  # whatever follows the last newline never finished
        if not raw.strip():
            continue
        try:
            record = parse_record_line(raw)
        except RecordFormatError as exc:
            raise RecordFormatError(f"{path}: line {i + 1} is not an episode record: {exc}") from None
        yield record


class EpisodeDataset:
    """Episode records as a dataset: filter by split or success, flatten to per-turn rows for trainers."""

    def __init__(self, records: list[EpisodeRecord]):
        self.records = records

    @classmethod
    def load(cls, *paths: str | Path) -> EpisodeDataset:
        return cls([r for p in paths for r in iter_episodes(p)])

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[EpisodeRecord]:
        return iter(self.records)

    def __getitem__(self, i: int) -> EpisodeRecord:
        return self.records[i]

    def filter(self, *, split: str | None = None, success: bool | None = None, scored_only: bool = False) -> EpisodeDataset:
        return EpisodeDataset([r for r in self.records
                               if (split is None or r.split == split)
                               and (success is None or r.success is success)
                               and (not scored_only or r.scored)])

    def turn_rows(self) -> list[dict[str, Any]]:
        """One row per turn with its episode's ids, outcome and the turn's tokens and reward."""
        rows = []
        for r in self.records:
            for t in r.turns:
                rows.append({"episode_id": r.episode_id, "task_id": r.task_id, "group_id": r.group_id,
                             "split": r.split, "turn": t.turn, "num_turns": r.num_turns, "reward": t.reward,
                             "episode_reward": r.reward, "success": r.success, "action_text": t.action_text,
                             "prompt_token_ids": t.prompt_token_ids, "token_ids": t.token_ids,
                             "logprobs": t.logprobs, "loss_mask_spans": t.loss_mask_spans})
        return rows
