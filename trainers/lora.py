"""LoRA (PEFT) fine-tuning: rank-r adapters on a frozen base model, exported as plain merged weights.

Full fine-tuning suits tiny models; for large ones on a GPU the trainers can train low-rank adapters
instead (``lora_rank > 0`` in ``RunConfig``): ``W' = W + (α/r)·B·A`` on the targeted linear layers, with
only ``A`` and ``B`` trainable, so gradients and AdamW state exist for a fraction of a percent of the
parameters.

What leaves the trainer is always a plain ``save_pretrained`` directory: ``save_model`` folds the
adapters into a merged *copy* of the weights (the training model is never mutated: merging and
unmerging in place would not restore the base weights bit for bit), so the policy servers (HF or
vLLM), ``/v1/load_weights`` and ``AutoModelForCausalLM.from_pretrained`` load it unchanged.
Checkpoints hold the merged weights too (a resumed RL run syncs them to its server) plus the adapter
itself under ``lora/`` (``save_adapter``/``load_adapter``), which is what an exact resume restores:
the frozen base comes from the model directory again and the adapter tensors are put back as saved.

``peft`` ships with the ``train`` extra; without it ``apply_lora`` names the extra to install.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.extras import require

ADAPTER_DIR = "lora"  # a checkpoint's model/lora/: the adapter (peft layout), next to the merged weights
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    """Rank ``r`` (0: no adapters, full fine-tuning), scale ``alpha`` (updates are scaled by α/r), dropout on the
    adapters' input and the names of the modules that get adapters (Llama/Qwen attention and MLP projections)."""

    rank: int = 0
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS

    @property
    def enabled(self) -> bool:
        return self.rank > 0

    @classmethod
    def from_config(cls, cfg: Any) -> LoraSettings:
        """The settings of a trainer config (``lora_rank``, ``lora_alpha``, ``lora_dropout``, ``lora_targets``)."""
        return cls(rank=int(cfg.lora_rank), alpha=float(cfg.lora_alpha), dropout=float(cfg.lora_dropout),
                   target_modules=tuple(cfg.lora_targets))


