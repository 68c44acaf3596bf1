"""SFT warm-up: behaviour cloning from episode records, rendered token for token as the policy sees them at rollout.

An episode becomes one token sequence, built by the token-in/token-out policy's own ``build_prompt``
(``policies/token_policy.py``, contract C4), so training sees exactly the tokens rollouts will: the first
observation through the chat template with the generation prompt, each later observation as only the new
tokens appended to the context; each action as the template renders that assistant message, through its
closing ``<|im_end|>`` (what the model must generate before it stops). The loss is
the token-mean negative log-likelihood of the action tokens only (``loss_mask``); system, user, tool and
template tokens never get gradient. Records that already carry a chained episode's exact token ids (a token
policy's own rollouts) are used as recorded, never re-tokenised.

Run: ``python -m agentgym.trainers.sft --model DIR --train-data runs/oracle/episodes.jsonl --run-dir runs/sft``.
Killed at any point (even ``kill -9``), the same command resumes from the newest checkpoint and finishes
with the weights an uninterrupted run would have had. ``--lora-rank R`` trains rank-R adapters on a frozen
base instead of every weight (``trainers/lora.py``); ``final/`` then holds the merged full weights.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.policy import PolicyObservation
from agentgym.provenance import entries_from_records, write_model_provenance
from agentgym.records import EpisodeRecord, iter_episodes
from agentgym.trainers.checkpoint import CheckpointManager, ResumableSampler
from agentgym.trainers.config import (ConfigError, SFTConfig, config_from_args, configure_determinism, help_lines,
                                      save_config)
from agentgym.trainers.lora import LoraSettings, apply_lora, save_model, trainable_parameters
from agentgym.trainers.metrics import MetricsLogger

Messages = Sequence[Mapping[str, Any]]


# --- rendering: an episode as the token policy would have seen and produced it ----------------------------

def _template(tokenizer: Any, messages: Messages, tools: Sequence[Mapping[str, Any]] | None, gen: bool) -> str:
    return tokenizer.apply_chat_template([dict(m) for m in messages], tools=list(tools) if tools else None,
                                         add_generation_prompt=gen, tokenize=False)


def render_action_ids(tokenizer: Any, history: Messages, action: Mapping[str, Any],
                      tools: Sequence[Mapping[str, Any]] | None) -> list[int]:
    """The tokens the model generates for `action` after `history`: the template's assistant body through <|im_end|>."""
    prompt = _template(tokenizer, history, tools, True)
    full = _template(tokenizer, [*history, action], tools, False)
    if not full.startswith(prompt):
        raise ValueError("the chat template does not render the assistant turn as a continuation of the prompt")
    body = full[len(prompt):]
    eos = tokenizer.eos_token
    end = body.find(eos) if eos else -1
    if end < 0:
        raise ValueError(f"the chat template does not end an assistant turn with the eos token {eos!r}")
    return list(tokenizer.encode(body[:end + len(eos)], add_special_tokens=False))


def prompt_builder(tokenizer: Any) -> Any:
    """The token policy itself (never used for HTTP here): its ``build_prompt`` is the rollout-time rendering."""
    from agentgym.policies.token_policy import TokenPolicy

    return TokenPolicy(tokenizer.name_or_path or "model", base_urls="http://127.0.0.1:9/v1", tokenizer=tokenizer,
                       max_model_len=1 << 30)


@dataclass
class TokenizedEpisode:
    """One episode as a single sequence: ``input_ids`` and ``loss_mask`` (1 exactly at the model's own tokens)."""

    input_ids: list[int]
    loss_mask: list[int]
    episode_id: str = ""
    task_id: str = ""

    @property
    def num_target_tokens(self) -> int:
        return sum(self.loss_mask)


