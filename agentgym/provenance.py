"""Training provenance: which env splits a model has seen, so benchmarks can refuse to evaluate on them.

Trainers write ``agentgym_provenance.json`` into every checkpoint directory; ``agentgym bench`` reads it
from ``--model`` (when that is a local directory) or from ``--provenance FILE``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentgym.errors import SplitLeakError
from agentgym.tasks import HELD_OUT

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


def check_benchmark_split(env_id: str, split: str, provenance: dict[str, Any] | None) -> None:
    """Raise SplitLeakError unless `split` is held out and the model never trained on it."""
    if split not in HELD_OUT:
        raise SplitLeakError(f"benchmarks read held-out splits only ({', '.join(HELD_OUT)}), not {split!r}")
    for entry in (provenance or {}).get("trained_on", []):
        if entry.get("env_id") == env_id and split in entry.get("splits", []):
            raise SplitLeakError(f"refusing to benchmark {env_id} on split {split!r}: the model was trained on it "
                                 f"(provenance: {entry})")