def is_lora(model: Any) -> bool:
    """Whether `model` is a peft model (checked without importing peft: no peft loaded, no peft model)."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def apply_lora(model: Any, settings: LoraSettings) -> Any:
    """Wrap `model` with trainable LoRA adapters (everything else frozen); returns the peft model.

    The adapters start as a no-op (``B = 0``), so the wrapped model computes exactly what `model` did.
    The train/eval mode of `model` is kept. Create the optimizer afterwards, over ``trainable_parameters``.
    """
    if not settings.enabled:
        raise ValueError("apply_lora needs rank >= 1 (rank 0 means full fine-tuning: use the model as it is)")
    if not settings.target_modules:
        raise ValueError("apply_lora needs at least one target module name")
    peft = require("peft", "train")
    config = peft.LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                             target_modules=list(settings.target_modules), bias="none", task_type="CAUSAL_LM")
    was_training = model.training
    try:
        wrapped = peft.get_peft_model(model, config)
    except ValueError as exc:  # e.g. "Target modules {...} not found in the base model"
        raise ValueError(f"LoRA targets {list(settings.target_modules)} do not fit this model: {exc}") from None
    wrapped.train(was_training)
    return wrapped


def trainable_parameters(model: Any) -> list[Any]:
    """The parameters that get gradients (all of them for full fine-tuning, the adapters' for LoRA)."""
    return [p for p in model.parameters() if p.requires_grad]


def merged_state_dict(model: Any) -> dict[str, Any]:
    """The base model's state dict under its plain names, each adapted weight replaced by ``W + ΔW``.

    New CPU tensors for the adapted weights (the others are the model's own, not copied); nothing in
    `model` changes. Inactive adapters (inside ``disable_adapter()``) are not folded in.
    """
    import torch
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    merged: dict[str, Any] = {}
    with torch.no_grad():
        for name, module in base.named_modules():
            if not isinstance(module, LoraLayer) or module.merged or module.disable_adapters:
                continue
            weight = module.get_base_layer().weight
            delta = None
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    d = module.get_delta_weight(adapter)
                    delta = d if delta is None else delta + d
            if delta is not None:  # to the CPU at once: on a GPU, only one layer's merged copy exists at a time
                merged[f"{name}.weight"] = (weight + delta.to(weight.device)).to(weight.dtype).cpu()
        out: dict[str, Any] = {}
        for key, tensor in base.state_dict().items():
            if ".lora_" in key:  # lora_A / lora_B / DoRA magnitudes: folded in above
                continue
            plain = key.replace(".base_layer.", ".")
            out[plain] = merged.get(plain, tensor)
    return out


def save_merged(model: Any, path: str | Path, tokenizer: Any = None) -> Path:
    """Write `model` with its adapters folded in as a plain ``save_pretrained`` directory (no peft files).

    `model` is left as it was (no in-place merge); the directory loads with ``AutoModelForCausalLM`` and
    the policy servers exactly like a fully fine-tuned one.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    base = model.get_base_model()
    base.save_pretrained(path, state_dict=merged_state_dict(model), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return path


def save_model(model: Any, path: str | Path, tokenizer: Any = None) -> Path:
    """Plain full weights (plus tokenizer) in ``save_pretrained`` layout: merged for LoRA, as they are otherwise."""
    if is_lora(model):
        return save_merged(model, path, tokenizer)
    path = Path(path)
    model.save_pretrained(path, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return path


def save_adapter(model: Any, path: str | Path) -> Path:
    """The adapter alone, in peft's layout (``adapter_config.json`` + ``adapter_model.safetensors``)."""
    path = Path(path)
    model.save_pretrained(path, safe_serialization=True)
    return path


def load_adapter(model: Any, path: str | Path) -> None:
    """Put the adapter saved by ``save_adapter`` back into `model` in place, exactly; clear errors on a mismatch.

    The saved adapter must have the rank, alpha and targets of `model`'s (a resumed run with other LoRA
    settings would otherwise silently train something else).
    """
    import json

    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    path = Path(path)
    config_file = path / "adapter_config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} holds no LoRA adapter (adapter_config.json): was the checkpoint saved "
                                "by a full fine-tuning run? Resume with lora_rank 0 or start a new run_dir")
    saved = json.loads(config_file.read_text())
    ours = model.peft_config[model.active_adapter]
    for key, mine in (("r", ours.r), ("lora_alpha", ours.lora_alpha),
                      ("target_modules", sorted(ours.target_modules))):
        theirs = sorted(saved.get(key) or []) if key == "target_modules" else saved.get(key)
        if theirs != mine:
            raise ValueError(f"the LoRA adapter in {path} has {key} = {theirs!r}, this model {mine!r}")
    state = load_peft_weights(str(path), device=str(next(model.parameters()).device))
    result = set_peft_model_state_dict(model, state)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    expected = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = [k for k in (getattr(result, "missing_keys", []) or []) if k in expected]
    if unexpected or missing or len(state) != len(expected):
        raise RuntimeError(f"the LoRA adapter in {path} does not match the model: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}, {len(state)} tensors for {len(expected)} parameters")


class AdaptersDisabled:
    """The frozen base of a LoRA model, callable like a model: the KL reference policy without a weight copy.

    ``ref(input_ids=..., attention_mask=...)`` runs `model` inside peft's ``disable_adapter()``; the base
    weights never train, so this is exactly the initial policy (what a deep copy would have frozen).
    """

    def __init__(self, model: Any):
        self.model = model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.model.disable_adapter():
            return self.model(*args, **kwargs)

    def parameters(self) -> Any:
        return self.model.parameters()

    @property
    def device(self) -> Any:
        return self.model.device


def reference_model(model: Any) -> Any:
    """A frozen reference policy for KL: the adapters-off view of a LoRA model, else a frozen deep copy."""
    if is_lora(model):
        return AdaptersDisabled(model)
    import copy

    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    return ref


__all__ = ["ADAPTER_DIR", "AdaptersDisabled", "DEFAULT_TARGETS", "LoraSettings", "apply_lora", "is_lora",
           "load_adapter", "merged_state_dict", "reference_model", "save_adapter", "save_merged", "save_model",
           "trainable_parameters"]