def recorded_tokens(record: EpisodeRecord) -> TokenizedEpisode | None:
    """The exact ids of a chained token-policy episode (last turn's prompt + action, spans as mask), else None."""
    if not record.turns:
        return None
    last = record.turns[-1]
    if last.prompt_token_ids is None or last.token_ids is None or not last.loss_mask_spans:
        return None
    if len(last.loss_mask_spans) != len(record.turns):  # not chained: each turn is its own sequence
        return None
    ids = list(last.prompt_token_ids) + list(last.token_ids)
    mask = [0] * len(ids)
    for start, end in last.loss_mask_spans:
        mask[start:end] = [1] * (end - start)
    return TokenizedEpisode(ids, mask, record.episode_id, record.task_id)


def tokenize_episode(record: EpisodeRecord, tokenizer: Any, tools: Sequence[Mapping[str, Any]] | None, *,
                     builder: Any = None) -> TokenizedEpisode:
    """Render `record` into one token sequence with its loss mask, exactly as the token policy chains turns.

    `builder`: a ``prompt_builder(tokenizer)`` to reuse across episodes.
    """
    exact = recorded_tokens(record)
    if exact is not None:
        return exact
    policy = builder if builder is not None else prompt_builder(tokenizer)
    ids: list[int] = []
    mask: list[int] = []
    history: list[Mapping[str, Any]] = []
    for t in record.turns:
        history += list(t.observation if t.turn > 0 or t.observation else record.first_observation)
        obs = PolicyObservation(messages=list(history), turn=t.turn, episode_id=record.episode_id,
                                env_id=record.env_id, task_id=record.task_id, context_token_ids=ids if ids else None)
        prompt = policy.build_prompt(obs, tools or [])
        if prompt[:len(ids)] != ids:
            raise ValueError(f"episode {record.episode_id}: the prompt of turn {t.turn} does not extend the context")
        mask += [0] * (len(prompt) - len(ids))
        action = render_action_ids(tokenizer, history, t.action, tools)
        ids = prompt + action
        mask += [1] * len(action)
        history.append(t.action)
    return TokenizedEpisode(ids, mask, record.episode_id, record.task_id)


# --- data --------------------------------------------------------------------------------------------------

def load_records(paths: Sequence[str | Path], *, only_successful: bool) -> list[EpisodeRecord]:
    """Episodes with at least one turn (and a success, if asked) from JSONL files."""
    out = []
    for p in paths:
        if not Path(p).is_file():
            raise ConfigError(f"episode file {p} does not exist")
        out += [r for r in iter_episodes(p) if r.turns and (r.success or not only_successful)]
    return out


def split_by_task(records: Sequence[EpisodeRecord], dev_fraction: float, seed: int) -> tuple[list, list]:
    """Hold out whole tasks (seeded hash order) so dev loss measures tasks the model never imitated."""
    tasks = sorted({r.task_id for r in records}, key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).hexdigest())
    n_dev = min(len(tasks) - 1, max(1 if dev_fraction > 0 else 0, round(dev_fraction * len(tasks))))
    dev_tasks = set(tasks[:max(n_dev, 0)])
    return [r for r in records if r.task_id not in dev_tasks], [r for r in records if r.task_id in dev_tasks]


def tools_for_env(env_id: str) -> list[dict[str, Any]]:
    """The tool schemas an env offers its policy (what the system turn lists at rollout time)."""
    import agentgym

    env = agentgym.make(env_id)
    try:
        return [dict(t) for t in env.tools]
    finally:
        env.close()


