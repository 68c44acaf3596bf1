"""CLI for env authors: ``agentgym new-env NAME`` (scaffold a plug-in) and ``agentgym envs check ENV``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from agentgym.cli.options import parse_key_values

console = Console()


def envs_check(env_id: str,
               limit: Optional[int] = typer.Option(None, help="oracle tasks per split (default: every task)"),
               concurrency: int = typer.Option(4, help="envs playing the oracle at once"),
               max_block_s: float = typer.Option(0.5, help="fail when an async tool holds the event loop this long"),
               env_kw: list[str] = typer.Option([], "--env", help="env kwargs KEY=VALUE")) -> None:
    """Check an env: gymnasium's check_env (unwrapped), the oracle on every task of every split, random and
    malformed actions, event-loop blocking, pinned manifests, snapshot/restore. Exits 1 on any failure."""
    from agentgym.env_check import check_env_id

    report = check_env_id(env_id, env_kwargs=parse_key_values(env_kw), limit=limit, concurrency=concurrency,
                          max_block_s=max_block_s)
    for result in report.results:
        mark = "[green]ok  [/green]" if result.ok else "[bold red]FAIL[/bold red]"
        console.print(f"{mark} {escape(result.name)}")
        for line in result.details:
            console.print(f"       [red]{escape(line)}[/red]")
        for line in result.warnings:
            console.print(f"       {escape(line)}", style="dim")
    if not report.ok:
        console.print(f"[bold red]{env_id}: {sum(not r.ok for r in report.results)} check(s) failed[/bold red]")
        raise typer.Exit(1)
    console.print(f"[bold green]{env_id}: all checks passed[/bold green]")


def new_env(name: str = typer.Argument(..., help="env name: lower-case letters, digits, '-' or '_'"),
            directory: Path = typer.Option(Path("."), "--dir", help="where to create the package folder")) -> None:
    """Scaffold a plug-in env package (pyproject with entry point, env, pinned manifest, multi-turn oracle, tests)."""
    from agentgym.scaffold import plugin_names, scaffold_env

    root = scaffold_env(name, directory)
    env_id = plugin_names(name)["env_id"]
    console.print(f"created {root}\nnext:\n  pip install -e {root}\n  agentgym envs check {env_id}\n"
                  f"  cd {root} && pytest")


def register(app: typer.Typer, envs_app: typer.Typer) -> None:
    """Add ``new-env`` to the main app and ``check`` to ``agentgym envs``."""
    app.command("new-env")(new_env)
    envs_app.command("check")(envs_check)
