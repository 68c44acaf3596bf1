"""Shared pieces of the search experiments (1-3): env access, Wilson rates, and the tiny SFT'd model behind HFServer.

The experiments' ``--policy model`` path: ``sft_tiny_model`` builds a tiny model whose tokenizer is trained on the
env's texts and clones the oracle's train-split episodes for a few steps (a weak-but-nonzero policy);
``served`` starts the built-in server and yields a sampling TokenPolicy (temperature 1) and a greedy one.
``env_factory`` and ``split_tasks`` give the experiments one way to reach the env kinds they run on; ``rate``
reports a success count with its Wilson 95% interval. ``add_policy_arguments`` (or ``add_model_arguments``) gives
them one command line, and ``run_section`` one results file that keeps a section per (policy, env) run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from _common import RESULTS, write_results  # noqa: E402

import agentgym  # noqa: E402
from agentgym.policy import make_policy  # noqa: E402
from agentgym.records import EpisodeRecord  # noqa: E402
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs  # noqa: E402
from agentgym.stats import wilson_interval  # noqa: E402

ENV_IDS = {"sql": "agentgym/sql-v0", "search": "agentgym/search-v0", "corridor": "agentgym/corridor-v0"}


def rate(successes: int, n: int) -> dict[str, Any]:
    """A success rate with its Wilson 95% interval."""
    lo, hi = wilson_interval(successes, n)
    return {"successes": successes, "n": n, "rate": successes / n if n else math.nan, "ci95": [lo, hi]}


def env_factory(kind: str, split: str, **options: Any) -> Callable[[], Any]:
    """A zero-argument constructor of the env `kind` (sql | search | corridor) on `split`."""
    env_id = ENV_IDS[kind]
    return lambda: agentgym.make(env_id, split=split, **options)


async def split_tasks(kind: str, split: str, n: int, **options: Any) -> list[str]:
    """The first `n` task ids of a split."""
    return [t.id for t in (await agentgym.asuite(ENV_IDS[kind], split=split, **options)).tasks(split)[:n]]


async def oracle_records(kind: str, tasks: list[str], **options: Any) -> list[EpisodeRecord]:
    """Oracle episodes on train-split tasks (behaviour-cloning data)."""
    return await RolloutEngine(env_factory(kind, "train", **options), make_policy("oracle"),
                               RolloutConfig(concurrency=4)).run(make_jobs(tasks))


def sft_tiny_model(root: Path, kind: str, records: list[EpisodeRecord], tools: list[dict], *, hidden: int = 128,
                   layers: int = 2, steps: int = 30, lr: float = 1e-3, batch_size: int = 8, seed: int = 0,
                   max_position_embeddings: int = 2048) -> Path:
    """Build a tiny model with a tokenizer trained on the episodes' texts, clone the episodes; returns its dir."""
    from agentgym.policies.tiny_model import build_tiny_model
    from agentgym.trainers.config import SFTConfig
    from agentgym.trainers.sft import train_sft

    final = root / "sft" / "final"
    if (final / "config.json").exists():
        return final
    texts = [json.dumps(tools)]
    for r in records:
        texts += [str(m.get("content") or "") for m in r.first_observation]
        texts += [t.action_text or json.dumps(t.action.get("tool_calls")) for t in r.turns]
        texts += [str(m.get("content") or "") for t in r.turns for m in t.observation]
    base = build_tiny_model(root / "base", texts, hidden_size=hidden, num_layers=layers, num_heads=4,
                            num_kv_heads=2, intermediate_size=3 * hidden, seed=seed,
                            max_position_embeddings=max_position_embeddings)
    cfg = SFTConfig(model=str(base), train_data=["-"], run_dir=str(root / "sft"), env_id=ENV_IDS[kind],
                    steps=steps, batch_size=batch_size, micro_batch_size=batch_size, lr=lr, seed=seed,
                    checkpoint_every=steps, tensorboard=False)
    return train_sft(cfg, tools=tools, train_records=records, dev_records=[]).model_dir


@dataclass
class Served:
    """A running server and the two policies the experiments use on it."""

    server: Any
    sample: Any     # TokenPolicy, temperature 1
    greedy: Any     # TokenPolicy, temperature 0


