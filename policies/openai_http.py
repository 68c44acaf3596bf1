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


def backoff_delay(attempt: int, last: Exception | None, backoff_s: float, max_backoff_s: float) -> float:
    """Seconds before retry `attempt`: the server's Retry-After when given, else exponential with a cap."""
    if isinstance(last, _Retryable):
        after = last.response.headers.get("retry-after")
        if after:
            try:
                return min(float(after), max_backoff_s)
            except ValueError:
                pass
    return min(backoff_s * 2 ** (attempt - 1), max_backoff_s)


async def post_with_retries(client: httpx.AsyncClient, path: str, body: Mapping[str, Any], *, max_retries: int = 2,
                            backoff_s: float = 0.5, max_backoff_s: float = 30.0, retry_lost: bool = True) -> Any:
    """POST JSON and return the decoded answer, retrying transport errors, 429 and 5xx with backoff.

    ``retry_lost=False`` retries only requests that never reached the server (connection refused, pool or
    connect timeout): a request whose answer was lost (server died or timed out while working on it) raises
    PolicyError at once, so the rollout engine retries the whole episode instead of resending a request that
    may have brought the server down.

    A 4xx saying the prompt is too long raises ContextOverflowError; other 4xx and exhausted retries raise
    PolicyError (an infrastructure failure of the policy side). Shared by every HTTP policy.
    """
    last: Exception | None = None
    for attempt in range(1 + max_retries):
        if attempt:
            await asyncio.sleep(backoff_delay(attempt, last, backoff_s, max_backoff_s))
        try:
            response = await client.post(path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # never reached the server
            last = exc
            continue
        except httpx.TransportError as exc:  # sent, but the answer was lost: reset, server died, read timeout
            if not retry_lost:
                raise PolicyError(f"lost the answer from {client.base_url}: {type(exc).__name__}: {exc}") from exc
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
        try:
            return response.json()
        except ValueError as exc:
            raise PolicyError(f"the server's answer is not JSON: {response.text[:300]}") from exc
    raise PolicyError(f"no answer from {client.base_url} after {1 + max_retries} tries: {last}")


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
        data = await post_with_retries(self._client, "/chat/completions", self.request_body(observation, tools),
                                       max_retries=self.max_retries, backoff_s=self.backoff_s,
                                       max_backoff_s=self.max_backoff_s)
        return self._parse(data)

    def _backoff(self, attempt: int, last: Exception | None) -> float:
        """Seconds before retry `attempt` (see ``backoff_delay``)."""
        return backoff_delay(attempt, last, self.backoff_s, self.max_backoff_s)

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
