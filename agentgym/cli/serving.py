"""CLI wiring for policy serving: ``agentgym model tiny``, ``agentgym serve``, and the servers bench/train start.

Like the rest of ``agentgym.cli`` this module may join envs and policies (it is part of the command line); the heavy
imports (torch, transformers, the servers) happen inside the commands.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from agentgym import shutdown

SERVER_BACKENDS = ("hf", "vllm")
model_app = typer.Typer(no_args_is_help=True, help="Build models for tests, demos and experiments.")
console = Console()


def run_async(coro: Any) -> Any:
    """``asyncio.run`` that runs the loop-end cleanups (``agentgym.shutdown``) envs registered, before the loop ends.

    Envs that hold loop-bound resources (the SQL env's query workers) register their cleanup there, so
    the CLI closes them without knowing any env.
    """
    return shutdown.run(coro)


async def env_texts(env_ids: Sequence[str], tasks_per_env: int = 64) -> list[str]:
    """Texts a tokenizer should know: first observations, tool schemas and oracle actions of train tasks."""
    from agentgym.env import SupportsOracle
    from agentgym.registry import make

    texts: list[str] = []
    for env_id in env_ids:
        env = make(env_id, split="train")
        try:
            suite = await env.aload_suite()
            texts.append(json.dumps(list(env.tools)))
            for task in suite.tasks("train")[:tasks_per_env]:
                obs, _ = await env.areset(options={"task_id": task.id})
                texts += [str(m.get("content") or "") for m in obs["messages"]]
                if isinstance(env, SupportsOracle):
                    action = await env.oracle_action()
                    texts.append(action if isinstance(action, str) else json.dumps(action))
        finally:
            await env.aclose()
    return texts


def build_tiny(out: Path, env_ids: Sequence[str], *, hidden_size: int = 256, num_layers: int = 4,
               max_position_embeddings: int = 8192, seed: int = 0) -> Path:
    """A tiny Llama with a tokenizer trained on the envs' texts (skips the build when `out` already has one).

    8192 positions by default: an SQL task's first prompt (schema + tools) is ~2.5k tokens of a tiny BPE.
    """
    from agentgym.policies.tiny_model import build_tiny_model

    if (out / "config.json").exists() and (out / "tokenizer.json").exists():
        return out
    texts = run_async(env_texts(env_ids))
    return build_tiny_model(out, texts, hidden_size=hidden_size, num_layers=num_layers,
                            max_position_embeddings=max_position_embeddings, seed=seed)


@model_app.command("tiny")
def model_tiny(out: Path = typer.Option(..., help="directory to write the model and tokenizer to"),
               env: list[str] = typer.Option(["agentgym/sql-v0"], help="envs whose task texts train the tokenizer"),
               hidden_size: int = 256, layers: int = 4, seed: int = 0) -> None:
    """Build a tiny random-init Llama (a few M parameters) plus a tokenizer with a tool-call chat template."""
    path = build_tiny(out, env, hidden_size=hidden_size, num_layers=layers, seed=seed)
    console.print(f"wrote {path} (load it with AutoModelForCausalLM / AutoTokenizer, or serve it with "
                  f"`agentgym serve --model {path}`)")


def make_server(backend: str, model_dir: str | Path, *, max_model_len: int | None = None,
                port: int | None = None, device: str = "cpu", dtype: str = "float32") -> Any:
    """The supervised server process of a backend: the built-in transformers server or vLLM."""
    if backend == "hf":
        from agentgym.policies.hf_server import HFServer

        return HFServer(model_dir, max_model_len=max_model_len, port=port, device=device, dtype=dtype)
    if backend == "vllm":
        from agentgym.policies.vllm_server import VLLMServer

        kwargs: dict[str, Any] = {"port": port, "dtype": dtype}
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        return VLLMServer(model_dir, **kwargs)
    raise typer.BadParameter(f"unknown backend {backend!r}; expected one of {', '.join(SERVER_BACKENDS)}")


def token_policy_factory(model_dir: str | Path, server: Any, *, temperature: float, max_tokens: int,
                         max_model_len: int | None = None) -> Callable[..., Any]:
    """A picklable ``TokenPolicy`` constructor for `server` (Ray workers build their own policy from it)."""
    from agentgym.policies.token_policy import TokenPolicy

    return functools.partial(TokenPolicy, model_dir, server.base_url, model=server.model_name,
                             temperature=temperature, max_tokens=max_tokens, max_model_len=max_model_len)


@dataclass
class ServedPolicy:
    """A running policy server and the token policies that sample from it (every one is built here)."""

    server: Any
    model_dir: Path
    max_tokens: int
    max_model_len: int | None = None
    _opened: list[Any] = field(default_factory=list)

    def factory(self, temperature: float) -> Callable[..., Any]:
        """A picklable policy constructor for other processes (Ray workers read the version from responses)."""
        return token_policy_factory(self.model_dir, self.server, temperature=temperature, max_tokens=self.max_tokens,
                                    max_model_len=self.max_model_len)

    def policy(self, temperature: float) -> Any:
        """A policy in this process that tags each turn with the server's weights version; closed with the server."""
        policy = self.factory(temperature)(version_source=lambda: self.server.version)
        self._opened.append(policy)
        return policy

    async def aclose_policies(self) -> None:
        """Close the policies ``policy`` opened (their HTTP clients)."""
        while self._opened:
            await self._opened.pop().aclose()


@asynccontextmanager
async def serve_policy(backend: str, model_dir: str | Path, *, max_tokens: int, max_model_len: int | None = None,
                       start_timeout_s: float = 600.0) -> AsyncIterator[ServedPolicy]:
    """Start a server for `model_dir`, yield its ``ServedPolicy``, close its policies and stop it on exit."""
    server = make_server(backend, model_dir, max_model_len=max_model_len)
    await server.start(start_timeout_s)
    served = ServedPolicy(server, Path(model_dir), max_tokens, max_model_len)
    try:
        yield served
    finally:
        try:
            await served.aclose_policies()
        finally:
            await server.stop()


@asynccontextmanager
async def served_token_policy(backend: str, model_dir: str | Path, *, temperature: float, max_tokens: int,
                              max_model_len: int | None = None,
                              start_timeout_s: float = 600.0) -> AsyncIterator[tuple[Any, Any]]:
    """``serve_policy`` for one policy: yield (token policy at `temperature`, server)."""
    async with serve_policy(backend, model_dir, max_tokens=max_tokens, max_model_len=max_model_len,
                            start_timeout_s=start_timeout_s) as served:
        yield served.policy(temperature), served.server


def serve(model: Path = typer.Option(..., help="model directory (save_pretrained layout)"),
          backend: str = typer.Option("hf", help="hf (built-in transformers server) or vllm"),
          port: int = typer.Option(8000, help="port on 127.0.0.1"),
          max_model_len: Optional[int] = typer.Option(None, help="context length the server accepts"),
          device: str = "cpu", dtype: str = "float32") -> None:
    """Serve a model over the OpenAI-compatible API (token ids and log-probs included) until Ctrl-C."""
    server = make_server(backend, model, max_model_len=max_model_len, port=port, device=device, dtype=dtype)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            console.print(f"serving {model} ({backend}) at {server.base_url}; Ctrl-C stops it")
            await stop.wait()

    asyncio.run(run())
