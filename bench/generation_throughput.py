"""Generation throughput of the tiny model: a naive ``model.generate`` loop vs the built-in server vs vLLM.

Generated tokens per second at concurrency 1, 16 and 64 (every request: a distinct 32-token prompt given as
token ids, greedy, ``ignore_eos`` so each produces exactly ``--max-tokens`` tokens), side by side in one run,
with ratios to the naive loop (one request at a time through ``model.generate``). The vLLM column runs when
``agentgym.policies.vllm_server`` imports and its virtualenv exists; otherwise it says why it was skipped.

Run: python bench/generation_throughput.py [--max-tokens 32] [--device cpu]
  -> bench/results/generation_throughput.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

import httpx  # noqa: E402
import torch  # noqa: E402

from agentgym.policies.hf_server import HFServer  # noqa: E402
from agentgym.policies.server import ManagedServer  # noqa: E402
from agentgym.policies.tiny_model import cached_tiny_model  # noqa: E402

CONCURRENCY = (1, 16, 64)


def prompts(n: int, length: int, vocab: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(10, vocab) for _ in range(length)] for _ in range(n)]


def naive_loop(model_dir: Path, work: list[list[int]], max_tokens: int, device: str) -> dict[str, float]:
    """One request at a time through ``model.generate`` (what a quick script does)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    model.generate(torch.tensor([work[0]], device=device), max_new_tokens=4, do_sample=False)  # warm-up
    tokens, t0 = 0, time.perf_counter()
    with torch.inference_mode():
        for ids in work:
            out = model.generate(torch.tensor([ids], device=device), max_new_tokens=max_tokens, min_new_tokens=max_tokens,
                                 do_sample=False)
            tokens += out.shape[1] - len(ids)
    wall = time.perf_counter() - t0
    return {"requests": len(work), "tokens": tokens, "wall_s": round(wall, 3), "tokens_per_s": round(tokens / wall, 1)}


async def server_run(server: ManagedServer, work: list[list[int]], concurrency: int, max_tokens: int) -> dict:
    """`len(work)` requests, at most `concurrency` in flight; generated tokens per second."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=600,
                                 limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        async def one(ids: list[int]) -> int:
            async with gate:
                r = await client.post("/completions", json={
                    "model": server.model_name, "prompt": ids, "max_tokens": max_tokens, "temperature": 0,
                    "ignore_eos": True, "return_token_ids": True})
                r.raise_for_status()
                return len(r.json()["choices"][0]["token_ids"])

        await one(work[0])  # warm-up
        t0 = time.perf_counter()
        tokens = sum(await asyncio.gather(*[one(ids) for ids in work]))
        wall = time.perf_counter() - t0
    return {"requests": len(work), "tokens": tokens, "wall_s": round(wall, 3), "tokens_per_s": round(tokens / wall, 1)}


async def measure(server: ManagedServer, work_for: dict[int, list[list[int]]], max_tokens: int) -> dict[str, Any]:
    async with server:
        out = {}
        for c, work in work_for.items():
            out[str(c)] = await server_run(server, work, c, max_tokens)
            print(f"  {type(server).__name__} concurrency {c}: {out[str(c)]['tokens_per_s']} tok/s", flush=True)
        return out


def vllm_server(model_dir: Path) -> tuple[ManagedServer | None, str]:
    try:
        from agentgym.policies.vllm_server import VLLMServer, default_vllm_python
    except ImportError as exc:
        return None, f"agentgym.policies.vllm_server does not import ({exc})"
    python = default_vllm_python()
    if not python.exists():
        return None, f"no vLLM virtualenv at {python} (scripts/install_vllm.sh or $AGENTGYM_VLLM_PYTHON)"
    return VLLMServer(model_dir), ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--naive-requests", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-vllm", action="store_true")
    args = parser.parse_args()
    model_dir = cached_tiny_model("bench")  # the C1 default: hidden 256, 4 layers, ~3.7M parameters
    from transformers import AutoConfig

    vocab = AutoConfig.from_pretrained(model_dir).vocab_size
    # 1 x 8, 16 x 2 and 64 x 1 requests: every concurrency level generates a comparable amount of work
    work_for = {c: prompts(max(c, 8) if c == 1 else c * (2 if c < 64 else 1), args.prompt_len, vocab, seed=c)
                for c in CONCURRENCY}
    print(f"model {model_dir} (vocab {vocab}); max_tokens {args.max_tokens}; prompt {args.prompt_len} tokens")
    naive = naive_loop(model_dir, prompts(args.naive_requests, args.prompt_len, vocab, seed=99), args.max_tokens,
                       args.device)
    print(f"  naive generate loop: {naive['tokens_per_s']} tok/s", flush=True)
    results: dict[str, Any] = {"naive_generate": naive}
    results["hf_server"] = asyncio.run(measure(HFServer(model_dir, device=args.device), work_for, args.max_tokens))
    server, why = (None, "--skip-vllm") if args.skip_vllm else vllm_server(model_dir)
    if server is None:
        print(f"vllm: skipped ({why})")
        results["vllm"] = {"skipped": why}
    else:
        results["vllm"] = asyncio.run(measure(server, work_for, args.max_tokens))
    base = naive["tokens_per_s"]
    table = {}
    for name in ("hf_server", "vllm"):
        if "skipped" not in results[name]:
            table[name] = {c: round(r["tokens_per_s"] / base, 2) for c, r in results[name].items()}
    print("\nspeed-up over the naive loop (tokens/s ratio):")
    print(f"{'concurrency':>12} " + " ".join(f"{n:>10}" for n in table))
    for c in map(str, CONCURRENCY):
        print(f"{c:>12} " + " ".join(f"{table[n][c]:>10}" for n in table))
    write_results("generation_throughput", {
        "config": {"max_tokens": args.max_tokens, "prompt_len": args.prompt_len, "device": args.device,
                   "model": "tiny llama hidden 256, 4 layers, fp32", "torch_threads": torch.get_num_threads(),
                   "load_average": os.getloadavg()},
        "results": results, "speedup_vs_naive": table})


if __name__ == "__main__":
    main()
