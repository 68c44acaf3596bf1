"""Checkpoints that survive kill -9: atomic directories holding everything an exact resume needs.

A checkpoint is ``<run_dir>/checkpoints/step-00000012/`` with ``model/`` (``save_pretrained`` for HF models,
else ``model.pt`` state dict; a LoRA model's merged weights plus its adapter in ``model/lora/``, see
``trainers/lora.py``), ``trainer_state.pt`` (optimizer, LR scheduler, python/numpy/torch RNG states,
sampler state, extra) and ``meta.json`` (step, metrics offset, time). It is written into a temporary
directory, fsync'd, then renamed into place: a crash leaves either the whole checkpoint or none, and
half-written temporaries are swept on the next start. The newest ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.trainers import lora

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d{8})$")


@dataclass
class Checkpoint:
    """What ``restore`` gives back besides the model/optimizer/scheduler it loads in place."""

    path: Path
    step: int
    sampler_state: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    metrics_offset: int = 0


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb+") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(dirpath))


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first, as (step, path)."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and (p / "meta.json").is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory of a run, or None."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states."""
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back the states captured by ``capture_rng_state``."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _is_hf(model: Any) -> bool:
    return hasattr(model, "save_pretrained") and hasattr(model, "config")


def _load_hf_weights(model: Any, model_dir: Path) -> None:
    """Load safetensors shards written by ``save_pretrained`` into `model` in place (tied weights allowed)."""
    from safetensors.torch import load_file

    state: dict[str, Any] = {}
    for shard in sorted(model_dir.glob("*.safetensors")):
        state.update(load_file(str(shard)))
    if not state:
        raise FileNotFoundError(f"{model_dir} holds no *.safetensors weights")
    missing, unexpected = model.load_state_dict(state, strict=False)
    # save_pretrained drops tied copies (lm_head = embeddings): a missing key is fine if it shares storage
    by_ptr: dict[int, set[str]] = {}
    for name, tensor in model.state_dict().items():
        by_ptr.setdefault(tensor.data_ptr(), set()).add(name)
    tied = {n for names in by_ptr.values() if names & state.keys() for n in names}
    really_missing = [k for k in missing if k not in tied]
    if really_missing or unexpected:
        raise RuntimeError(f"checkpoint {model_dir} does not match the model: missing {really_missing[:5]}, "
                           f"unexpected {list(unexpected)[:5]}")