@asynccontextmanager
async def served(model_dir: Path, *, max_model_len: int, max_tokens: int,
                 temperature: float = 1.0) -> AsyncIterator[Served]:
    """Serve `model_dir` with HFServer; yield the sampling and greedy TokenPolicies; stop everything on exit."""
    from agentgym.policies.hf_server import HFServer
    from agentgym.policies.token_policy import TokenPolicy

    async with HFServer(model_dir, max_model_len=max_model_len) as server:
        kwargs = {"model": server.model_name, "max_tokens": max_tokens, "max_model_len": max_model_len,
                  "version_source": lambda: server.version}
        async with TokenPolicy(model_dir, server.base_url, temperature=temperature, **kwargs) as sample, \
                TokenPolicy(model_dir, server.base_url, temperature=0.0, tokenizer=sample.tokenizer,
                            **kwargs) as greedy:
            yield Served(server, sample, greedy)


def experiment_parser(doc: str) -> argparse.ArgumentParser:
    """A command-line parser whose help is the experiment's whole docstring (what it measures and how)."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def save_figure(fig: Any, path: Path) -> None:
    """Lay a matplotlib figure out, write it at 120 dpi and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_model_arguments(ap: Any, *, env: str = "sql", env_help: str = "which env", max_tokens: int = 48,
                        max_model_len: int = 2048) -> None:
    """The tiny model's command-line options: the env it acts in, its size, its SFT, its serving limits, a work dir."""
    ap.add_argument("--env", default=env, choices=sorted(ENV_IDS), help=env_help)
    ap.add_argument("--horizon", type=int, default=2, help="corridor rooms")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--sft-episodes", type=int, default=64, help="oracle train episodes to clone")
    ap.add_argument("--sft-steps", type=int, default=60)
    ap.add_argument("--sft-lr", type=float, default=3e-3)
    ap.add_argument("--max-tokens", type=int, default=max_tokens)
    ap.add_argument("--max-model-len", type=int, default=max_model_len)
    ap.add_argument("--work", default=None, help="work dir (reused: an SFT model already there is not retrained)")


def add_policy_arguments(ap: Any) -> None:
    """The command-line options every search/critic bench shares: which policy and env, and the tiny model's SFT."""
    ap.add_argument("--policy", default="scripted", choices=["scripted", "model"],
                    help="scripted SQL stand-in, or the tiny SFT'd model behind HFServer + TokenPolicy")
    add_model_arguments(ap, env_help="--policy model: which env")


def parse_policy_arguments(ap: Any) -> Any:
    """Parse ``add_policy_arguments``' options; the scripted policy is a stand-in for SQL only."""
    args = ap.parse_args()
    if args.policy == "scripted" and args.env != "sql":
        ap.error("the scripted policy exists for sql only; use --policy model for other envs")
    return args


def load_sections(name: str) -> dict[str, Any]:
    """Sections of earlier runs in bench/results/<name>.json; a file from before sections is the 'scripted/sql' one."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    if "sections" in old:
        return old["sections"]
    return {"scripted/sql": {k: v for k, v in old.items() if k not in ("benchmark", "machine", "plot", "note")}}


def run_section(name: str, args: Any, run_scripted: Callable[[Any], Any], run_model: Callable[[Any], Any],
                plot: Callable[[dict[str, Any], Path], None], note: str) -> None:
    """Run the (policy, env) section `args` picks, keep the file's other sections, redraw them all and write."""
    section = asyncio.run(run_scripted(args) if args.policy == "scripted" else run_model(args))
    sections = {**load_sections(name), f"{args.policy}/{args.env}": section}
    plot(sections, RESULTS / f"{name}.png")
    write_results(name, {"sections": sections, "plot": f"bench/results/{name}.png", "note": note})


@dataclass
class PreparedModel:
    """The tiny model a bench acts with: SFT'd on oracle train episodes (or reused from ``--work``)."""

    opts: dict[str, Any]      # env options (the corridor's horizon)
    model_dir: Path
    sft_seconds: float
    sft_reused: bool
    sft_episodes: int         # oracle episodes it was fine-tuned on


async def prepare_model(args: Any, name: str) -> PreparedModel:
    """Record oracle train episodes and SFT a tiny model on them, as ``add_policy_arguments`` configures."""
    import tempfile
    import time

    opts = {"horizon": args.horizon} if args.env == "corridor" else {}
    work = Path(args.work or tempfile.mkdtemp(prefix=f"{name}-"))
    tools = list(env_factory(args.env, "train", **opts)().tools)
    reused = (work / "model" / "sft" / "final" / "config.json").exists()  # --work with a trained model
    t0 = time.perf_counter()
    records = await oracle_records(args.env, await split_tasks(args.env, "train", args.sft_episodes, **opts), **opts)
    model_dir = await asyncio.to_thread(sft_tiny_model, work / "model", args.env, records, tools, hidden=args.hidden,
                                        layers=args.layers, steps=args.sft_steps, lr=args.sft_lr)
    return PreparedModel(opts, model_dir, time.perf_counter() - t0, reused, len(records))
