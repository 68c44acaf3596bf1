"""Experiment (issue 7, #2): held-out SQL success of the tiny model after SFT only vs SFT + RL, at an equal
RL episode budget for GRPO (trajectory level) and GiGPO (turn level), all from the same SFT checkpoint.

Runs the same commands a user would (``agentgym train``, ``agentgym bench``, ``agentgym compare``) and
reuses what ``make demo`` already built in runs/demo (the tiny model, oracle data, SFT checkpoint and the
GiGPO run); each stage is skipped when its output exists.

    .venv/bin/python bench/sql_sft_vs_rl.py [--episodes 64] [--bench-episodes 40]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AGENTGYM = str(Path(sys.executable).with_name("agentgym"))
SHAPING = "invalid_action=-0.1,tool_error=-0.05,syntax_ok=0.1,schema_jaccard=0.2"  # as in `make demo`


def agentgym(*args: str) -> float:
    """Run one agentgym command (output streamed); returns its wall seconds."""
    started = time.perf_counter()
    subprocess.run([AGENTGYM, *args], cwd=ROOT, check=True)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", default="runs/demo", help="the make-demo run dir (tiny model, SFT, GiGPO run)")
    ap.add_argument("--out", default="runs/sql_sft_vs_rl")
    ap.add_argument("--episodes", type=int, default=192, help="RL episode budget per algorithm")
    ap.add_argument("--bench-episodes", type=int, default=110, help="held-out test tasks (iid axis)")
    a = ap.parse_args()
    demo, out = ROOT / a.demo, ROOT / a.out
    seconds: dict[str, float] = {}
    common_rl = ["--episodes", str(a.episodes), "--tasks-per-step", "4", "--group-size", "4", "--lr", "3e-5",
                 "--max-tokens", "96", "--reward-shaping", SHAPING, "--dev-episodes", "0"]
    # the SFT checkpoint (and the GiGPO run) of `make demo`; built here with the same flags when missing
    seconds["sft+gigpo"] = agentgym("train", "agentgym/sql-v0", "--model", "tiny", "--tiny-hidden", "128",
                                    "--tiny-layers", "2", "--out", str(demo), "--sft", "oracle", "--sft-episodes",
                                    "800", "--sft-steps", "450", "--sft-lr", "2e-3", "--algo", "gigpo", *common_rl)
    sft = demo / "sft" / "final"
    seconds["grpo"] = agentgym("train", "agentgym/sql-v0", "--model", str(sft), "--sft", "none",
                               "--out", str(out / "grpo"), "--algo", "grpo", *common_rl)
    checkpoints = {"sft": sft, "sft+grpo": out / "grpo" / "rl" / "final", "sft+gigpo": demo / "rl" / "final"}
    bench = ["--split", "test", "--axis", "iid", "--episodes", str(a.bench_episodes), "--max-tokens", "96",
             "--max-model-len", "4096", "--no-progress", "--resume"]
    for name, ckpt in checkpoints.items():
        seconds[f"bench {name}"] = agentgym("bench", "agentgym/sql-v0", "--policy", "hf", "--model", str(ckpt),
                                            *bench, "--out", str(out / f"bench-{name}"))
    labels = list(checkpoints)
    agentgym("compare", *[str(out / f"bench-{n}") for n in labels], *sum((["--label", n] for n in labels), []),
             "--out", str(out))
    comparison = json.loads((out / "compare.json").read_text())
    write_results("sql_sft_vs_rl", {
        "env": "agentgym/sql-v0", "split": "test (iid axis)", "tasks": a.bench_episodes,
        "model": "tiny Llama hidden 128, 2 layers, tokenizer trained on the SQL env's texts",
        "sft": "450 steps x 8 oracle train episodes (800 recorded), lr 2e-3",
        "rl": {"episodes": a.episodes, "tasks_per_step": 4, "group_size": 4, "lr": 3e-5, "shaping": SHAPING},
        "runs": comparison["runs"], "seconds": seconds})


if __name__ == "__main__":
    main()
