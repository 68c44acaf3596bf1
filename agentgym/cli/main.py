"""The ``agentgym`` command line: list and inspect envs, play one episode, benchmark on held-out splits.

The root app of the ``agentgym.cli`` package, which is the one place that wires envs, policies and
trainers together; the other command groups register themselves here.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentgym.cli.serving import (SERVER_BACKENDS, model_app, run_async, serve, served_token_policy,
                                  token_policy_factory)
from agentgym.cli.envs import register as register_env_tools
from agentgym.cli.options import parse_key_values
from agentgym.cli.records import register as register_records
from agentgym.cli.train import register as register_train
from agentgym.errors import AgentGymError
from agentgym.errors import UnknownPolicyError
from agentgym.policy import Policy, make_policy, model_label, policy_names, unknown_policy_message

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="agentgym: async tool-use environments for LLM agents, rollouts and held-out benchmarks.")
envs_app = typer.Typer(no_args_is_help=True, help="List and inspect registered environments.")
app.add_typer(envs_app, name="envs")
app.add_typer(model_app, name="model")
app.command()(serve)
register_train(app)
register_env_tools(app, envs_app)  # new-env, envs check
register_records(app)  # records export / import
console = Console()
errors = Console(stderr=True, soft_wrap=True)


def _policy(name: str, base_url: Optional[str], model: Optional[str], seed: int,
            temperature: float, max_tokens: int) -> tuple[Policy, dict[str, Any]]:
    if name not in policy_names():  # one line with every choice, hf/vllm included, instead of a traceback
        raise UnknownPolicyError(unknown_policy_message(name, SERVER_BACKENDS))
    if name == "openai":
        cfg = {"base_url": base_url, "model": model, "temperature": temperature, "max_tokens": max_tokens}
        return make_policy(name, **cfg), cfg
    if name == "random":
        return make_policy(name, seed=seed), {"seed": seed}
    return make_policy(name), {}


@envs_app.command("list")
def envs_list() -> None:
    """Every registered environment, built-in and plug-in."""
    from agentgym.registry import load_plugins, registry

    errors = load_plugins()
    table = Table("id", "source", "description")
    for env_id, spec in registry().items():
        table.add_row(env_id, spec.source, spec.description)
    console.print(table)
    for ep, err in errors.items():
        console.print(f"[red]plug-in {ep} failed to load:[/red] {err}")


@envs_app.command("show")
def envs_show(env_id: str, env_kw: list[str] = typer.Option([], "--env", help="env kwargs KEY=VALUE")) -> None:
    """An env's spec, tools, spaces, options and task suite (counts per split and held-out axis)."""
    from agentgym.env import NoTaskSuiteError
    from agentgym.registry import make, spec

    s = spec(env_id)
    console.print(f"[bold]{s.id}[/bold]  ({s.entry_point if isinstance(s.entry_point, str) else s.entry_point!r})")
    console.print(s.description)
    env = make(env_id, **parse_key_values(env_kw))

    async def describe() -> None:
        try:
            options = env.options_help
            if options:
                table = Table("option", "meaning", title="options (agentgym.make(id, **options))")
                for k, v in options.items():
                    table.add_row(k, v)
                console.print(table)
            table = Table("tool", "description", "parameters", title="tools")
            for t in env.tools:
                fn = t["function"]
                table.add_row(fn["name"], fn.get("description", ""), ", ".join(fn["parameters"].get("properties", {})))
            console.print(table)
            console.print(f"observation space: {env.observation_space}")
            console.print(f"action space: {env.action_space}")
            try:
                suite = await env.aload_suite()
            except NoTaskSuiteError:
                suite = None
            if suite is not None:
                table = Table("split", "tasks", "ood", "iid", "manifest checksum",
                              title=f"task suite {suite.name} {suite.version}")
                for split in ("train", "dev", "test"):
                    m = suite.manifest(split)
                    table.add_row(split, str(len(m.task_ids)), str(len(suite.tasks(split, "ood"))),
                                  str(len(suite.tasks(split, "iid"))), m.checksum[:16])
                console.print(table)
                table = Table("family", "tasks", "splits", title="families")
                families: dict[str, list] = {}
                for t in suite.tasks():
                    families.setdefault(t.family, []).append(t)
                for fam, tasks in sorted(families.items()):
                    splits = sorted({f"{suite.split_of(t.id)}{'/' + suite.axis_of(t.id) if suite.axis_of(t.id) else ''}"
                                     for t in tasks})
                    table.add_row(fam, str(len(tasks)), ", ".join(splits))
                console.print(table)
        finally:
            await env.aclose()

    run_async(describe())


