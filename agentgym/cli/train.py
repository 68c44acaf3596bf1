"""CLI wiring for training: ``agentgym train ENV --model PATH|tiny --sft oracle --algo ALGO --episodes N``.

The pipeline a user runs from one command: (tiny model) -> oracle trajectories on the train split -> SFT
warm-up -> on-policy RL through a policy server it starts and stops -> training report. Every stage writes
into ``--out`` and is skipped when its output is already there, so an interrupted run resumes.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentgym.cli.serving import ServedPolicy, build_tiny, run_async, serve_policy

console = Console()


async def oracle_episodes(env_id: str, out: Path, episodes: int, seed: int) -> Path:
    """Oracle trajectories on the train split (never held-out tasks), written as episode records."""
    from agentgym.policy import make_policy
    from agentgym.records import EpisodeWriter, iter_episodes
    from agentgym.registry import asuite, make
    from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs

    path = out / "episodes.jsonl"
    done = {r.key for r in iter_episodes(path)} if path.exists() else set()
    tasks = (await asuite(env_id, split="train")).tasks("train")
    jobs = [j for j in make_jobs([t.id for t in tasks[:episodes]], 1, base_seed=seed) if j.key not in done]
    out.mkdir(parents=True, exist_ok=True)
    with EpisodeWriter(path) as writer:
        await RolloutEngine(lambda: make(env_id, split="train"), make_policy("oracle"),
                            RolloutConfig(concurrency=8)).run(jobs, on_record=writer.write)
    return path


async def train_tasks(env_id: str) -> list[Any]:
    """The env's train split as (id, family) pairs for the RL loop's sampler."""
    from agentgym.registry import asuite
    from agentgym.trainers.rl import TrainTask

    return [TrainTask(t.id, t.family) for t in (await asuite(env_id, split="train")).tasks("train")]


async def dev_success(env_id: str, policy: Any, episodes: int, seed: int) -> dict[str, float]:
    """Greedy success on the first `episodes` tasks of the dev split (a held-out check during training)."""
    from agentgym.registry import asuite, make
    from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs

    tasks = (await asuite(env_id, split="dev")).tasks("dev")[:episodes]
    records = await RolloutEngine(lambda: make(env_id, split="dev"), policy,
                                  RolloutConfig(concurrency=8)).run(make_jobs([t.id for t in tasks], 1, seed))
    scored = [r for r in records if r.scored]
    return {"success": sum(bool(r.success) for r in scored) / len(scored) if scored else 0.0,
            "reward": sum(r.reward or 0.0 for r in scored) / len(scored) if scored else 0.0}


def train(ctx: typer.Context,
          env_id: str = typer.Argument(..., help="environment to train on (its train split)"),
          model: str = typer.Option("tiny", help="model directory, or 'tiny' to build a tiny model in --out"),
          tiny_hidden: int = typer.Option(256, help="--model tiny: hidden size"),
          tiny_layers: int = typer.Option(4, help="--model tiny: layers"),
          sft: str = typer.Option("none", help="'oracle': SFT warm-up on oracle trajectories first; 'none'"),
          sft_episodes: int = typer.Option(200, help="oracle episodes (train split) for the warm-up"),
          sft_steps: int = typer.Option(150, help="SFT optimizer steps"),
          sft_lr: float = typer.Option(1e-3, help="SFT learning rate (1e-3 suits a tiny model; ~1e-5 a real one)"),
          episodes: int = typer.Option(128, help="RL episode budget (steps = episodes / (tasks_per_step x group_size))"),
          backend: str = typer.Option("hf", help="policy server for rollouts: hf (built-in) or vllm"),
          out: Path = typer.Option(Path("runs/train"), help="run directory"),
          dev_episodes: int = typer.Option(32, help="dev-split episodes per evaluation (0: none)"),
          workers: int = typer.Option(0, help="rollouts on N Ray worker actors (0: in this process)"),
          ray_address: Optional[str] = typer.Option(None, help="Ray cluster for --workers ('auto', "
                                                               "ray://host:10001); default: a local Ray"),
          max_model_len: int = typer.Option(4096, help="context length of the policy server"),
          records: list[Path] = typer.Option([], help="--algo qvalue: episode records to fit the critic on"),
          cql_alpha: float = typer.Option(0.0, help="--algo qvalue: weight of the conservative (CQL) term"),
          featurizer: str = typer.Option("bow", help="--algo qvalue: bow | minilm (frozen state/action features)"),
          seed: int = 0) -> None:
    """Train an agent: (tiny model) -> (SFT on oracle trajectories) -> on-policy RL -> report.

    Any RL hyper-parameter is a flag too (``--algo gigpo --group-size 8 --lr 1e-5 ...``; ``--config FILE.yaml``
    as a base layer); ``agentgym train ENV --model M --help-config`` lists them.
    """
    from agentgym.trainers.config import RLConfig, SFTConfig, build_config, help_lines, parse_flags, read_yaml

    if "--help-config" in ctx.args:
        console.print("\n".join(help_lines(RLConfig)))
        return
    out.mkdir(parents=True, exist_ok=True)
    if _flag(ctx.args, "algo") == "qvalue":  # an offline critic, not a policy update
        from agentgym.cli.search import fit_critic

        if not records:
            raise typer.BadParameter("--algo qvalue needs --records FILE (episodes.jsonl of the train split)")
        path = fit_critic(records, out / "critic", cql_alpha, featurizer)
        console.print(f"critic {path}\nact with it: agentgym bench {env_id} --policy ... --best-of-n 8 --critic {path}")
        return
    if sft not in ("oracle", "none"):
        raise typer.BadParameter("--sft is 'oracle' or 'none'")
    base = out / "base-model" if model == "tiny" else Path(model)
    policy_dir = out / "sft" / "final" if sft == "oracle" else base
    # the RL config first: a bad flag (an unknown --algo, a --credit key it does not read) fails before any stage runs
    config_path, flags = parse_flags(RLConfig, ctx.args)
    layers = ({"model": str(policy_dir), "env_id": env_id, "run_dir": str(out / "rl"), "seed": seed},
              read_yaml(config_path) if config_path else {}, flags)
    probe = build_config(RLConfig, *layers)
    per_step = probe.tasks_per_step * probe.group_size
    steps = max(1, math.ceil(episodes / per_step))
    budget = {"steps": steps, "checkpoint_every": max(1, min(probe.checkpoint_every, steps))}
    cfg = build_config(RLConfig, layers[0], budget, *layers[1:])  # YAML and flags still win over the budget

    if model == "tiny":
        build_tiny(base, [env_id], hidden_size=tiny_hidden, num_layers=tiny_layers, seed=seed)
    if sft == "oracle":
        from agentgym.trainers.sft import train_sft

        data = run_async(oracle_episodes(env_id, out / "oracle", sft_episodes, seed))
        sft_cfg = build_config(SFTConfig, {"model": str(base), "train_data": [str(data)], "run_dir": str(out / "sft"),
                                           "env_id": env_id, "steps": sft_steps, "seed": seed, "lr": sft_lr,
                                           "checkpoint_every": max(sft_steps // 3, 1)})
        if not (out / "sft" / "final" / "config.json").exists():
            console.print(f"[bold]SFT[/bold] {sft_steps} steps on {data}")
            result = train_sft(sft_cfg)  # type: ignore[arg-type]
            console.print(f"SFT done: train loss {result.train_loss}, dev loss {result.dev_loss}")

    console.print(f"[bold]RL[/bold] {cfg.algo}: {cfg.steps} steps x {per_step} episodes from {policy_dir}")
    run_async(_train_rl(cfg, backend, dev_episodes, max_model_len, workers, ray_address))  # type: ignore[arg-type]

    from agentgym.trainers.train_report import write_report

    report = write_report(out / "rl")
    console.print(f"model {out / 'rl' / 'final'}; report {report}\n"
                  f"benchmark it: agentgym bench {env_id} --policy {backend} --model {out / 'rl' / 'final'}")


def _flag(args: list[str], name: str) -> str | None:
    """The value of ``--name V`` or ``--name=V`` among pass-through flags."""
    for i, arg in enumerate(args):
        if arg == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


async def _train_rl(cfg: Any, backend: str, dev_episodes: int, max_model_len: int, workers: int = 0,
                    ray_address: str | None = None) -> None:
    """RL through a policy server started here: rollouts in this process or on Ray workers, greedy dev checks."""
    tasks = await train_tasks(cfg.env_id)
    ray_session: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if workers > 0:  # one Ray for the whole run (run_distributed reuses it), shut down at the end
        from agentgym.distributed import local_ray

        # a local Ray started here leaves no process behind; with ray_address it only connects to that cluster
        ray_session = local_ray(address=ray_address, include_dashboard=False, ignore_reinit_error=True,
                                log_to_driver=False)
    with ray_session:
        async with serve_policy(backend, cfg.model, max_tokens=cfg.max_tokens, max_model_len=max_model_len) as served:
            await _train_rl_served(cfg, served, dev_episodes, tasks, workers)


def make_collector(cfg: Any, served: ServedPolicy, workers: int) -> Any:
    """Where a step's episodes are played: Ray workers (each builds its own policy client) or this process."""
    if workers > 0:
        from agentgym.distributed import EnvFactorySpec, RayCollector

        return RayCollector(EnvFactorySpec(cfg.env_id, {"split": "train"}), served.factory(temperature=1.0), workers,
                            cfg.concurrency)
    from agentgym.collect import LocalCollector
    from agentgym.registry import make

    return LocalCollector(lambda: make(cfg.env_id, split="train"), served.policy(temperature=1.0), cfg.concurrency)


