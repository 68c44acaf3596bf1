"""Step-level batched generation for the built-in server: many requests share each forward pass.

A single worker thread owns the model. Requests that arrive while it is idle (within ``gather_ms`` of the
first one) form a batch: prompts are left-padded, prefilled in one forward pass, then every decoding step
is one forward pass over all unfinished sequences (a KV cache; finished rows are dropped from it). Requests
arriving during a batch wait for the next one. Weight reloads run between batches, so no sequence ever mixes
two weights versions.

Log-probs are ``log_softmax`` of the raw model logits (before temperature and top-p), as vLLM returns them
by default, so a trainer's plain forward pass over the same ids reproduces them.
"""

from __future__ import annotations

import asyncio
import queue
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    """How to generate one sequence (OpenAI request fields)."""

    max_tokens: int = 16
    temperature: float = 1.0       # 0 = greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()     # strings; the text is cut before the first one found
    top_logprobs: int = 0          # alternatives returned per position
    ignore_eos: bool = False


@dataclass
class Completion:
    """One generated sequence: ids, their log-probs, the text and why it stopped."""

    token_ids: list[int]
    logprobs: list[float]
    top_logprobs: list[list[tuple[int, float]]]
    text: str
    finish_reason: str             # "stop" (eos or stop string) | "length"
    model_version: int


@dataclass
class _Sequence:
    prompt_ids: list[int]
    params: SamplingParams
    future: Future[Completion]
    generator: Any = None
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top: list[list[tuple[int, float]]] = field(default_factory=list)
    text: str | None = None
    finish_reason: str | None = None


def sample_next(logits, temperature: float, top_p: float, generator) -> int:
    """One token from 1-D `logits`: argmax when temperature is 0, else temperature + nucleus (top-p) sampling."""
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p   # always keeps the top token
        probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1, generator=generator))