def collate(episodes: Sequence[TokenizedEpisode], pad_id: int, max_len: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and float ``loss_mask`` tensors (cut at `max_len`)."""
    import torch

    length = min(max_len, max(len(e.input_ids) for e in episodes))
    ids = torch.full((len(episodes), length), pad_id, dtype=torch.long)
    att = torch.zeros((len(episodes), length), dtype=torch.long)
    mask = torch.zeros((len(episodes), length), dtype=torch.float32)
    for i, e in enumerate(episodes):
        n = min(length, len(e.input_ids))
        ids[i, :n] = torch.tensor(e.input_ids[:n])
        att[i, :n] = 1
        mask[i, :n] = torch.tensor(e.loss_mask[:n], dtype=torch.float32)
    mask[:, 0] = 0.0  # nothing predicts the first token
    return {"input_ids": ids, "attention_mask": att, "loss_mask": mask}


def nll_sum(model: Any, batch: Mapping[str, Any]) -> Any:
    """Σ over action tokens of −log p(token | prefix): divide by the batch's token count for the token mean."""
    from agentgym.trainers.logprobs import token_logprobs

    logp = token_logprobs(model, batch["input_ids"].to(model.device), batch["attention_mask"].to(model.device))
    return -(logp * batch["loss_mask"].to(logp.device)).sum()


def dev_loss(model: Any, episodes: Sequence[TokenizedEpisode], pad_id: int, cfg: SFTConfig) -> float | None:
    """Token-mean NLL of the action tokens of held-out episodes (no gradient)."""
    import torch

    if not episodes:
        return None
    total, count = 0.0, 0.0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(episodes), cfg.micro_batch_size):
            batch = collate(episodes[i:i + cfg.micro_batch_size], pad_id, cfg.max_seq_len)
            total += float(nll_sum(model, batch))
            count += float(batch["loss_mask"].sum())
    model.train(was_training)
    return total / max(count, 1.0)


def accumulate_gradients(model: Any, episodes: Sequence[TokenizedEpisode], pad_id: int, cfg: SFTConfig) -> tuple[float, float]:
    """Backward the batch's token-mean NLL in micro-batches; returns (loss, target tokens).

    Each micro-batch's NLL sum is divided by the token count of the WHOLE batch, so the accumulated
    gradient equals the full batch's gradient whatever ``micro_batch_size`` is (verl's invariance).
    """
    micro = [collate(episodes[i:i + cfg.micro_batch_size], pad_id, cfg.max_seq_len)
             for i in range(0, len(episodes), cfg.micro_batch_size)]
    n_tokens = sum(float(b["loss_mask"].sum()) for b in micro)
    total = 0.0
    for batch in micro:
        loss = nll_sum(model, batch) / max(n_tokens, 1.0)
        loss.backward()
        total += float(loss.detach())
    return total, n_tokens


# --- the loop ----------------------------------------------------------------------------------------------