@app.command()
def run(env_id: str,
        policy: str = typer.Option("random", help=f"policy name ({', '.join(policy_names())})"),
        seed: int = typer.Option(0, help="reset seed (picks the task when --task-id is not given)"),
        split: str = typer.Option("test", help="split to draw the task from"),
        task_id: Optional[str] = typer.Option(None, help="run this task id"),
        base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible server (policy openai)"),
        model: Optional[str] = typer.Option(None, help="model name (policy openai)"),
        temperature: float = 0.0, max_tokens: int = 1024,
        env_kw: list[str] = typer.Option([], "--env", help="env kwargs KEY=VALUE"),
        as_json: bool = typer.Option(False, "--json", help="print the episode record as JSON")) -> None:
    """Play one episode and print its transcript."""
    from agentgym.registry import make
    from agentgym.rollout import EpisodeJob, RolloutConfig, RolloutEngine

    pol, _ = _policy(policy, base_url, model, seed, temperature, max_tokens)

    async def play():
        env = make(env_id, split=split, **parse_key_values(env_kw))
        try:
            suite = await env.aload_suite()
            tid = task_id
            if tid is not None:
                suite.get(tid)  # UnknownTaskError: one line naming the suite, not an "infrastructure error"
            if tid is None:
                pool = suite.tasks(split)
                import numpy as np

                tid = pool[int(np.random.default_rng(seed).integers(len(pool)))].id
            return await RolloutEngine(lambda: env, pol, RolloutConfig()).run_episode(env, EpisodeJob(tid, 0, seed))
        finally:
            await env.aclose()
            if hasattr(pol, "aclose"):
                await pol.aclose()

    record = run_async(play())
    if as_json:
        print(json.dumps(record.to_json(), indent=2))
        return
    from agentgym.messages import message_text
    from agentgym.report import describe_calls

    def show(msgs: list[dict]) -> None:
        for m in msgs:
            console.print(Text(str(m.get("role")), style="bold cyan"), Text(message_text(m)))

    show(record.first_observation)
    for i, t in enumerate(record.turns):
        calls = describe_calls(t.action)
        text = (t.action_text or "") + (f"\n-> {calls}" if calls else "")
        console.print(Text("assistant", style="bold green"), Text(text.strip()))
        show(record.turns[i + 1].observation if i + 1 < len(record.turns) else record.final_observation)
    console.print(f"\ntask {record.task_id} | termination {record.termination} | success {record.success} | "
                  f"reward {record.reward} | components {record.reward_components}")
    for err in record.infra_errors:
        console.print(f"[red]infrastructure error[/red] {err}")