class CheckpointManager:
    """Save every ``every`` steps into ``<run_dir>/checkpoints``, keep the newest ``keep``, restore exactly.

    ``save(step, model, optimizer, scheduler, sampler_state, extra)`` and ``restore(model, optimizer,
    scheduler)`` work for any trainer: HF models go through ``save_pretrained`` (so a checkpoint's
    ``model/`` can be served or loaded with ``/v1/load_weights``), other modules through a state dict.
    """

    def __init__(self, run_dir: str | Path, every: int, keep: int = 3):
        if every < 1 or keep < 1:
            raise ValueError(f"checkpoint every={every} and keep={keep} must be >= 1")
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / CHECKPOINT_DIR
        self.every = every
        self.keep = keep
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".tmp-*"):  # a save interrupted by a crash
            shutil.rmtree(stale, ignore_errors=True)

    def due(self, step: int, *, last_step: int | None = None) -> bool:
        """Whether `step` should be checkpointed (every N steps, and the last step)."""
        return step % self.every == 0 or (last_step is not None and step == last_step)

    def save(self, step: int, model: Any, optimizer: Any = None, scheduler: Any = None, *,
             sampler_state: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
             metrics_offset: int | None = None, tokenizer: Any = None) -> Path:
        """Write checkpoint `step` atomically and prune old ones; returns its directory."""
        import torch

        final = self.root / f"step-{step:08d}"
        tmp = self.root / f".tmp-step-{step:08d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model_dir = tmp / "model"
        model_dir.mkdir()
        if lora.is_lora(model):  # merged weights for servers, the adapter itself for an exact resume
            lora.save_merged(model, model_dir, tokenizer)
            lora.save_adapter(model, model_dir / lora.ADAPTER_DIR)
        elif _is_hf(model):
            model.save_pretrained(model_dir, safe_serialization=True)
            if tokenizer is not None:
                tokenizer.save_pretrained(model_dir)
        else:
            torch.save(model.state_dict(), model_dir / "model.pt")
        torch.save({"optimizer": optimizer.state_dict() if optimizer is not None else None,
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "rng": capture_rng_state(), "sampler_state": sampler_state, "extra": extra or {}},
                   tmp / "trainer_state.pt")
        meta = {"step": step, "metrics_offset": step if metrics_offset is None else metrics_offset,
                "time": time.time(), "hf_model": _is_hf(model), "lora": lora.is_lora(model)}
        (tmp / "meta.json").write_text(json.dumps(meta))  # written last: its presence marks a complete checkpoint
        _fsync_tree(tmp)
        if final.exists():  # re-saving a step (e.g. after a resume): replace it whole
            old = self.root / f".tmp-old-{step:08d}-{os.getpid()}"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
        _fsync_dir(self.root)
        self.prune()
        return final

    def prune(self) -> None:
        """Delete all but the newest ``keep`` checkpoints."""
        found = list_checkpoints(self.run_dir)
        for _, path in found[:-self.keep]:
            shutil.rmtree(path, ignore_errors=True)

    def latest(self) -> Path | None:
        return latest_checkpoint(self.run_dir)

    def restore(self, model: Any, optimizer: Any = None, scheduler: Any = None, *, path: str | Path | None = None,
                restore_rng: bool = True) -> Checkpoint | None:
        """Load the newest (or the given) checkpoint into model/optimizer/scheduler and the RNGs; None if none."""
        import torch

        path = Path(path) if path is not None else self.latest()
        if path is None:
            return None
        meta = json.loads((path / "meta.json").read_text())
        if lora.is_lora(model):  # the frozen base came from the model directory; put the adapter back exactly
            lora.load_adapter(model, path / "model" / lora.ADAPTER_DIR)
        elif _is_hf(model):
            _load_hf_weights(model, path / "model")
        else:
            model.load_state_dict(torch.load(path / "model" / "model.pt", map_location="cpu", weights_only=True))
        state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=False)  # our own file
        if optimizer is not None and state["optimizer"] is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        if restore_rng:
            restore_rng_state(state["rng"])
        return Checkpoint(path=path, step=int(meta["step"]), sampler_state=state["sampler_state"],
                          extra=state["extra"], metrics_offset=int(meta["metrics_offset"]))


class ResumableSampler:
    """Seeded epoch-wise order over ``n`` items, drawn in batches; its state is two integers, so resume is exact.

    Epoch ``e`` uses the permutation of ``numpy.random.default_rng([seed, e])``: the order never depends on
    how many times the process was restarted.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int = 0, shuffle: bool = True):
        if n < 1 or batch_size < 1:
            raise ValueError(f"a sampler needs n >= 1 items and batch_size >= 1 (got {n}, {batch_size})")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch = 0
        self.position = 0

    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        return [int(i) for i in np.random.default_rng([self.seed, epoch]).permutation(self.n)]

    def next_batch(self) -> list[int]:
        """The next ``batch_size`` indices, continuing into the next epoch's order when one runs out."""
        out: list[int] = []
        while len(out) < self.batch_size:
            order = self._order(self.epoch)
            take = order[self.position:self.position + self.batch_size - len(out)]
            out.extend(take)
            self.position += len(take)
            if self.position >= self.n:
                self.epoch, self.position = self.epoch + 1, 0
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "batch_size": self.batch_size, "seed": self.seed, "shuffle": self.shuffle,
                "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (state["n"], state["seed"], state["shuffle"]) != (self.n, self.seed, self.shuffle):
            raise ValueError(f"sampler state is for n={state['n']}, seed={state['seed']}, shuffle={state['shuffle']}; "
                             f"this run has n={self.n}, seed={self.seed}, shuffle={self.shuffle} (data changed?)")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


__all__ = ["CHECKPOINT_DIR", "Checkpoint", "CheckpointManager", "ResumableSampler", "capture_rng_state",
           "latest_checkpoint", "list_checkpoints", "restore_rng_state"]
