"""The training report: what a run did, as train_report.md plus PNG curves, built from its run directory alone.

Reads ``config.yaml``, ``metrics.jsonl`` (names as written by ``metrics.rollout_metrics`` and the trainers:
``train/success``, ``train/reward`` and their ``dev/`` twins, cumulative ``episodes``, ``loss``, ``dev/loss``,
``kl``, ``clip_fraction``, ``tool_error_rate``, ``invalid_action_rate``, ``adv_turn/<t>``; unprefixed
``success``/``reward`` are read too) and the episodes in ``rollouts.jsonl`` or ``rollouts/*.jsonl`` (training)
and ``dev_rollouts.jsonl`` or ``dev_rollouts/*.jsonl`` (held-out). A section whose metrics were never logged says so instead of
drawing an empty plot. Same style as the benchmark report (``agentgym.report``), whose transcript helper it reuses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentgym.records import EpisodeRecord, iter_episodes
from agentgym.report import _fmt, _transcript
from agentgym.trainers.config import CONFIG_FILE, read_yaml
from agentgym.trainers.metrics import read_metrics

ROLLOUTS_FILE = "rollouts.jsonl"          # training episodes, appended step after step
DEV_ROLLOUTS_FILE = "dev_rollouts.jsonl"  # held-out evaluation episodes
REPORT_FILE = "train_report.md"
_ADV = re.compile(r"^(?:adv_turn/|adv/turn_)(\d+)$")


def _series(rows: Sequence[dict[str, Any]], key: str, x: Sequence[float]) -> tuple[list[float], list[float]]:
    """(x, y) where `key` (or, for ``train/<name>``, the bare ``<name>``) was logged as a finite number."""
    keys = (key, key.split("/", 1)[1]) if key.startswith("train/") else (key,)
    xs, ys = [], []
    for xi, row in zip(x, rows):
        v = next((row[k] for k in keys if k in row), None)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
            xs.append(xi)
            ys.append(float(v))
    return xs, ys


def _episode_axis(rows: Sequence[dict[str, Any]]) -> tuple[list[float], str]:
    """Cumulative training episodes (``episodes``, or the sum of per-step ``train/episodes``), else the step."""
    if any("episodes" in r for r in rows):
        xs, last = [], 0.0
        for r in rows:
            last = float(r.get("episodes", last))
            xs.append(last)
        return xs, "training episodes"
    if any("train/episodes" in r for r in rows):
        total, xs = 0.0, []
        for r in rows:
            total += float(r.get("train/episodes") or 0)
            xs.append(total)
        return xs, "training episodes"
    return [float(r["step"]) for r in rows], "step"


def _line_plot(path: Path, panels: list[tuple[str, list[tuple[str, list[float], list[float]]]]], xlabel: str) -> Path | None:
    """One subplot per (title, curves) panel holding data; None (no file) when no panel has any."""
    panels = [(title, [c for c in curves if c[1]]) for title, curves in panels]
    panels = [(title, curves) for title, curves in panels if curves]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels):
        for label, xs, ys in curves:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
        ax.set_title(title)
        if title.startswith("success"):
            ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _advantage_heatmap(path: Path, rows: Sequence[dict[str, Any]]) -> Path | None:
    """Mean advantage per turn index (rows) and training step (columns); blank where a turn never happened."""
    turns = sorted({int(m.group(1)) for r in rows for k in r if (m := _ADV.match(k))})
    steps = [r for r in rows if any(_ADV.match(k) for k in r)]
    if not turns or not steps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.full((len(turns), len(steps)), np.nan)
    for j, r in enumerate(steps):
        for i, t in enumerate(turns):
            v = r.get(f"adv_turn/{t}", r.get(f"adv/turn_{t}"))
            if isinstance(v, (int, float)):
                grid[i, j] = v
    bound = float(np.nanmax(np.abs(grid))) or 1.0
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(steps) + 2), max(2.5, 0.5 * len(turns) + 1.5)))
    im = ax.imshow(grid, aspect="auto", cmap="RdBu", vmin=-bound, vmax=bound, interpolation="nearest")
    ax.set_yticks(range(len(turns)), [str(t) for t in turns])
    labels = [str(r["step"]) for r in steps]
    stride = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), stride), labels[::stride])
    ax.set_xlabel("training step")
    ax.set_ylabel("turn")
    ax.set_title("mean advantage per turn")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _recent(run: Path, name: str, n: int) -> list[EpisodeRecord]:
    """The newest `n` scored episodes of ``<name>.jsonl`` and ``<name>/*.jsonl`` (one file per step)."""
    files = ([run / f"{name}.jsonl"] if (run / f"{name}.jsonl").is_file() else []) + sorted(run.glob(f"{name}/*.jsonl"))
    records = [r for f in files for r in iter_episodes(f)]
    return [r for r in records[-n:] if r.scored]


def _image(title: str, plot: Path | None, missing: str) -> list[str]:
    return [f"![{title}]({plot.name})", ""] if plot is not None else [f"_{missing}_", ""]


def write_train_report(run_dir: str | Path, *, recent: int = 200) -> Path:
    """Write ``train_report.md`` and its PNGs into `run_dir`; returns the report path."""
    run = Path(run_dir)
    rows = read_metrics(run)
    cfg = read_yaml(run / CONFIG_FILE) if (run / CONFIG_FILE).is_file() else {}
    x_ep, x_label = _episode_axis(rows)
    x_step = [float(r["step"]) for r in rows]

    md = [f"# Training report: `{run.name}`", ""]
    if cfg:
        shown = {k: cfg[k] for k in ("kind", "model", "algo", "env_id", "steps", "lr", "batch_size", "group_size",
                                     "seed") if k in cfg}
        md += ["| setting | value |", "|---|---|", *[f"| {k} | `{v}` |" for k, v in shown.items()],
               "", f"Full resolved configuration: [{CONFIG_FILE}]({CONFIG_FILE}).", ""]
    if rows:
        last = rows[-1]
        finals = [(k, last.get(k)) for k in ("train/success", "success", "dev/success", "train/reward", "reward",
                                            "dev/reward", "loss", "dev/loss", "kl", "clip_fraction",
                                            "tool_error_rate", "train/tool_error_rate") if k in last]
        md += [f"Steps logged: {len(rows)} (last step {last['step']}).", ""]
        if finals:
            md += ["| metric at the last step | value |", "|---|---|",
                   *[f"| {k} | {_fmt(v)} |" for k, v in finals], ""]
    else:
        md += ["_No metrics logged yet._", ""]

    md += ["## Success and reward", ""]
    plot = _line_plot(run / "success_reward.png", [
        ("success rate", [("train", *_series(rows, "train/success", x_ep)),
                          ("dev", *_series(rows, "dev/success", x_ep))]),
        ("mean episode reward", [("train", *_series(rows, "train/reward", x_ep)),
                                 ("dev", *_series(rows, "dev/reward", x_ep))]),
    ], x_label)
    md += _image("success and reward", plot, "no success or reward logged in this run")

    md += ["## Loss, KL and clipping", ""]
    plot = _line_plot(run / "losses.png", [
        ("loss", [("train", *_series(rows, "loss", x_step)), ("dev", *_series(rows, "dev/loss", x_step))]),
        ("KL to reference", [("kl", *_series(rows, "kl", x_step))]),
        ("clip fraction", [("clip_fraction", *_series(rows, "clip_fraction", x_step))]),
    ], "step")
    md += _image("loss, KL and clip fraction", plot, "no loss, KL or clip fraction logged in this run")

    md += ["## Per-turn advantage", "",
           "Mean advantage of each turn index at each step: where credit lands within episodes.", ""]
    md += _image("per-turn advantage heatmap", _advantage_heatmap(run / "turn_advantages.png", rows),
                 "no per-turn advantages (adv_turn/<t>) logged in this run")

    md += ["## Tool errors", ""]
    plot = _line_plot(run / "tool_errors.png", [
        ("tool errors and invalid actions", [
            ("tool-error rate", *_series(rows, "train/tool_error_rate", x_step)),
            ("invalid-action rate", *_series(rows, "train/invalid_action_rate", x_step))]),
    ], "step")
    md += _image("tool-error rate", plot, "no tool-error rate logged in this run")

    md += ["## Example transcripts", ""]
    examples: list[tuple[str, EpisodeRecord]] = []
    for name, title in ((ROLLOUTS_FILE, "training"), (DEV_ROLLOUTS_FILE, "held-out dev")):
        records = _recent(run, name.removesuffix(".jsonl"), recent)
        if records:
            ranked = sorted(records, key=lambda r: (r.reward or 0.0, bool(r.success)))
            examples.append((f"best recent {title} episode", ranked[-1]))
            if len(ranked) > 1:
                examples.append((f"worst recent {title} episode", ranked[0]))
    if not examples:
        md += [f"_no episodes in {ROLLOUTS_FILE} or {DEV_ROLLOUTS_FILE}_", ""]
    for title, r in examples:
        md += [f"### {title}", "", _transcript(r), ""]
    path = run / REPORT_FILE
    path.write_text("\n".join(md))
    return path


write_report = write_train_report  # the name the CLI uses

__all__ = ["DEV_ROLLOUTS_FILE", "REPORT_FILE", "ROLLOUTS_FILE", "write_report", "write_train_report"]
