"""Training provenance: which env splits a model has seen, so benchmarks can refuse to evaluate on them.

Trainers (SFT, RL, the critic, step-DPO) write ``agentgym_provenance.json`` into every model directory they
produce, listing per env the splits, the suite's manifest checksums and a hash of the task ids they trained
on, plus whatever the model they started from had seen (an RL model inherits its SFT warm-up's data).
``agentgym bench`` reads it from ``--model`` (when that is a local directory) or from ``--provenance FILE``
and refuses a split the model was trained on unless given ``--allow-trained-split``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agentgym.errors import SplitLeakError
from agentgym.jsonutil import sha256_hex
from agentgym.tasks import HELD_OUT

OVERRIDE_FLAG = "--allow-trained-split"

PROVENANCE_FILE = "agentgym_provenance.json"


def write_provenance(model_dir: str | Path, env_id: str, splits: Iterable[str], *, suite: str = "",
                     version: str = "", manifest_checksums: dict[str, str] | None = None) -> Path:
    """Record (merging with what is already there) that the model in `model_dir` was trained on `splits` of `env_id`."""
    path = Path(model_dir) / PROVENANCE_FILE
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"trained_on": []}
    data["trained_on"].append({"env_id": env_id, "splits": sorted(set(splits)), "suite": suite, "version": version,
                               "manifest_checksums": manifest_checksums or {}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def task_ids_hash(task_ids: Iterable[str]) -> str:
    """SHA-256 over the sorted, distinct task ids (the same set of tasks always hashes the same)."""
    return sha256_hex("\n".join(sorted(set(task_ids))))


def suite_facts(env_id: str, splits: Iterable[str]) -> dict[str, Any]:
    """Suite name, version and manifest checksums of `splits` of the registered env (empty when unavailable)."""
    try:
        from agentgym.registry import suite as registered_suite

        suite = registered_suite(env_id)
        return {"suite": suite.name, "version": suite.version,
                "manifest_checksums": {s: suite.manifest(s).checksum for s in sorted(set(splits))}}
    except Exception:  # provenance must never stop a finished training run from saving its model
        return {}


def entries_from_records(records: Iterable[Any], *, trainer: str) -> list[dict[str, Any]]:
    """Provenance entries (one per env) from the episode records a model was trained on."""
    by_env: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in records:
        by_env[r.env_id][r.split or "unknown"].add(r.task_id)
    return [tasks_entry(env_id, splits, trainer=trainer) for env_id, splits in sorted(by_env.items())]


def tasks_entry(env_id: str, task_ids_by_split: Mapping[str, Iterable[str]], *, trainer: str) -> dict[str, Any]:
    """One provenance entry: the splits of `env_id` trained on, the suite's checksums and the task-id hashes."""
    splits = {split: set(ids) for split, ids in task_ids_by_split.items()}
    task_ids = [t for ids in splits.values() for t in ids]
    return {"env_id": env_id, "splits": sorted(splits), "trainer": trainer,
            "num_tasks": len(set(task_ids)), "task_ids_sha256": task_ids_hash(task_ids),
            "task_ids_sha256_by_split": {s: task_ids_hash(ids) for s, ids in sorted(splits.items())},
            **suite_facts(env_id, splits)}


def write_model_provenance(model_dir: str | Path, entries: Sequence[dict[str, Any]], *,
                           base_model: str | Path | None = None) -> Path:
    """Write the full provenance of a produced model: what its base had seen, then `entries` (replacing any old file)."""
    inherited = (read_provenance(base_model) or {}).get("trained_on", []) if base_model else []
    data = {"trained_on": [*inherited, *entries], "base_model": str(base_model) if base_model else None}
    path = Path(model_dir) / PROVENANCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def read_provenance(location: str | Path | None) -> dict[str, Any] | None:
    """Read provenance from a checkpoint directory or a provenance file; None when there is none."""
    if location is None:
        return None
    path = Path(location)
    if path.is_dir():
        path = path / PROVENANCE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def check_benchmark_split(env_id: str, split: str, provenance: dict[str, Any] | None, *,
                          allow_trained_split: bool = False) -> None:
    """Raise SplitLeakError unless `split` is held out and the model never trained on it (or that is overridden)."""
    if split not in HELD_OUT:
        raise SplitLeakError(f"benchmarks read held-out splits only ({', '.join(HELD_OUT)}), not {split!r}")
    if allow_trained_split:
        return
    for entry in (provenance or {}).get("trained_on", []):
        if entry.get("env_id") == env_id and split in entry.get("splits", []):
            raise SplitLeakError(f"refusing to benchmark {env_id} on split {split!r}: the model was trained on it "
                                 f"({entry.get('trainer') or 'training'} on {entry.get('num_tasks', '?')} tasks of "
                                 f"{', '.join(entry.get('splits', []))}); pass {OVERRIDE_FLAG} to run it anyway")
