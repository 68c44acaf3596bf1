"""A policy that talks to any OpenAI-compatible ``/v1/chat/completions`` server (vLLM, or a hosted API)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from agentgym.errors import ContextOverflowError, PolicyError
from agentgym.policy import PolicyAction, PolicyObservation


# How OpenAI, vLLM and others word a prompt that no longer fits.
_CONTEXT_OVERFLOW = re.compile(r"context[_ ]length|maximum context|context window|too many tokens|prompt is too long",
                               re.IGNORECASE)


class _Retryable(Exception):
    """A 429 or 5xx answer, kept so the backoff can read Retry-After."""

    def __init__(self, response: httpx.Response):
        super().__init__(f"server answered {response.status_code}: {response.text[:300]}")
        self.response = response


class OpenAIChatPolicy:
    """Sends the conversation and the env's tools; returns the assistant message (with log-probs if asked).

    One ``httpx.AsyncClient`` (connection pool) is shared by all concurrent episodes; close it with
    ``await policy.aclose()`` or ``async with``.
    """

    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None, *, api_key: str | None = None,
                 temperature: float = 0.0, max_tokens: int = 1024, logprobs: bool = False,
                 use_tools: bool = True, timeout_s: float = 300.0, max_retries: int = 2,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0,
                 extra_body: Mapping[str, Any] | None = None):
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:8000/v1").rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.model = model or os.environ.get("AGENTGYM_MODEL") or "default"
        self.name = f"openai:{self.model}"
        key = api_key or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.logprobs = logprobs
        self.use_tools = use_tools
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.extra_body = dict(extra_body or {})
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers,
                                         timeout=httpx.Timeout(timeout_s, connect=10.0),
                                         limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))

    def request_body(self, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The JSON body sent for one turn."""
        body: dict[str, Any] = {"model": self.model, "messages": list(observation.messages),
                                "temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.use_tools and tools:
            body["tools"] = list(tools)
        if self.logprobs:
            body["logprobs"] = True
        if observation.seed is not None:
            body["seed"] = (observation.seed + observation.turn) % (2**31)
        body.update(self.extra_body)
        return body

    async def act(self, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]]) -> PolicyAction:
        body = self.request_body(observation, tools)
        last: Exception | None = None
        for attempt in range(1 + self.max_retries):
            if attempt:
                await asyncio.sleep(self._backoff(attempt, last))
            try:
                response = await self._client.post("/chat/completions", json=body)
            except httpx.TransportError as exc:  # connection refused, reset, timeouts
                last = exc
                continue
            if response.status_code >= 500 or response.status_code == 429:
                last = _Retryable(response)
                continue
            if response.status_code >= 400:
                text = response.text[:500]
                if _CONTEXT_OVERFLOW.search(text):
                    raise ContextOverflowError(f"the conversation exceeds the model's context: {text}")
                raise PolicyError(f"server refused the request ({response.status_code}): {text}")
            return self._parse(response.json())
        raise PolicyError(f"no answer from {self.base_url} after {1 + self.max_retries} tries: {last}")

    def _backoff(self, attempt: int, last: Exception | None) -> float:
        """Seconds before retry `attempt`: the server's Retry-After when given, else exponential with a cap."""
        if isinstance(last, _Retryable):
            after = last.response.headers.get("retry-after")
            if after:
                try:
                    return min(float(after), self.max_backoff_s)
                except ValueError:
                    pass
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)

    @staticmethod
    def _parse(data: Mapping[str, Any]) -> PolicyAction:
        try:
            choice = data["choices"][0]
            raw = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise PolicyError(f"malformed chat completion: {str(data)[:300]}") from exc
        message: dict[str, Any] = {"role": "assistant", "content": raw.get("content")}
        if raw.get("tool_calls"):
            # kept as sent, malformed entries included: the env answers them with an observation
            message["tool_calls"] = list(raw["tool_calls"])
        logprobs = None
        lp = choice.get("logprobs")
        content_lp = lp.get("content") if isinstance(lp, Mapping) else None
        if content_lp:
            logprobs = [float(t["logprob"]) for t in content_lp]
        return PolicyAction(message=message, logprobs=logprobs, finish_reason=choice.get("finish_reason"),
                            token_ids=choice.get("token_ids"), prompt_token_ids=data.get("prompt_token_ids"),
                            extra={"usage": data.get("usage")})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> OpenAIChatPolicy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
