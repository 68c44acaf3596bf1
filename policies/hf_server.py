"""The built-in OpenAI-compatible policy server for any ``transformers`` causal LM (no vLLM needed).

Both halves live here: the app that runs inside the server process (``HFServerApp``, ``build_app``, ``main``)
and ``HFServer``, the supervisor that launches that process from the trainer or CLI side.

    python -m agentgym.policies.hf_server --model DIR --port 8000 [--device cpu|cuda]
        [--dtype float32|bfloat16] [--max-batch 64] [--max-model-len N]

    async with HFServer(model_dir, watchdog=True) as server:    # the same process, supervised
        version = await server.load_weights(checkpoint_dir)

Speaks the C2 contract (the subset of vLLM's API that agentgym uses): ``GET /health``, ``GET /v1/models``,
``POST /v1/chat/completions`` (chat template, tools, hermes tool calls parsed into ``tool_calls``),
``POST /v1/completions`` (prompts as text or token ids), with ``n``, ``stop``, ``max_tokens``,
``temperature``, ``top_p``, ``seed``, ``logprobs``/``top_logprobs`` and ``return_token_ids``; plus
``model_version`` on every response, ``POST /v1/load_weights {"path": DIR}`` and ``GET /metrics``.
Generation is batched per decoding step by ``policies/batching.py``.
"""

import argparse  # no `from __future__ import annotations`: FastAPI reads the handlers' annotations

import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agentgym.extras import require
from agentgym.policies.batching import BatchEngine, Completion, SamplingParams
from agentgym.policies.chat_template import assistant_message_from_text
from agentgym.policies.server import ManagedServer


class RequestError(ValueError):
    """A request the server refuses with 400 (OpenAI error shape)."""


def _sampling_params(body: Mapping[str, Any], default_max_tokens: int) -> SamplingParams:
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    try:
        top = body.get("top_logprobs")
        if isinstance(body.get("logprobs"), int) and not isinstance(body.get("logprobs"), bool):
            top = body["logprobs"]  # completions API: logprobs=k means k alternatives
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
        params = SamplingParams(max_tokens=int(max_tokens),
                                temperature=float(1.0 if body.get("temperature") is None else body["temperature"]),
                                top_p=float(1.0 if body.get("top_p") is None else body["top_p"]),
                                seed=None if body.get("seed") is None else int(body["seed"]),
                                stop=tuple(str(s) for s in stop), top_logprobs=int(top or 0),
                                ignore_eos=bool(body.get("ignore_eos", False)))
    except (TypeError, ValueError) as exc:
        raise RequestError(f"invalid sampling parameter: {exc}") from None
    if params.max_tokens < 1 or params.temperature < 0 or not 0 < params.top_p <= 1 or params.top_logprobs < 0:
        raise RequestError("need max_tokens >= 1, temperature >= 0, 0 < top_p <= 1, top_logprobs >= 0")
    return params


