"""Trainer configuration: one typed dataclass per algorithm family, read from YAML and CLI flags, saved with each run.

Precedence: dataclass defaults < YAML file < flags. Every field has a one-line help (``opt(default, help)``);
unknown keys, wrong types and out-of-range values fail before training starts, with a message that names the
key. The resolved config is written to ``<run_dir>/config.yaml`` (with its ``kind``) and reloads exactly.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentgym.errors import AgentGymError
from agentgym.trainers.credit import ESTIMATORS, MIN_FORMS, CreditConfig, credit_help, unread_params
from agentgym.trainers.lora import DEFAULT_TARGETS as LORA_TARGETS
from agentgym.trainers.shaping import parse_shaping

CONFIG_FILE = "config.yaml"


class ConfigError(AgentGymError, ValueError):
    """A configuration key, value or file is wrong; the message names the key and what is expected."""


def opt(default: Any, help: str, **constraints: Any) -> Any:
    """A config field with a help line; ``constraints``: ``ge``/``gt``/``le`` bounds checked by ``validate``."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **constraints})
    if dataclasses.is_dataclass(default):  # a section such as RLConfig.credit: a fresh copy per config
        return field(default_factory=lambda d=default: dataclasses.replace(d), metadata={"help": help, **constraints})
    return field(default=default, metadata={"help": help, **constraints})


