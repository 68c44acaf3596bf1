"""SFT and checkpoint costs: tokens/s of SFT on oracle SQL episodes, checkpoint save/restore time, resume overhead.

Usage: ``python bench/sft_checkpoint.py [--hidden 256 --layers 4 --steps 8 --episodes 8]`` (tiny Llama from
``build_tiny_model``, CPU, fp32). Writes bench/results/sft_checkpoint.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from _common import write_results  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--micro-batch-size", type=int, default=2)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    import agentgym
    from agentgym.policies.tiny_model import build_tiny_model
    from agentgym.policy import make_policy
    from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs
    from agentgym.trainers.checkpoint import CheckpointManager
    from agentgym.trainers.config import SFTConfig
    from agentgym.trainers.metrics import read_metrics
    from agentgym.trainers.sft import train_sft

    tasks = [t.id for t in agentgym.suite("agentgym/sql-v0").tasks("train")][:args.episodes]

    async def rollouts():
        engine = RolloutEngine(lambda: agentgym.make("agentgym/sql-v0"), make_policy("oracle"), RolloutConfig())
        return await engine.run(make_jobs(tasks))
    records = asyncio.run(rollouts())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        texts = [m["content"] for r in records for m in r.first_observation]
        model_dir = build_tiny_model(root / "model", texts, hidden_size=args.hidden, num_layers=args.layers,
                                     intermediate_size=3 * args.hidden)
        cfg = SFTConfig(model=str(model_dir), train_data=["-"], run_dir=str(root / "run"), steps=args.steps,
                        batch_size=args.batch_size, micro_batch_size=args.micro_batch_size, lr=1e-3,
                        checkpoint_every=args.steps, tensorboard=False)
        t0 = time.perf_counter()
        train_sft(cfg, tools=env.tools, train_records=records, dev_records=[])
        wall = time.perf_counter() - t0
        rows = read_metrics(cfg.run_dir)
        step_s = [r["step_time_s"] for r in rows[1:]] or [rows[0]["step_time_s"]]  # the first step warms up
        tokens = statistics.mean(r["tokens"] for r in rows)
        seq_tokens = statistics.mean(r["seq_tokens"] for r in rows)
        # checkpoint save / restore of model + AdamW state + RNG + sampler
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        mgr = CheckpointManager(root / "ckpt", every=1, keep=2)
        save_s, restore_s = [], []
        for step in range(1, 6):
            t = time.perf_counter()
            path = mgr.save(step, model, opt, sampler_state={"epoch": 0, "position": step})
            save_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            mgr.restore(model, opt)
            restore_s.append(time.perf_counter() - t)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        params = sum(p.numel() for p in model.parameters())
    write_results("sft_checkpoint", {
        "model": {"hidden": args.hidden, "layers": args.layers, "parameters": params},
        "sft": {"steps": args.steps, "batch_size": args.batch_size, "micro_batch_size": args.micro_batch_size,
                "target_tokens_per_step": tokens, "median_step_s": statistics.median(step_s),
                "target_tokens_per_s": tokens / statistics.median(step_s), "wall_s_including_setup": wall,
                "sequence_tokens_per_step": seq_tokens, "sequence_tokens_per_s": seq_tokens / statistics.median(step_s)},
        "checkpoint": {"bytes": size, "median_save_s": statistics.median(save_s),
                       "median_restore_s": statistics.median(restore_s)},
        "note": "shared 2-core machine: timings are noisy; read them as orders of magnitude",
    })


if __name__ == "__main__":
    main()