@app.command()
def bench(env_id: str,
          policy: str = typer.Option(..., help=f"policy: hf or vllm (start a server for --model), "
                                               f"{', '.join(policy_names())}"),
          split: str = typer.Option("test", help="held-out split: dev or test"),
          episodes: Optional[int] = typer.Option(None, help="number of tasks from the manifest (default: all)"),
          concurrency: int = typer.Option(8, help="episodes in flight"),
          samples: int = typer.Option(1, help="episodes per task (pass@k)"),
          out: Path = typer.Option(Path("runs/bench"), help="output directory"),
          resume: bool = typer.Option(False, help="finish an interrupted run in --out"),
          seed: int = 0,
          axis: Optional[str] = typer.Option(None, help="only 'ood' or 'iid' held-out tasks"),
          base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible server (policy openai)"),
          model: Optional[str] = typer.Option(None, help="model name or local checkpoint dir (policy openai)"),
          temperature: float = 0.0, max_tokens: int = 1024,
          max_model_len: Optional[int] = typer.Option(None, help="context length (policies hf/vllm)"),
          best_of_n: int = typer.Option(1, help="sample N actions per turn, act with the critic's best"),
          critic: Optional[Path] = typer.Option(None, help="critic dir (agentgym train ENV --algo qvalue)"),
          search: Optional[str] = typer.Option(None, help="'mcts': tree search per task instead of one episode"),
          simulations: int = typer.Option(32, help="MCTS simulations per task (--search mcts)"),
          provenance: Optional[Path] = typer.Option(None, help="training provenance file of the policy"),
          env_kw: list[str] = typer.Option([], "--env", help="env kwargs KEY=VALUE"),
          backend: str = typer.Option("local", help="where episodes run: local (this process) or ray (actors)"),
          workers: int = typer.Option(2, help="--backend ray: rollout worker actors"),
          ray_address: Optional[str] = typer.Option(None, help="--backend ray: cluster ('auto', ray://host:10001); "
                                                               "default: a local Ray"),
          progress: bool = typer.Option(True, help="show a progress bar"),
          allow_trained_split: bool = typer.Option(False, help="benchmark a split the model's provenance says it "
                                                                     "was trained on (the numbers are not held-out)"),
          max_infra_error_rate: float = typer.Option(
              0.01, help="fail the run (exit 3) when more than this share of episodes end in infrastructure "
                         "failures")) -> None:
    """Benchmark a policy on a held-out split; writes results.json, report.md and plot.png to --out.

    ``--policy hf|vllm --model DIR`` starts that policy server for the run and stops it afterwards;
    ``--policy openai --base-url U --model M`` uses a server that is already running. ``--backend ray
    --workers N`` plays the episodes on N Ray actors (each with its own envs) against the same server.
    """
    from agentgym.benchmark import BenchConfig, run_benchmark
    from agentgym.provenance import check_benchmark_split, read_provenance

    prov = read_provenance(provenance) or (read_provenance(model) if model and Path(model).exists() else None)
    # refuse a trained-on split before any model server starts
    check_benchmark_split(env_id, split, prov, allow_trained_split=allow_trained_split)
    served = policy in SERVER_BACKENDS
    if served and not model:
        raise typer.BadParameter(f"--policy {policy} starts a server: give the model directory with --model")

    def config_for(pol: Policy, pol_cfg: dict[str, Any]) -> BenchConfig:
        return BenchConfig(env_id=env_id, policy=pol.name, split=split, episodes=episodes, samples=samples,
                           concurrency=concurrency, seed=seed, axis=axis, env_kwargs=parse_key_values(env_kw),
                           policy_config={k: v for k, v in pol_cfg.items() if k != "api_key"})

    if search not in (None, "mcts"):
        raise typer.BadParameter("--search takes 'mcts'")
    if backend not in ("local", "ray"):
        raise typer.BadParameter("--backend is 'local' or 'ray'")
    if backend == "ray" and (search or best_of_n > 1):
        raise typer.BadParameter("--backend ray plays plain episodes: drop --search / --best-of-n")

    def runner_for(policy_factory: Any) -> Any:
        """Ray workers build their own policy from `policy_factory` (picklable) and their own envs."""
        if backend != "ray":
            return None

        async def run(jobs: list[Any], episodes_file: Path) -> None:
            from agentgym.distributed import EnvFactorySpec, run_distributed_async

            await run_distributed_async(jobs, EnvFactorySpec(env_id, {**parse_key_values(env_kw), "split": split}),
                                        policy_factory,
                                        workers=workers, concurrency=concurrency, out_path=episodes_file,
                                        ray_address=ray_address)
        return run

    async def evaluate(pol: Policy, pol_cfg: dict[str, Any], policy_factory: Any = None) -> dict[str, Any]:
        if search == "mcts":
            from agentgym.cli.search import bench_with_search

            return await bench_with_search(env_id, pol, split=split, episodes=episodes, simulations=simulations,
                                           critic_dir=critic, out=out, seed=seed, env_kwargs=parse_key_values(env_kw))
        if best_of_n > 1:
            from agentgym.cli.search import with_best_of_n

            pol, pol_cfg = with_best_of_n(pol, best_of_n, critic), {**pol_cfg, "best_of_n": best_of_n,
                                                                    "critic": str(critic)}
        return await run_benchmark(config_for(pol, pol_cfg), pol, out, resume=resume, provenance=prov,
                                   progress=progress and sys.stderr.isatty(), runner=runner_for(policy_factory),
                                   max_infra_error_rate=max_infra_error_rate,
                                   allow_trained_split=allow_trained_split)

    async def go() -> dict[str, Any]:
        if served:
            async with served_token_policy(policy, model, temperature=temperature, max_tokens=max_tokens,
                                           max_model_len=max_model_len) as (pol, server):
                pol.name = model_label(policy, model)  # "hf:runs/rl/final", not "token:final" for every run
                factory = token_policy_factory(model, server, temperature=temperature, max_tokens=max_tokens,
                                               max_model_len=max_model_len)
                return await evaluate(pol, {"backend": policy, "model": str(model), "temperature": temperature,
                                            "max_tokens": max_tokens}, factory)
        pol, pol_cfg = _policy(policy, base_url, model, seed, temperature, max_tokens)
        try:
            return await evaluate(pol, pol_cfg, functools.partial(make_policy, policy, **pol_cfg))
        finally:
            if hasattr(pol, "aclose"):
                await pol.aclose()

    results = run_async(go())
    if search == "mcts":
        console.print(f"{env_id} [{split}] {results['policy']}: success {results['success_rate']:.3f} "
                      f"{_rounded(results['success_ci95'])}, {results['policy_calls_per_task']:.1f} policy calls and "
                      f"{results['env_steps_per_task']:.1f} env steps per task; wrote {out / 'results.json'}")
        return
    table = Table("metric", "value", title=f"{env_id} [{split}] {results['policy']}")
    lat = results["latency_ms"]
    for key, value in [("episodes", results["episodes"]), ("success_rate (all episodes)", results["success_rate"]),
                       ("success_ci95", results["success_ci95"]),
                       *([("success_rate (scored only)", results["success_rate_scored"]),
                          ("success_ci95 (scored only)", results["success_ci95_scored"])]
                         if results.get("success_rate_scored") != results["success_rate"] else []),
                       ("mean_reward", results["mean_reward"]),
                       ("mean_turns", results["mean_turns"]), ("infra_errors", results["infra_errors"]),
                       ("retried_episodes", results.get("retried_episodes")),
                       ("pass_at_k", results.get("pass_at_k")),
                       ("policy ms p50/p99", [lat["policy"]["p50"], lat["policy"]["p99"]]),
                       ("env ms p50/p99", [lat["env"]["p50"], lat["env"]["p99"]])]:
        if value is not None:
            table.add_row(key, json.dumps(_rounded(value)))
    console.print(table)
    console.print(f"wrote {out / 'results.json'}, {out / 'report.md'}, {out / 'plot.png'}")
    if results.get("infra_error_warning"):
        errors.print(f"[bold red]WARNING: infrastructure failures[/bold red] {results['infra_error_warning']}",
                     highlight=False)
        raise typer.Exit(3)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