@dataclass
class RunConfig:
    """What every trainer shares: where the run lives, seeding, checkpoints, logging."""

    run_dir: str = opt("runs/default", "run directory: config.yaml, metrics.jsonl, checkpoints/, report")
    seed: int = opt(0, "seed of python/numpy/torch RNGs and of the data order")
    steps: int = opt(100, "optimizer steps in total", ge=1)
    checkpoint_every: int = opt(50, "save a checkpoint every N steps (and at the last step)", ge=1)
    keep_checkpoints: int = opt(3, "keep the newest K checkpoints", ge=1)
    resume: bool = opt(True, "continue from the newest checkpoint of run_dir if there is one")
    eval_every: int = opt(0, "held-out evaluation every N steps (0: only at the end)", ge=0)
    device: str = opt("cpu", "torch device: cpu, cuda, cuda:1")
    dtype: Literal["float32", "bfloat16", "float16"] = opt("float32", "parameter dtype of the trained model")
    deterministic: bool = opt(True, "torch deterministic algorithms: with the (always seeded) RNGs, a seed "
                                    "reproduces a run")
    tensorboard: bool = opt(True, "also write TensorBoard events to run_dir/tb (needs the tensorboard package)")
    lora_rank: int = opt(0, "LoRA rank r: train rank-r adapters on a frozen base (0: full fine-tuning; needs peft)",
                         ge=0)
    lora_alpha: float = opt(16.0, "LoRA alpha: adapter updates are scaled by alpha / r", gt=0.0)
    lora_dropout: float = opt(0.0, "dropout on the LoRA adapters' input (SFT; RL updates run in eval mode)",
                              ge=0.0, le=0.9)
    lora_targets: list[str] = opt(list(LORA_TARGETS),
                                  "module names that get LoRA adapters (Llama/Qwen attention and MLP projections)")

    def plain(self, name: str) -> Any:
        """Field ``name`` as plain data for config.yaml (a section becomes a mapping)."""
        value = getattr(self, name)
        return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value

    def validate(self) -> None:
        """Check bounds declared with ``opt(..., ge=, gt=, le=)`` and family rules; raises ConfigError."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            for key, ok, word in (("ge", value >= f.metadata.get("ge", value), ">="),
                                  ("gt", value > f.metadata["gt"] if "gt" in f.metadata else True, ">"),
                                  ("le", value <= f.metadata.get("le", value), "<=")):
                if not ok:
                    raise ConfigError(f"{type(self).__name__}.{f.name} = {value!r}: must be {word} {f.metadata[key]}")
        if self.lora_rank > 0 and not self.lora_targets:
            raise ConfigError(f"{type(self).__name__}.lora_targets is empty: LoRA (lora_rank = {self.lora_rank}) "
                              "needs at least one module name, e.g. q_proj,v_proj")


def configure_determinism(cfg: RunConfig) -> bool:
    """Seed python/numpy/torch from ``cfg.seed`` and, if ``cfg.deterministic``, make torch kernels deterministic.

    Returns torch's previous determinism flag, so a trainer can put it back when it ends.
    """
    import random

    import numpy as np
    import torch

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    before = torch.are_deterministic_algorithms_enabled()
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return before


@dataclass
class SFTConfig(RunConfig):
    """Supervised warm-up (behaviour cloning) on episode records: loss on the model's own tokens only."""

    model: str = opt("", "model directory (save_pretrained layout: weights, tokenizer with chat template)")
    train_data: list[str] = opt([], "episodes.jsonl files to imitate")
    dev_data: list[str] = opt([], "held-out episodes.jsonl files (empty: hold out dev_fraction of the tasks)")
    dev_fraction: float = opt(0.1, "share of train tasks held out when dev_data is empty", ge=0.0, le=0.5)
    env_id: str = opt("agentgym/sql-v0", "env whose tool schemas render the system turn, as at rollout time")
    only_successful: bool = opt(True, "imitate successful episodes only")
    batch_size: int = opt(8, "episodes per optimizer step", ge=1)
    micro_batch_size: int = opt(4, "episodes per forward/backward (gradients accumulate up to batch_size)", ge=1)
    lr: float = opt(1e-4, "peak learning rate of AdamW", gt=0.0)
    weight_decay: float = opt(0.0, "AdamW weight decay", ge=0.0)
    warmup_steps: int = opt(0, "linear warm-up steps", ge=0)
    lr_schedule: Literal["constant", "linear", "cosine"] = opt("constant", "decay after warm-up")
    max_grad_norm: float = opt(1.0, "gradient clipping norm (0: off)", ge=0.0)
    max_seq_len: int = opt(4096, "episodes longer than this are cut (their tail gets no loss)", ge=16)
    shuffle: bool = opt(True, "reshuffle the episodes every epoch (seeded)")

    def validate(self) -> None:
        super().validate()
        if not self.model:
            raise ConfigError("SFTConfig.model is required: a model directory (e.g. from `agentgym model tiny`)")
        if not self.train_data:
            raise ConfigError("SFTConfig.train_data is required: one or more episodes.jsonl files")
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(f"SFTConfig.batch_size ({self.batch_size}) must be a multiple of "
                              f"micro_batch_size ({self.micro_batch_size})")


