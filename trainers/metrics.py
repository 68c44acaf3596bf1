"""Training metrics: one fsync'd JSONL line per step (plus TensorBoard), with no duplicated steps after a resume.

``metrics.jsonl`` holds ``{"step": n, "time": t, <name>: value, ...}``, one line per step. Resuming from a
checkpoint at step k drops every line after step k (and a torn last line) before appending, so a run that
was killed and resumed reads as if it had never stopped; TensorBoard gets the same cut via ``purge_step``.
Non-scalar values (e.g. the batch indices) go to JSONL only.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from agentgym.jsonutil import to_jsonable
from agentgym.records import EpisodeRecord
from agentgym.summary import summarize

METRICS_FILE = "metrics.jsonl"
_TB_WARNED = False


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All complete metric lines of a run, in file order (a torn last line is skipped)."""
    return list(iter_metrics(Path(run_dir) / METRICS_FILE))


def iter_metrics(path: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_bytes().split(b"\n")
    for raw in lines[:-1]:  # whatever follows the last newline never finished
        if raw.strip():
            yield json.loads(raw)


def truncate_metrics(path: str | Path, keep_through_step: int) -> int:
    """Rewrite `path` keeping only complete lines with ``step <= keep_through_step``; returns the lines kept."""
    path = Path(path)
    if not path.exists():
        return 0
    kept = [row for row in iter_metrics(path) if int(row["step"]) <= keep_through_step]
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        for row in kept:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return len(kept)


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _scalar(value.item())
    return None


def rollout_metrics(records: Sequence[EpisodeRecord], advantages: Sequence[Sequence[float]] | None = None, *,
                    prefix: str = "train/") -> dict[str, float]:
    """The standard per-step rollout metrics the training report plots, named as it reads them.

    ``<prefix>success``, ``reward``, ``turns``, ``tool_error_rate``, ``invalid_action_rate`` (from
    ``agentgym.summary.summarize``, the benchmark's own definitions) and ``<prefix>episodes`` (this step's
    count); given one advantage per turn per episode, ``adv_turn/<t>`` = the mean advantage at turn index t.
    The trainer adds the cumulative ``episodes`` itself (the x-axis of the success curves).
    """
    s = summarize(records)
    out: dict[str, float] = {f"{prefix}episodes": float(len(records))}
    for name, key in (("success", "success_rate"), ("reward", "mean_reward"), ("turns", "mean_turns"),
                      ("tool_error_rate", "tool_error_rate"), ("invalid_action_rate", "invalid_action_rate")):
        if s.get(key) is not None:
            out[f"{prefix}{name}"] = float(s[key])
    if advantages is not None:
        by_turn: dict[int, list[float]] = {}
        for episode in advantages:
            for t, a in enumerate(episode):
                by_turn.setdefault(t, []).append(float(a))
        for t, values in sorted(by_turn.items()):
            out[f"adv_turn/{t}"] = sum(values) / len(values)
    return out


class MetricsLogger:
    """Append-only per-step metrics for one run; ``resume_step`` cuts what a killed run logged past its checkpoint."""

    def __init__(self, run_dir: str | Path, *, resume_step: int | None = None, tensorboard: bool = True,
                 fsync: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS_FILE
        self._fsync = fsync
        rows = read_metrics(self.run_dir)
        done = max((int(r["step"]) for r in rows), default=None)
        if resume_step is not None:  # forget what a killed run logged after its checkpoint
            truncate_metrics(self.path, resume_step)
            self.last_step: int | None = resume_step
        else:
            truncate_metrics(self.path, done if done is not None else 0)  # only drops a torn last line
            self.last_step = done
        self._file = open(self.path, "a")
        self._tb = self._open_tensorboard(resume_step) if tensorboard else None

    def _open_tensorboard(self, resume_step: int | None) -> Any:
        global _TB_WARNED
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if not _TB_WARNED:
                warnings.warn("tensorboard is not installed: metrics go to metrics.jsonl only "
                              "(pip install tensorboard for TensorBoard curves)", stacklevel=3)
                _TB_WARNED = True
            return None
        return SummaryWriter(log_dir=str(self.run_dir / "tb"),
                             purge_step=resume_step + 1 if resume_step is not None else None)

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Write step `step`'s metrics as one line (steps must increase: a duplicate is a bug, so it raises)."""
        if self.last_step is not None and step <= self.last_step:
            raise ValueError(f"metrics for step {step} after step {self.last_step}: each step is logged once")
        row = {"step": int(step), "time": time.time(), **to_jsonable(dict(metrics))}
        self._file.write(json.dumps(row, separators=(",", ":")) + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self.last_step = step
        if self._tb is not None:
            for name, value in metrics.items():
                v = _scalar(value)
                if v is not None:
                    self._tb.add_scalar(name, v, step)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["METRICS_FILE", "MetricsLogger", "iter_metrics", "read_metrics", "rollout_metrics", "truncate_metrics"]