class BatchEngine:
    """Owns the model in a worker thread; ``await engine.generate(prompt_ids, params, n)`` from any event loop.

    Counters (``stats()``): forward passes, requests, sequences, generated tokens, batches, weights version.
    """

    def __init__(self, model: Any, tokenizer: Any, *, device: str = "cpu", max_batch: int = 64,
                 max_model_len: int | None = None, gather_ms: float = 5.0, version: int = 0):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_batch = max_batch
        self.max_model_len = max_model_len or int(getattr(model.config, "max_position_embeddings", 2048))
        self.gather_s = gather_ms / 1000
        self.version = version
        eos = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.counters = {"forward_passes": 0, "requests": 0, "sequences": 0, "generated_tokens": 0, "batches": 0,
                         "max_batch_seen": 0, "weight_loads": 0}
        self._queue: queue.Queue[_Sequence] = queue.Queue()
        self._control: queue.Queue[tuple[Any, Future[Any]]] = queue.Queue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agentgym-batch-engine", daemon=True)
        self._rng = random.Random()

    # --- public ------------------------------------------------------------------------------------
    def start(self) -> BatchEngine:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopped.set()
        self._thread.join(timeout_s)

    def stats(self) -> dict[str, int]:
        return {**self.counters, "model_version": self.version, "waiting": self._queue.qsize()}

    async def generate(self, prompt_ids: Sequence[int], params: SamplingParams, n: int = 1) -> list[Completion]:
        """`n` completions of one prompt (seeded choice i uses seed + i)."""
        import torch

        self.counters["requests"] += 1
        futures = []
        for i in range(n):
            gen = torch.Generator().manual_seed(params.seed + i if params.seed is not None
                                                else self._rng.getrandbits(62))
            fut: Future[Completion] = Future()
            self._queue.put(_Sequence(list(prompt_ids), params, fut, gen))
            futures.append(asyncio.wrap_future(fut))
        return list(await asyncio.gather(*futures))

    async def load_weights(self, path: str) -> int:
        """Load a ``save_pretrained`` checkpoint between batches; returns the new version."""
        fut: Future[int] = Future()
        self._control.put((("load_weights", path), fut))
        return await asyncio.wrap_future(fut)

    # --- worker thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        import torch

        with torch.inference_mode():
            while not self._stopped.is_set():
                self._run_control()
                try:
                    first = self._queue.get(timeout=0.05)
                except queue.Empty:
                    continue
                batch = [first]
                deadline = time.monotonic() + self.gather_s
                while len(batch) < self.max_batch:
                    try:
                        batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                    except queue.Empty:
                        break
                try:
                    self._run_batch(batch)
                except Exception as exc:  # a failed batch fails its requests, never the server
                    for seq in batch:
                        if not seq.future.done():
                            seq.future.set_exception(exc)

    def _run_control(self) -> None:
        while True:
            try:
                (kind, arg), fut = self._control.get_nowait()
            except queue.Empty:
                return
            try:
                if kind == "load_weights":
                    self._load_weights(arg)
                fut.set_result(self.version)
            except Exception as exc:
                fut.set_exception(exc)

    def _load_weights(self, path: str) -> None:
        from transformers import AutoModelForCausalLM

        dtype = next(self.model.parameters()).dtype
        fresh = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        self.model.load_state_dict(fresh.state_dict(), strict=True)  # same architecture, or it raises
        self.version += 1
        self.counters["weight_loads"] += 1

    def _forward(self, input_ids, attention_mask, position_ids, cache):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=cache, use_cache=True, logits_to_keep=1)
        self.counters["forward_passes"] += 1
        return out.logits[:, -1, :].float(), out.past_key_values

    def _run_batch(self, seqs: list[_Sequence]) -> None:
        import torch

        self.counters["batches"] += 1
        self.counters["sequences"] += len(seqs)
        self.counters["max_batch_seen"] = max(self.counters["max_batch_seen"], len(seqs))
        width = max(len(s.prompt_ids) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, s in enumerate(seqs):  # left padding: every prompt ends at the last column
            ids[row, width - len(s.prompt_ids):] = torch.tensor(s.prompt_ids)
            mask[row, width - len(s.prompt_ids):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits, cache = self._forward(ids, mask, positions, None)
        active = list(range(len(seqs)))          # indices into `seqs` of the rows still in the batch
        next_pos = positions[:, -1:] + 1
        while True:
            logp = torch.log_softmax(logits, dim=-1)
            chosen = []
            for row, i in enumerate(active):
                s = seqs[i]
                token = sample_next(logits[row], s.params.temperature, s.params.top_p, s.generator)
                chosen.append(token)
                s.token_ids.append(token)
                s.logprobs.append(float(logp[row, token]))
                if s.params.top_logprobs:
                    vals, idx = torch.topk(logp[row], s.params.top_logprobs)
                    s.top.append([(int(t), float(v)) for t, v in zip(idx, vals)])
                self._check_finished(s)
            self.counters["generated_tokens"] += len(active)
            keep = [row for row, i in enumerate(active) if seqs[i].finish_reason is None]
            for row, i in enumerate(active):
                if seqs[i].finish_reason is not None:
                    self._finish(seqs[i])
            if not keep:
                return
            if len(keep) < len(active):  # drop finished rows from the batch and its KV cache
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask, next_pos = mask[index], next_pos[index]
                chosen = [chosen[row] for row in keep]
                active = [active[row] for row in keep]
            step = torch.tensor(chosen, dtype=torch.long, device=self.device)[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            logits, cache = self._forward(step, mask, next_pos, cache)
            next_pos = next_pos + 1

    def _check_finished(self, s: _Sequence) -> None:
        token = s.token_ids[-1]
        if token in self.eos_ids and not s.params.ignore_eos:
            s.finish_reason = "stop"
        elif s.params.stop:
            text = self.tokenizer.decode(s.token_ids, skip_special_tokens=True)
            hits = [text.find(stop) for stop in s.params.stop if stop and stop in text]
            if hits:
                s.text, s.finish_reason = text[:min(hits)], "stop"
        if s.finish_reason is None and (len(s.token_ids) >= s.params.max_tokens
                                        or len(s.prompt_ids) + len(s.token_ids) >= self.max_model_len):
            s.finish_reason = "length"

    def _finish(self, s: _Sequence) -> None:
        if s.text is None:
            s.text = self.tokenizer.decode(s.token_ids, skip_special_tokens=True)
        if not s.future.done():
            s.future.set_result(Completion(s.token_ids, s.logprobs, s.top, s.text, s.finish_reason or "length",
                                           self.version))