@dataclass
class RLConfig(RunConfig):
    """On-policy multi-turn RL (GRPO/RLOO/GiGPO/turn-level GAE credit, PPO-clip token loss)."""

    model: str = opt("", "initial policy directory (save_pretrained layout)")
    env_id: str = opt("agentgym/sql-v0", "training environment")
    algo: str = opt("grpo", f"credit estimator: {', '.join(ESTIMATORS)}")
    credit: CreditConfig = opt(CreditConfig(), "parameters of the chosen estimator, --credit KEY=VALUE (repeatable) or "
                                               "YAML credit: {KEY: VALUE}; only those --algo reads (see --help-config)")
    steps: int = opt(8, "policy updates", ge=1)
    tasks_per_step: int = opt(4, "distinct tasks per update", ge=1)
    group_size: int = opt(4, "episodes per task (the group of group-relative estimators)", ge=1)
    ppo_epochs: int = opt(1, "passes over each rollout batch", ge=1)
    micro_batch_size: int = opt(4, "rows per forward/backward (gradients accumulate over a batch)", ge=1)
    lr: float = opt(1e-5, "AdamW learning rate", gt=0.0)
    max_grad_norm: float = opt(1.0, "gradient clipping norm (0: off)", ge=0.0)
    clip_low: float = opt(0.2, "PPO ε_low", ge=0.0)
    clip_high: float = opt(0.28, "PPO ε_high (clip-higher, DAPO)", ge=0.0)
    dual_clip: float | None = opt(3.0, "dual-clip c for A < 0 (null: off)", gt=1.0)
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum",
                      "seq-mean-token-sum-norm"] = opt("token-mean", "loss aggregation (verl agg_loss)")
    kl_coef: float = opt(0.0, "β of the KL-to-reference loss (0: no reference model)", ge=0.0)
    kl_estimator: Literal["k1", "k2", "k3", "k3+"] = opt("k3", "KL estimator")
    tis_cap: float | None = opt(2.0, "truncated importance sampling cap C (null: off)", gt=0.0)
    group_filter: str = opt("zero-variance", "zero-variance | none | top:<fraction>")
    reward_shaping: str = opt("", "training-only reward terms NAME=WEIGHT,... (invalid_action, tool_error, or a "
                                  "reward component such as syntax_ok); the env's reward is unchanged")
    min_form: str | None = opt(None, "PURE's min-form transform of per-turn rewards: min_form_softmax | min_form_exact")
    curriculum: bool = opt(True, "favour task families with intermediate success")
    max_steps_without_update: int = opt(10, "fail the run after this many consecutive steps in which no group had "
                                             "reward variance (no policy update); 0: never", ge=0)
    concurrency: int = opt(8, "episodes in flight during rollouts", ge=1)
    max_tokens: int = opt(512, "generation budget per turn", ge=1)
    checkpoint_every: int = opt(10, "save a checkpoint every N updates", ge=1)

    def plain(self, name: str) -> Any:
        """As ``RunConfig.plain``; ``credit`` keeps only the parameters the chosen estimator reads."""
        if name == "credit":
            return {p: getattr(self.credit, p) for p in ESTIMATORS[self.algo].params}
        return super().plain(name)

    def validate(self) -> None:
        super().validate()
        if not self.model:
            raise ConfigError("RLConfig.model is required: the initial policy directory")
        if self.algo not in ESTIMATORS:
            raise ConfigError(f"RLConfig.algo = {self.algo!r}: unknown credit estimator; known: "
                              f"{', '.join(sorted(ESTIMATORS))}")
        unread = unread_params(self.algo, self.credit)
        if unread:
            reads = ", ".join(ESTIMATORS[self.algo].params) or "no parameters"
            raise ConfigError(f"RLConfig.credit sets {', '.join(unread)}, which --algo {self.algo} does not read "
                              f"(it reads {reads})")
        for name in ("gamma", "lam", "gigpo_gamma", "high_level_gamma"):
            if not 0.0 <= getattr(self.credit, name) <= 1.0:
                raise ConfigError(f"RLConfig.credit.{name} = {getattr(self.credit, name)!r}: must be in [0, 1]")
        if self.min_form not in (None, *MIN_FORMS):
            raise ConfigError(f"RLConfig.min_form = {self.min_form!r}: expected one of {', '.join(MIN_FORMS)}")
        try:
            parse_shaping(self.reward_shaping)
        except ValueError as exc:
            raise ConfigError(f"RLConfig.reward_shaping: {exc}") from None
        if not (self.group_filter in ("zero-variance", "none") or self.group_filter.startswith("top:")):
            raise ConfigError(f"RLConfig.group_filter = {self.group_filter!r}: expected zero-variance, none or top:<fraction>")


CONFIG_KINDS: dict[str, type[RunConfig]] = {"sft": SFTConfig, "rl": RLConfig}