class HFServerApp:
    """The request handlers, independent of the web framework (``build_app`` wires them to FastAPI)."""

    def __init__(self, engine: BatchEngine, tokenizer: Any, model_name: str):
        self.engine = engine
        self.tokenizer = tokenizer
        self.model_name = model_name

    def check_length(self, prompt_len: int, max_tokens: int) -> None:
        limit = self.engine.max_model_len
        if prompt_len + max_tokens > limit:
            raise RequestError(f"This model's maximum context length is {limit} tokens. However, you requested "
                               f"{prompt_len + max_tokens} tokens ({prompt_len} in the messages, {max_tokens} in "
                               f"the completion). Please reduce the length of the messages or completion.")

    def _token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    async def _generate(self, prompt_ids: list[int], body: Mapping[str, Any], n: int) -> list[Completion]:
        if not prompt_ids:
            raise RequestError("the prompt is empty")
        vocab = self.engine.model.config.vocab_size
        if any(not isinstance(t, int) or not 0 <= t < vocab for t in prompt_ids):
            raise RequestError(f"prompt token ids must be integers in [0, {vocab})")
        default = max(1, self.engine.max_model_len - len(prompt_ids)) if "messages" in body else 16
        params = _sampling_params(body, default)
        self.check_length(len(prompt_ids), params.max_tokens)
        if not 1 <= n <= 256:
            raise RequestError("n must be between 1 and 256")
        return await self.engine.generate(prompt_ids, params, n)

    def _usage(self, prompt_len: int, outs: list[Completion]) -> dict[str, int]:
        completion = sum(len(o.token_ids) for o in outs)
        return {"prompt_tokens": prompt_len, "completion_tokens": completion, "total_tokens": prompt_len + completion}

    async def completions(self, body: Mapping[str, Any]) -> dict[str, Any]:
        prompt = body.get("prompt")
        if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and isinstance(prompt[0], int)):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, (str, list)) for p in prompt):
            prompts = prompt
        else:
            raise RequestError("prompt must be a string, a list of token ids, or a list of those")
        n = int(body.get("n") or 1)
        want_lp = body.get("logprobs") is not None and body.get("logprobs") is not False
        choices, usage_prompt, outs_all = [], 0, []
        for p in prompts:
            ids = self.tokenizer.encode(p, add_special_tokens=False) if isinstance(p, str) else list(p)
            outs = await self._generate(ids, body, n)
            usage_prompt += len(ids)
            outs_all += outs
            for out in outs:
                choice: dict[str, Any] = {"index": len(choices), "text": out.text, "finish_reason": out.finish_reason,
                                          "logprobs": self._completion_logprobs(out) if want_lp else None}
                if body.get("return_token_ids"):
                    choice["prompt_token_ids"] = ids
                    choice["token_ids"] = out.token_ids
                choices.append(choice)
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": self.model_name, "choices": choices, "usage": self._usage(usage_prompt, outs_all),
                "model_version": min((o.model_version for o in outs_all), default=self.engine.version)}

    def _completion_logprobs(self, out: Completion) -> dict[str, Any]:
        tokens = [self._token_text(t) for t in out.token_ids]
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        top = [{self._token_text(t): lp for t, lp in alts} for alts in out.top_logprobs] or None
        return {"tokens": tokens, "token_logprobs": out.logprobs, "top_logprobs": top, "text_offset": offsets}

    async def chat_completions(self, body: Mapping[str, Any]) -> dict[str, Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError("messages must be a non-empty list")
        tools = body.get("tools") or None
        try:
            text = self.tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True,
                                                      tokenize=False)
        except Exception as exc:  # template errors are the request's fault
            raise RequestError(f"cannot render the messages with the chat template: {exc}") from None
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        n = int(body.get("n") or 1)
        outs = await self._generate(ids, body, n)
        choices = []
        for i, out in enumerate(outs):
            message, has_calls = assistant_message_from_text(out.text)
            for call in message.get("tool_calls", []):
                call["id"] = f"call_{uuid.uuid4().hex[:24]}"
            finish = "tool_calls" if has_calls and out.finish_reason == "stop" else out.finish_reason
            choice: dict[str, Any] = {"index": i, "message": message, "finish_reason": finish,
                                      "logprobs": self._chat_logprobs(out) if body.get("logprobs") else None}
            if body.get("return_token_ids"):
                choice["token_ids"] = out.token_ids
            choices.append(choice)
        data: dict[str, Any] = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                                "created": int(time.time()), "model": self.model_name, "choices": choices,
                                "usage": self._usage(len(ids), outs),
                                "model_version": min(o.model_version for o in outs)}
        if body.get("return_token_ids"):
            data["prompt_token_ids"] = ids
        return data

    def _chat_logprobs(self, out: Completion) -> dict[str, Any]:
        def entry(token_id: int, lp: float) -> dict[str, Any]:
            text = self._token_text(token_id)
            return {"token": text, "logprob": lp, "bytes": list(text.encode("utf-8"))}

        content = []
        for j, (t, lp) in enumerate(zip(out.token_ids, out.logprobs)):
            alts = out.top_logprobs[j] if j < len(out.top_logprobs) else []
            content.append({**entry(t, lp), "top_logprobs": [entry(a, alp) for a, alp in alts]})
        return {"content": content}