async def _train_rl_served(cfg: Any, served: ServedPolicy, dev_episodes: int, tasks: list[Any], workers: int) -> None:
    from agentgym.trainers.rl import train_rl

    greedy = served.policy(temperature=0.0)

    async def evaluate(step: int) -> dict[str, float]:
        return await dev_success(cfg.env_id, greedy, dev_episodes, cfg.seed) if dev_episodes else {}

    bar = Progress(TextColumn(f"RL {cfg.algo}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                   TimeElapsedColumn(), console=console, transient=True)
    bar_task = bar.add_task("rl", total=cfg.steps)

    def show(step: int, row: dict[str, Any]) -> None:
        bar.update(bar_task, completed=step)
        console.print(f"step {step}/{cfg.steps} | episodes {row['episodes']} | "
                      f"success {row['train/success']:.2f} | reward {row['train/reward']:.3f} | "
                      + (f"loss {row['loss']:.4f}" if "loss" in row else "no update (every group had equal rewards)")
                      + f" | v{row['model_version']}"
                      + (f" | dev {row['dev/success']:.2f}" if "dev/success" in row else ""))

    with bar:
        await train_rl(cfg, tasks=tasks, collector=make_collector(cfg, served, workers),
                       sync_weights=served.server.load_weights, evaluate=evaluate, progress=show)


def register(app: typer.Typer) -> None:
    """Add ``train`` to the main app (extra flags pass through to the RL config)."""
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(train)