def _kind_of(cls: type[RunConfig]) -> str:
    for kind, c in CONFIG_KINDS.items():
        if c is cls:
            return kind
    raise ConfigError(f"{cls.__name__} is not registered in CONFIG_KINDS")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(cls: type, name: str, tp: Any, value: Any) -> Any:
    """Turn a YAML value or a flag string into the field's type, or raise ConfigError naming the key."""
    where = f"{cls.__name__}.{name}"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(cls, name, inner[0], value)
    if origin is Literal:
        text = str(value)
        if text not in [str(a) for a in args]:
            raise ConfigError(f"{where} = {value!r}: expected one of {', '.join(map(str, args))}")
        return text
    if origin is list:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{where} = {value!r}: expected a list")
        return [_coerce(cls, name, args[0] if args else str, v) for v in items if v != ""]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{where} = {value!r}: expected true or false")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r}: expected a number, not a boolean")
        try:
            out = tp(value)
            if tp is int and isinstance(value, float) and value != out:
                raise ValueError
            if tp is int and isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
                raise ValueError
            return out
        except (TypeError, ValueError):
            raise ConfigError(f"{where} = {value!r}: expected {tp.__name__}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where} = {value!r}: expected a string")
        return str(value)
    if dataclasses.is_dataclass(tp):
        return _section(tp, where, _section_items(where, value))
    return value


def _section_items(where: str, value: Any) -> dict[str, Any]:
    """A section's ``{key: value}`` from a YAML mapping, a dataclass, or ``KEY=VALUE`` strings (flags)."""
    if value is None:  # an empty YAML section
        return {}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"{where} = {value!r}: expected a mapping or KEY=VALUE pairs")
    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = str(item).partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"{where}: {item!r} is not KEY=VALUE")
        out[key.strip()] = text.strip()
    return out


def _section(tp: type, where: str, items: Mapping[str, Any]) -> Any:
    """A section dataclass (e.g. ``CreditConfig``) from its keys, each coerced to its field's type."""
    hints = _hints(tp)
    names = [f.name for f in dataclasses.fields(tp)]
    values = {}
    for key, value in items.items():
        name = key.replace("-", "_")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; valid keys: {', '.join(sorted(names))}")
        values[name] = _coerce(tp, name, hints[name], value)
    return tp(**values)


# keys that moved into a section, so an old flag or YAML file gets told where they went
MOVED = {"gamma": "credit gamma", "gae_lambda": "credit lam", "gigpo_omega": "credit gigpo_omega"}


def _unknown(cls: type, key: str) -> ConfigError:
    names = [f.name for f in dataclasses.fields(cls)]
    name = key.replace("-", "_")
    if name in MOVED and "credit" in names:
        section, param = MOVED[name].split()
        return ConfigError(f"{cls.__name__} has no key {key!r}: it is an estimator parameter now, "
                           f"--{section} {param}=VALUE (YAML: {section}: {{{param}: VALUE}})")
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown key {key!r} for {cls.__name__}{hint}; valid keys: {', '.join(sorted(names))}")


def build_config(cls: type[RunConfig], *layers: Mapping[str, Any]) -> RunConfig:
    """Defaults, then each mapping in order (later wins); unknown keys and bad values raise ConfigError."""
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            name = key.replace("-", "_")
            if name == "kind":
                continue
            if name not in names:
                raise _unknown(cls, key)
            if dataclasses.is_dataclass(hints[name]):  # a section: later layers override key by key
                where = f"{cls.__name__}.{name}"
                merged = {**dataclasses.asdict(values.get(name) or hints[name]()), **_section_items(where, value)}
                values[name] = _section(hints[name], where, merged)
                continue
            values[name] = _coerce(cls, name, hints[name], value)
    cfg = cls(**values)
    cfg.validate()
    return cfg


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from `path` (a clear error for a missing file or a non-mapping document)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value, got {type(data).__name__}")
    return data