@app.command()
def compare(runs: list[Path] = typer.Argument(..., help="benchmark run dirs; the first is the baseline"),
            label: list[str] = typer.Option([], help="a label per run (default: the directory names)"),
            out: Optional[Path] = typer.Option(None, help="write compare.json/.md/.png here")) -> None:
    """Compare benchmark runs on the same held-out tasks: success, CI, reward, and paired wins/losses."""
    from agentgym.compare import compare_runs, comparison_markdown, write_comparison

    comparison = compare_runs(runs, label or None)
    print(comparison_markdown(comparison))  # plain: a Markdown table must not be re-wrapped
    if out is not None:
        console.print(f"wrote {write_comparison(comparison, out)}")


@app.command()
def manifest(env_id: str, write: Optional[Path] = typer.Option(None, help="write the pinned manifest here"),
             env_kw: list[str] = typer.Option([], "--env", help="env kwargs KEY=VALUE")) -> None:
    """Print (or write) the env's pinned manifest: held-out task ids and checksums per split."""
    from agentgym.registry import suite

    data = suite(env_id, **parse_key_values(env_kw)).pinned()
    text = json.dumps(data, indent=1) + "\n"
    if write:
        write.write_text(text)
        console.print(f"wrote {write}")
    else:
        print(text)


def main() -> None:
    """Console entry point: agent-facing errors print one clear line instead of a traceback."""
    # transformers/hub progress bars ("Loading weights", "Writing model shards") would bury our own output
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        app()
    except AgentGymError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(2) from None

