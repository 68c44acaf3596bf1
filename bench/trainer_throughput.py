"""Trainer throughput (tokens/s) of the RL policy update and of SFT steps: full fine-tuning vs LoRA, fp32 vs bf16.

Each case is a random-init Llama built from a config (no download, no tokenizer): the tiny model's shape
(hidden 256, 4 layers, as ``agentgym model tiny`` writes it) and a ~100M one (hidden 768, 12 layers). The
work is what the trainers run, on a batch of ``--batch`` sequences x ``--seq-len`` tokens whose last
``--gen-len`` tokens are "model tokens" (loss mask / sampled tokens):

- ``rl``: ``trainers.rl.policy_update`` on a ``PackedBatch`` from ``pack_episodes`` of synthetic single-turn
  ``EpisodeRecord``s (one no-grad pass for π_old, one forward/backward per micro-batch, AdamW step);
- ``sft``: ``trainers.sft.accumulate_gradients`` + clip + AdamW step, as ``train_sft``'s loop does.

tokens/s counts every token of the batch (prompt + generated) per update, from the median timed step
(``best_tokens_per_s``: the fastest one, the figure least disturbed by other load on a shared machine);
``model_tokens_per_s`` counts only the loss-mask tokens. Warm-up steps run on one row (optimizer state,
kernels) and are not timed. With CUDA (or ``--device cuda``) the cases are bf16 and the big model is ~0.5B
(hidden 1024, 24 layers); that path is not exercised on the CPU-only CI.

Run: python bench/trainer_throughput.py [--iters 2] [--big-iters 1] [--batch 8] [--seq-len 512]
  -> bench/results/trainer_throughput.json
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

import torch  # noqa: E402

from agentgym.records import EpisodeRecord, TurnRecord  # noqa: E402
from agentgym.trainers import lora  # noqa: E402
from agentgym.trainers.config import RLConfig, SFTConfig  # noqa: E402
from agentgym.trainers.packing import pack_episodes  # noqa: E402
from agentgym.trainers.rl import policy_update  # noqa: E402
from agentgym.trainers.sft import TokenizedEpisode, accumulate_gradients  # noqa: E402

SHAPES = {  # LlamaConfig kwargs
    "tiny": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=768, vocab_size=4096),
    "100m": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                 intermediate_size=2048, vocab_size=32000),
    "0.5b": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=8,
                 intermediate_size=2816, vocab_size=151936),
}
PAD = 0


@dataclass(frozen=True)
class Case:
    shape: str
    dtype: str
    lora_rank: int
    iters: int
    warmup: int
    batch: int

    @property
    def name(self) -> str:
        return f"{self.shape} {'lora r' + str(self.lora_rank) if self.lora_rank else 'full'} {self.dtype}"


def build_model(shape: str, dtype: str, device: str, lora_rank: int) -> Any:
    import transformers

    config = transformers.LlamaConfig(**SHAPES[shape], max_position_embeddings=4096, tie_word_embeddings=True,
                                      pad_token_id=PAD, bos_token_id=None, eos_token_id=1)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).to(device=device, dtype=getattr(torch, dtype))
    if lora_rank:
        model = lora.apply_lora(model, lora.LoraSettings(rank=lora_rank))
    return model


def synthetic_rows(n: int, seq_len: int, vocab: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, vocab, (n, seq_len), generator=g).tolist()


def rl_batch(rows: list[list[int]], gen_len: int):
    """Single-turn records (prompt + `gen_len` sampled tokens with log-probs), packed as the RL loop packs them."""
    records = []
    for i, ids in enumerate(rows):
        turn = TurnRecord(turn=0, observation=[], action={}, action_text="", reward=float(i % 2),
                          prompt_token_ids=ids[:-gen_len], token_ids=ids[-gen_len:], logprobs=[-2.0] * gen_len)
        records.append(EpisodeRecord(episode_id=f"e{i}", env_id="bench", task_id=f"t{i // 2}", split="train",
                                     seed=i, turns=[turn], reward=float(i % 2), success=bool(i % 2)))
    advantages = [[1.0 if i % 2 else -1.0] for i in range(len(rows))]
    return pack_episodes(records, advantages, PAD)


def sft_episodes(rows: list[list[int]], gen_len: int) -> list[TokenizedEpisode]:
    return [TokenizedEpisode(ids, [0] * (len(ids) - gen_len) + [1] * gen_len) for ids in rows]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_case(case: Case, args: argparse.Namespace, device: str) -> dict[str, Any]:
    model = build_model(case.shape, case.dtype, device, case.lora_rank)
    model.train()
    params = lora.trainable_parameters(model)
    n_params = sum(p.numel() for p in model.parameters())
    rows = synthetic_rows(case.batch, args.seq_len, SHAPES[case.shape]["vocab_size"])
    batch = rl_batch(rows, args.gen_len)
    episodes = sft_episodes(rows, args.gen_len)
    rl_cfg = RLConfig(model="bench", micro_batch_size=args.micro_batch, ppo_epochs=1, lr=1e-5)
    sft_cfg = SFTConfig(model="bench", train_data=["bench"], batch_size=case.batch, micro_batch_size=args.micro_batch,
                        max_seq_len=args.seq_len)
    out: dict[str, Any] = {"case": case.name, "shape": case.shape, "dtype": case.dtype, "lora_rank": case.lora_rank,
                           "batch": case.batch, "seq_len": args.seq_len,
                           "params": n_params, "trainable_params": sum(p.numel() for p in params)}
    warm_batch, warm_episodes = batch.select([0]), episodes[:1]
    for kind in ("rl", "sft"):
        optimizer = torch.optim.AdamW(params, lr=1e-5)

        def step(warm: bool = False) -> None:
            if kind == "rl":
                policy_update(model, optimizer, warm_batch if warm else batch, rl_cfg)
            else:
                optimizer.zero_grad(set_to_none=True)
                accumulate_gradients(model, warm_episodes if warm else episodes, PAD, sft_cfg)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()

        for _ in range(case.warmup):  # one row: allocates the optimizer state and warms the kernels, cheaply
            step(warm=True)
        sync(device)
        times = []
        for _ in range(case.iters):
            t0 = time.perf_counter()
            step()
            sync(device)
            times.append(time.perf_counter() - t0)
        median, best = statistics.median(times), min(times)
        tokens = case.batch * args.seq_len
        out[kind] = {"step_s": round(median, 3), "tokens_per_s": round(tokens / median, 1),
                     "best_step_s": round(best, 3), "best_tokens_per_s": round(tokens / best, 1),
                     "model_tokens_per_s": round(case.batch * args.gen_len / median, 1),
                     "iters": case.iters, "warmup": case.warmup, "step_s_each": [round(t, 3) for t in times]}
        print(f"  {case.name:24s} {kind:3s} {median:8.2f} s/step (median) {tokens / median:10.1f} tok/s, "
              f"best {tokens / best:10.1f} tok/s", flush=True)
        del optimizer
    del model, params
    gc.collect()
    if device.startswith("cuda"):
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.empty_cache()
    return out


def cases(args: argparse.Namespace, gpu: bool) -> list[Case]:
    small = dict(iters=args.iters, warmup=args.warmup, batch=args.batch)
    big = dict(iters=args.big_iters, warmup=args.big_warmup, batch=args.big_batch or args.batch)
    if gpu:  # bf16 everywhere; the big model is ~0.5B
        return [Case("tiny", "bfloat16", 0, **small), Case("tiny", "bfloat16", 8, **small),
                Case("0.5b", "bfloat16", 0, **big), Case("0.5b", "bfloat16", 8, **big)]
    return [Case("tiny", "float32", 0, **small), Case("tiny", "float32", 8, **small),
            Case("tiny", "bfloat16", 0, **small),
            Case("100m", "float32", 0, **big), Case("100m", "float32", 8, **big)]


def table(results: list[dict[str, Any]]) -> str:
    """Median tokens/s (best of the timed steps in parentheses) and median seconds per update."""
    head = (f"{'case':22s} {'batch':>7s} {'params':>7s} {'trainable':>9s} {'RL tok/s (best)':>18s} "
            f"{'SFT tok/s (best)':>18s} {'RL s/step':>9s} {'SFT s/step':>10s}")
    lines = [head, "-" * len(head)]
    for r in results:
        rl, sft = r["rl"], r["sft"]
        lines.append(f"{r['case']:22s} {r['batch']:>3d}x{r['seq_len']:<3d} {r['params'] / 1e6:6.1f}M "
                     f"{r['trainable_params'] / 1e6:8.2f}M {rl['tokens_per_s']:9.1f} ({rl['best_tokens_per_s']:6.1f}) "
                     f"{sft['tokens_per_s']:9.1f} ({sft['best_tokens_per_s']:6.1f}) "
                     f"{rl['step_s']:9.2f} {sft['step_s']:10.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda")
    parser.add_argument("--batch", type=int, default=8, help="sequences per update")
    parser.add_argument("--seq-len", type=int, default=512, help="tokens per sequence")
    parser.add_argument("--gen-len", type=int, default=128, help="model tokens at the end of each sequence")
    parser.add_argument("--micro-batch", type=int, default=4, help="rows per forward/backward")
    parser.add_argument("--warmup", type=int, default=1, help="untimed one-row steps per case and kind")
    parser.add_argument("--iters", type=int, default=3, help="timed steps of the tiny-model cases")
    parser.add_argument("--big-iters", type=int, default=1, help="timed steps of the big-model cases")
    parser.add_argument("--big-warmup", type=int, default=1, help="untimed one-row steps of the big-model cases")
    parser.add_argument("--big-batch", type=int, default=0, help="sequences per update of the big model (0: --batch)")
    parser.add_argument("--only", default="", help="comma-separated shapes to run (tiny, 100m, 0.5b)")
    args = parser.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    gpu = device.startswith("cuda")
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
    todo = [c for c in cases(args, gpu) if not args.only or c.shape in args.only.split(",")]
    load_before = os.getloadavg()
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load {load_before[0]:.2f}; batch {args.batch} x {args.seq_len} tokens", flush=True)
    if gpu:
        print(f"GPU {torch.cuda.get_device_name(0)}", flush=True)
    t0 = time.perf_counter()
    results = [run_case(c, args, device) for c in todo]
    print(table(results))
    import peft
    import transformers

    facts = {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
             "transformers": transformers.__version__, "peft": peft.__version__, "device": device,
             "gpu": torch.cuda.get_device_name(0) if gpu else None,
             "load_average_before": [round(x, 2) for x in load_before],
             "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    write_results("trainer_throughput", {
        "setup": {"batch": args.batch, "big_batch": args.big_batch or args.batch, "seq_len": args.seq_len,
                  "gen_len": args.gen_len, "micro_batch": args.micro_batch, "shapes": {k: SHAPES[k] for k in
                                                                                    {c.shape for c in todo}}},
        "facts": facts, "wall_s": round(time.perf_counter() - t0, 1), "results": results, "table": table(results)})


if __name__ == "__main__":
    main()