def parse_flags(cls: type[RunConfig], argv: Sequence[str]) -> tuple[str | None, dict[str, Any]]:
    """``--key value``, ``--key=value``, ``--flag`` / ``--no-flag`` for booleans; returns (``--config`` path, flags)."""
    hints = _hints(cls)
    config_path: str | None = None
    out: dict[str, Any] = {}
    i = 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r}: flags look like --key value")
        key, eq, value = arg[2:].partition("=")
        name = key.replace("-", "_")
        if name == "config":
            if not eq:
                i += 1
                if i >= len(argv):
                    raise ConfigError("--config needs a YAML file path")
                value = argv[i]
            config_path = value
            i += 1
            continue
        if not eq and name.startswith("no_") and hints.get(name[3:]) is bool:
            out[name[3:]] = False
        elif not eq and hints.get(name) is bool and (i + 1 >= len(argv) or argv[i + 1].startswith("--")):
            out[name] = True
        else:
            if not eq:
                if name not in hints:
                    raise _unknown(cls, key)
                i += 1
                if i >= len(argv):
                    raise ConfigError(f"--{key} needs a value")
                value = argv[i]
            if dataclasses.is_dataclass(hints.get(name)):  # --credit a=1 --credit b=2: the pairs add up
                out.setdefault(name, []).append(value)
            else:
                out[name] = value
        i += 1
    return config_path, out


def config_from_args(cls: type[RunConfig], argv: Sequence[str]) -> RunConfig:
    """Build a config from CLI flags, with ``--config FILE.yaml`` as the base layer (flags win)."""
    path, flags = parse_flags(cls, argv)
    base = read_yaml(path) if path else {}
    kind = base.get("kind")
    if kind is not None and kind != _kind_of(cls):
        raise ConfigError(f"config file {path} is a {kind!r} config, not {_kind_of(cls)!r}")
    return build_config(cls, base, flags)


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    """The resolved config as plain data, with its ``kind`` first."""
    return {"kind": _kind_of(type(cfg)), **{f.name: cfg.plain(f.name) for f in dataclasses.fields(cfg)}}


def save_config(cfg: RunConfig, run_dir: str | Path | None = None) -> Path:
    """Write the resolved config to ``<run_dir>/config.yaml`` atomically, each key preceded by its help line."""
    run_dir = Path(run_dir if run_dir is not None else cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    import yaml

    lines = [f"# agentgym {type(cfg).__name__}, resolved (defaults < YAML < flags)", f"kind: {_kind_of(type(cfg))}"]
    for f in dataclasses.fields(cfg):
        lines.append(f"# {f.metadata.get('help', '')}")
        lines.append(yaml.safe_dump({f.name: cfg.plain(f.name)}, default_flow_style=False, sort_keys=False,
                                    width=1000).rstrip())
    path = run_dir / CONFIG_FILE
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def load_config(path: str | Path) -> RunConfig:
    """Reload a saved config (a run dir or a config.yaml); its ``kind`` picks the dataclass."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    data = read_yaml(path)
    kind = data.get("kind")
    if kind not in CONFIG_KINDS:
        raise ConfigError(f"{path}: 'kind' must be one of {', '.join(CONFIG_KINDS)}, got {kind!r}")
    return build_config(CONFIG_KINDS[kind], data)


def help_lines(cls: type[RunConfig]) -> list[str]:
    """``--flag (type, default): help`` for every field, for a CLI's --help."""
    hints = _hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(default):
            out.append(f"--{f.name} KEY=VALUE: {f.metadata.get('help', '')}")
            if isinstance(default, CreditConfig):
                out += [f"  {line}" for line in credit_help()]
            continue
        tp = getattr(hints[f.name], "__name__", str(hints[f.name]).replace("typing.", ""))
        out.append(f"--{f.name.replace('_', '-')} ({tp}, default {default!r}): {f.metadata.get('help', '')}")
    return out


__all__ = ["CONFIG_FILE", "CONFIG_KINDS", "ConfigError", "RLConfig", "RunConfig", "SFTConfig", "build_config",
           "config_dict", "config_from_args", "configure_determinism", "help_lines", "load_config", "opt",
           "parse_flags", "read_yaml", "save_config"]