def lr_factor(step: int, cfg: SFTConfig) -> float:
    """Multiplier of the peak LR after `step` optimizer steps: linear warm-up, then constant / linear / cosine."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    if cfg.lr_schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class SFTResult:
    """Where the run ended: step, last train loss, dev loss and the exported model directory."""

    run_dir: Path
    step: int
    train_loss: float | None
    dev_loss: float | None
    model_dir: Path
    resumed_from: int


def train_sft(cfg: SFTConfig, *, tools: Sequence[Mapping[str, Any]] | None = None,
              train_records: Sequence[EpisodeRecord] | None = None,
              dev_records: Sequence[EpisodeRecord] | None = None) -> SFTResult:
    """Behaviour cloning with gradient accumulation, dev loss, checkpoints and exact resume; returns the result."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg.validate()
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    deterministic_before = configure_determinism(cfg)

    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if tools is None:
        tools = tools_for_env(cfg.env_id)
    if train_records is None:
        records = load_records(cfg.train_data, only_successful=cfg.only_successful)
        if cfg.dev_data:
            train_records, dev_records = records, load_records(cfg.dev_data, only_successful=cfg.only_successful)
        else:
            train_records, dev_records = split_by_task(records, cfg.dev_fraction, cfg.seed)
    if not train_records:
        raise ConfigError(f"no training episodes in {cfg.train_data} (only_successful={cfg.only_successful})")
    builder = prompt_builder(tokenizer)
    train = [tokenize_episode(r, tokenizer, tools, builder=builder) for r in train_records]
    dev = [tokenize_episode(r, tokenizer, tools, builder=builder) for r in dev_records or []]

    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=getattr(torch, cfg.dtype)).to(cfg.device)
    lora_settings = LoraSettings.from_config(cfg)
    if lora_settings.enabled:  # frozen base + rank-r adapters: the optimizer sees only the adapters
        model = apply_lora(model, lora_settings)
    model.train()
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    sampler = ResumableSampler(len(train), cfg.batch_size, seed=cfg.seed, shuffle=cfg.shuffle)
    ckpt = CheckpointManager(run_dir, cfg.checkpoint_every, cfg.keep_checkpoints)

    start = 0
    if cfg.resume:
        restored = ckpt.restore(model, optimizer, scheduler)
        if restored is not None:
            start = restored.step
            sampler.load_state_dict(restored.sampler_state or {})
    metrics = MetricsLogger(run_dir, resume_step=start, tensorboard=cfg.tensorboard)

    loss_value: float | None = None
    dev_value: float | None = None
    try:
        for step in range(start + 1, cfg.steps + 1):
            t0 = time.perf_counter()
            indices = sampler.next_batch()
            episodes = [train[i] for i in indices]
            optimizer.zero_grad(set_to_none=True)
            total, n_tokens = accumulate_gradients(model, episodes, pad_id, cfg)
            grad_norm = (torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                         if cfg.max_grad_norm > 0 else None)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            loss_value = total
            row: dict[str, Any] = {"loss": total, "lr": lr, "tokens": n_tokens,
                                   "seq_tokens": sum(min(len(e.input_ids), cfg.max_seq_len) for e in episodes),
                                   "epoch": sampler.epoch,
                                   "batch": indices, "step_time_s": time.perf_counter() - t0}
            if grad_norm is not None:
                row["grad_norm"] = float(grad_norm)
            if step == cfg.steps or (cfg.eval_every and step % cfg.eval_every == 0):
                dev_value = dev_loss(model, dev, pad_id, cfg)
                if dev_value is not None:
                    row["dev/loss"] = dev_value
            metrics.log(step, row)
            if ckpt.due(step, last_step=cfg.steps):
                ckpt.save(step, model, optimizer, scheduler, sampler_state=sampler.state_dict(), tokenizer=tokenizer)
    finally:
        metrics.close()
        torch.use_deterministic_algorithms(deterministic_before)  # leave the process as we found it
    final_dir = save_model(model, run_dir / "final", tokenizer)  # plain weights (LoRA merged into a copy)
    # dev records are only scored, never trained on, but a model tuned against them has seen them too
    write_model_provenance(final_dir, entries_from_records([*train_records, *(dev_records or [])], trainer="sft"),
                           base_model=cfg.model)
    return SFTResult(run_dir, cfg.steps, loss_value, dev_value, final_dir, start)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m agentgym.trainers.sft [--config FILE.yaml] [--key value ...]`` (flags win over the file)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print("agentgym SFT warm-up. Options (also as YAML keys in --config FILE):")
        print("\n".join("  " + line for line in help_lines(SFTConfig)))
        return 0
    try:
        cfg = config_from_args(SFTConfig, argv)
        result = train_sft(cfg)  # type: ignore[arg-type]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from agentgym.trainers.train_report import write_train_report

    report = write_train_report(result.run_dir)
    resumed = f" (resumed from step {result.resumed_from})" if result.resumed_from else ""
    print(f"SFT done: step {result.step}{resumed}, train loss {result.train_loss}, dev loss {result.dev_loss}, "
          f"model {result.model_dir}, report {report}")
    return 0


__all__ = ["SFTResult", "TokenizedEpisode", "accumulate_gradients", "collate", "dev_loss", "load_records", "lr_factor",
           "main", "nll_sum", "prompt_builder", "recorded_tokens", "render_action_ids", "split_by_task",
           "tokenize_episode", "tools_for_env", "train_sft"]

if __name__ == "__main__":
    sys.exit(main())