def build_app(engine: BatchEngine, tokenizer: Any, model_name: str):
    """A FastAPI app serving `engine` (the engine thread must be started by the caller)."""
    fastapi = require("fastapi", "serve")
    from fastapi import Request
    from fastapi.responses import JSONResponse

    handlers = HFServerApp(engine, tokenizer, model_name)
    app = fastapi.FastAPI(title="agentgym hf_server")

    def error(status: int, message: str, kind: str = "BadRequestError") -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status},
                             "object": "error", "message": message}, status_code=status)

    async def handle(request: Request, fn) -> JSONResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise RequestError("the request body must be a JSON object")
            return JSONResponse(await fn(body))
        except RequestError as exc:
            return error(400, str(exc))
        except ValueError as exc:  # bad JSON
            return error(400, f"invalid request: {exc}")
        except Exception as exc:
            return error(500, f"{type(exc).__name__}: {exc}", "InternalServerError")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model_version": engine.version}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "agentgym",
                                            "max_model_len": engine.max_model_len}]}

    @app.get("/metrics")
    async def metrics() -> dict[str, Any]:
        return engine.stats()

    @app.post("/v1/completions")
    async def completions(request: Request) -> JSONResponse:
        return await handle(request, handlers.completions)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        return await handle(request, handlers.chat_completions)

    async def load(body: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(body.get("path"), str):
            raise RequestError('load_weights needs {"path": DIR}')
        return {"version": await engine.load_weights(body["path"])}

    @app.post("/v1/load_weights")
    async def load_weights(request: Request) -> JSONResponse:
        return await handle(request, load)

    return app


def load_engine(model_dir: str, *, weights: str | None = None, device: str = "cpu", dtype: str = "float32",
                max_batch: int = 64, max_model_len: int | None = None, version: int = 0) -> BatchEngine:
    """Load tokenizer (from `model_dir`) and model (from `weights`, default `model_dir`) into a started engine."""
    torch = require("torch", "serve")
    transformers = require("transformers", "serve")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(weights or model_dir, dtype=getattr(torch, dtype))
    model.to(device).eval()
    return BatchEngine(model, tokenizer, device=device, max_batch=max_batch, max_model_len=max_model_len,
                       version=version).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="agentgym's built-in OpenAI-compatible transformers server")
    parser.add_argument("--model", required=True, help="model directory (save_pretrained layout)")
    parser.add_argument("--weights", default=None, help="load weights from this directory instead (restarts)")
    parser.add_argument("--initial-version", type=int, default=0, help="weights version to report at start")
    parser.add_argument("--served-model-name", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-model-len", type=int, default=None)
    args = parser.parse_args(argv)
    uvicorn = require("uvicorn", "serve")
    engine = load_engine(args.model, weights=args.weights, device=args.device, dtype=args.dtype,
                         max_batch=args.max_batch, max_model_len=args.max_model_len, version=args.initial_version)
    name = args.served_model_name or args.model.rstrip("/").rsplit("/", 1)[-1]
    try:
        uvicorn.run(build_app(engine, engine.tokenizer, name), host=args.host, port=args.port, log_level="warning",
                    timeout_graceful_shutdown=5)
    finally:
        engine.stop()


# --- the supervisor: launches the process above from the trainer or CLI side -------------------------


class HFServer(ManagedServer):
    """The built-in transformers server (``python -m agentgym.policies.hf_server``) for a model directory.

    A restart (watchdog or ``restart()``) reloads the last weights given to ``load_weights`` with the same
    version number, so a crash does not silently roll the policy back.
    """

    def __init__(self, model_dir: str | Path, *, device: str = "cpu", dtype: str = "float32", max_batch: int = 64,
                 max_model_len: int | None = None, extra_args: Sequence[str] = (), **kwargs: Any):
        kwargs.setdefault("model_name", Path(model_dir).name or "model")
        super().__init__(**kwargs)
        self.model_dir = Path(model_dir)
        self.device = device
        self.dtype = dtype
        self.max_batch = max_batch
        self.max_model_len = max_model_len
        self.extra_args = list(extra_args)
        self._weights_dir = self.model_dir

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "agentgym.policies.hf_server", "--model", str(self.model_dir),
               "--host", self.host, "--port", str(self.port), "--served-model-name", self.model_name,
               "--device", self.device, "--dtype", self.dtype, "--max-batch", str(self.max_batch)]
        if self.max_model_len:
            cmd += ["--max-model-len", str(self.max_model_len)]
        if self._weights_dir != self.model_dir:
            cmd += ["--weights", str(self._weights_dir), "--initial-version", str(self.version)]
        return cmd + self.extra_args

    async def load_weights(self, path: str | Path, timeout_s: float = 600.0) -> int:
        version = await super().load_weights(path, timeout_s)
        self._weights_dir = Path(path)
        return version


if __name__ == "__main__":
    main()
