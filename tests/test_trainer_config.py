"""Trainer config: YAML + flags merge (flags win), unknown keys rejected clearly, resolved config saved and reloadable."""

from __future__ import annotations

import pytest

from agentgym.trainers.config import (ConfigError, RLConfig, SFTConfig, build_config, config_from_args, help_lines,
                                      load_config, save_config)


def _yaml(tmp_path, text: str):
    path = tmp_path / "sft.yaml"
    path.write_text(text)
    return path


def test_flags_override_yaml_which_overrides_defaults(tmp_path):
    path = _yaml(tmp_path, "model: /models/tiny\ntrain_data: [a.jsonl, b.jsonl]\nlr: 0.001\nsteps: 30\nshuffle: false\n")
    cfg = config_from_args(SFTConfig, ["--config", str(path), "--lr", "3e-4", "--batch-size=4", "--micro-batch-size", "2"])
    assert cfg.lr == pytest.approx(3e-4)             # flag beats YAML
    assert cfg.steps == 30                           # YAML beats default
    assert cfg.shuffle is False
    assert cfg.train_data == ["a.jsonl", "b.jsonl"]
    assert (cfg.batch_size, cfg.micro_batch_size) == (4, 2)
    assert cfg.weight_decay == 0.0                   # untouched default
    cfg = config_from_args(SFTConfig, ["--config", str(path), "--shuffle", "--train-data", "x.jsonl,y.jsonl"])
    assert cfg.shuffle is True and cfg.train_data == ["x.jsonl", "y.jsonl"]
    assert config_from_args(SFTConfig, ["--config", str(path), "--no-deterministic"]).deterministic is False


def test_unknown_yaml_key_is_rejected_with_a_suggestion(tmp_path):
    path = _yaml(tmp_path, "model: m\ntrain_data: [a.jsonl]\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rat' for SFTConfig"):
        config_from_args(SFTConfig, ["--config", str(path)])
    with pytest.raises(ConfigError, match=r"unknown key 'lrr'.*did you mean 'lr'"):
        config_from_args(SFTConfig, ["--model", "m", "--train-data", "a", "--lrr", "0.1"])


def test_wrong_types_and_ranges_name_the_key(tmp_path):
    base = {"model": "m", "train_data": ["a.jsonl"]}
    with pytest.raises(ConfigError, match=r"SFTConfig.steps = 'ten': expected int"):
        build_config(SFTConfig, base, {"steps": "ten"})
    with pytest.raises(ConfigError, match=r"SFTConfig.steps = 2.5: expected int"):
        build_config(SFTConfig, base, {"steps": 2.5})
    with pytest.raises(ConfigError, match=r"SFTConfig.lr = 0.0: must be > 0"):
        build_config(SFTConfig, base, {"lr": 0})
    with pytest.raises(ConfigError, match=r"lr_schedule = 'exp': expected one of constant, linear, cosine"):
        build_config(SFTConfig, base, {"lr_schedule": "exp"})
    with pytest.raises(ConfigError, match=r"multiple of micro_batch_size"):
        build_config(SFTConfig, base, {"batch_size": 6, "micro_batch_size": 4})
    with pytest.raises(ConfigError, match=r"SFTConfig.model is required"):
        build_config(SFTConfig, {"train_data": ["a"]})
    with pytest.raises(ConfigError, match=r"does not exist"):
        config_from_args(SFTConfig, ["--config", str(tmp_path / "missing.yaml")])
    with pytest.raises(ConfigError, match=r"must hold a mapping"):
        config_from_args(SFTConfig, ["--config", str(_yaml(tmp_path, "- a\n- b\n"))])


def test_optional_fields_accept_null_and_rl_rules_apply():
    cfg = build_config(RLConfig, {"model": "m", "dual_clip": "none", "tis_cap": None, "algo": "gigpo"})
    assert cfg.dual_clip is None and cfg.tis_cap is None and cfg.algo == "gigpo"
    with pytest.raises(ConfigError, match="group_filter"):
        build_config(RLConfig, {"model": "m", "group_filter": "sometimes"})


def test_resolved_config_is_saved_and_reloads_identically(tmp_path):
    cfg = build_config(SFTConfig, {"model": "/m", "train_data": ["a.jsonl"], "lr": 2e-4, "run_dir": str(tmp_path),
                                   "lr_schedule": "cosine"})
    path = save_config(cfg)
    assert path == tmp_path / "config.yaml"
    text = path.read_text()
    assert "kind: sft" in text and "# peak learning rate of AdamW" in text  # readable: every key has its help
    again = load_config(tmp_path)
    assert again == cfg and type(again) is SFTConfig
    # a saved run config is also a valid --config file, and a config of another kind is refused
    assert config_from_args(SFTConfig, ["--config", str(path), "--steps", "7"]).steps == 7
    with pytest.raises(ConfigError, match="is a 'sft' config, not 'rl'"):
        config_from_args(RLConfig, ["--config", str(path)])


def test_help_lists_every_field_with_its_default():
    lines = help_lines(SFTConfig)
    assert any(line.startswith("--micro-batch-size (int, default 4): episodes per forward") for line in lines)
    assert len(lines) == len(SFTConfig.__dataclass_fields__)
