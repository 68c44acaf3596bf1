"""Token-in/token-out policy: extends the episode's exact token ids each turn instead of re-tokenising text.

On the first turn the prompt is the chat template's rendering of the conversation (``apply_chat_template``
with tools and the generation prompt). On later turns it is ``context_token_ids`` (the previous prompt plus
the tokens the model generated, exactly as sampled) followed by the tokens of the new messages only: the
end of the assistant turn the template would write (``<|im_end|>\\n``, minus an eos the model already
produced) and the template's rendering of the new messages with the generation prompt. Prompts go to
``/v1/completions`` as token ids, so the trainer scores exactly the sampled tokens (no drift between
rollout and training from re-tokenisation).

Works against the built-in server (``policies/hf_server.py``) and vLLM; ``base_urls`` spreads requests
round-robin over several servers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from agentgym.errors import ContextOverflowError, PolicyError
from agentgym.extras import require
from agentgym.policies.chat_template import assistant_message_from_text
from agentgym.policies.openai_http import post_with_retries
from agentgym.policy import PolicyAction, PolicyObservation

_SENTINEL = "\x00agentgym-turn-end\x00"


class TokenPolicy:
    """Renders prompts with the model's own tokenizer and chat template; generates through ``/v1/completions``.

    ``version_source`` gives the weights version for servers that do not report ``model_version`` (vLLM).
    Requests that never reached a server are retried with backoff (a server restarting); a request whose
    answer was lost raises PolicyError unless ``retry_lost`` (the engine then retries the episode).
    Close with ``await policy.aclose()`` or ``async with``.
    """

    name = "token"

    def __init__(self, model_dir: str | Path, base_urls: Sequence[str] | str = ("http://127.0.0.1:8000/v1",), *,
                 model: str | None = None, temperature: float = 1.0, top_p: float = 1.0, max_tokens: int = 256,
                 max_model_len: int | None = None, stop: Sequence[str] | None = None, use_tools: bool = True,
                 version_source: Callable[[], int] | None = None, timeout_s: float = 300.0, max_retries: int = 2,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, retry_lost: bool = False, tokenizer: Any = None,
                 extra_body: Mapping[str, Any] | None = None):
        transformers = require("transformers", "serve")
        self.model_dir = Path(model_dir)
        self.tokenizer = tokenizer or transformers.AutoTokenizer.from_pretrained(self.model_dir)
        if max_model_len is None:
            config = transformers.AutoConfig.from_pretrained(self.model_dir)
            max_model_len = int(getattr(config, "max_position_embeddings", 2048))
        self.max_model_len = max_model_len
        self.model = model or self.model_dir.name
        self.name = f"token:{self.model}"
        self.temperature, self.top_p, self.max_tokens = temperature, top_p, max_tokens
        self.stop = list(stop or [])
        self.use_tools = use_tools
        self.version_source = version_source
        self.retry = {"max_retries": max_retries, "backoff_s": backoff_s, "max_backoff_s": max_backoff_s,
                      "retry_lost": retry_lost}
        self.extra_body = dict(extra_body or {})
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("TokenPolicy needs at least one base URL")
        self._clients = [httpx.AsyncClient(base_url=self._v1(u), timeout=httpx.Timeout(timeout_s, connect=10.0),
                                           limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
                         for u in urls]
        self._next_client = itertools.cycle(range(len(self._clients)))
        self._turn_end = self._assistant_turn_end()

    @staticmethod
    def _v1(url: str) -> str:
        url = url.rstrip("/")
        return url if url.endswith("/v1") else url + "/v1"

    # --- prompt construction ---------------------------------------------------------------------
    def render_text(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None,
                    add_generation_prompt: bool) -> str:
        """The chat template's text for `messages` (and `tools` when the policy uses tools)."""
        return self.tokenizer.apply_chat_template(list(messages), tools=list(tools) if tools else None,
                                                  add_generation_prompt=add_generation_prompt, tokenize=False)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _assistant_turn_end(self) -> str:
        """What the template writes after an assistant message's content (ChatML: ``<|im_end|>\\n``)."""
        text = self.render_text([{"role": "user", "content": "x"}, {"role": "assistant", "content": _SENTINEL}],
                                None, False)
        return text.split(_SENTINEL, 1)[1] if _SENTINEL in text else ""

    def _bridge(self, context: Sequence[int]) -> str:
        """The end of the previous assistant turn that the model did not generate itself."""
        eos = self.tokenizer.eos_token
        if context and eos and context[-1] == self.tokenizer.eos_token_id and self._turn_end.startswith(eos):
            return self._turn_end[len(eos):]
        return self._turn_end

    def build_prompt(self, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]]) -> list[int]:
        """Prompt ids: the template's rendering on the first turn, else context + tokens of the new messages."""
        messages = list(observation.messages)
        tools = tools if self.use_tools else None
        context = observation.context_token_ids
        last_assistant = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        if context is None or last_assistant is None:
            return self.encode(self.render_text(messages, tools, True))
        before = self.render_text(messages[:last_assistant + 1], tools, False)
        full = self.render_text(messages, tools, True)
        if not full.startswith(before):  # a template that rewrites history: no chaining possible
            return self.encode(full)
        return list(context) + self.encode(self._bridge(context) + full[len(before):])

    # --- acting ----------------------------------------------------------------------------------
    def request_body(self, prompt: list[int], observation: PolicyObservation) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "prompt": prompt, "max_tokens": self.max_tokens,
                                "temperature": self.temperature, "top_p": self.top_p, "logprobs": 1,
                                "return_token_ids": True, "skip_special_tokens": True}
        if self.stop:
            body["stop"] = self.stop
        if observation.seed is not None:
            body["seed"] = (observation.seed + observation.turn) % (2**31)
        body.update(self.extra_body)
        return body

    async def act(self, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]]) -> PolicyAction:
        prompt = self.build_prompt(observation, tools)
        if len(prompt) + self.max_tokens > self.max_model_len:
            raise ContextOverflowError(f"prompt of {len(prompt)} tokens + max_tokens {self.max_tokens} exceeds "
                                       f"max_model_len {self.max_model_len}")
        client = self._clients[next(self._next_client)]
        data = await post_with_retries(client, "/completions", self.request_body(prompt, observation), **self.retry)
        try:
            choice = data["choices"][0]
            text = choice["text"]
            token_ids = [int(t) for t in choice["token_ids"]]
            logprobs = [float(x) for x in choice["logprobs"]["token_logprobs"]]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise PolicyError(f"malformed completion (does the server support return_token_ids?): "
                              f"{str(data)[:300]}") from exc
        if choice.get("prompt_token_ids") not in (None, prompt):
            raise PolicyError("the server changed the prompt token ids")
        if len(logprobs) != len(token_ids):
            raise PolicyError(f"{len(token_ids)} tokens but {len(logprobs)} log-probs")
        message, _ = assistant_message_from_text(text, observation.turn)
        version = data.get("model_version")
        if version is None and self.version_source is not None:
            version = self.version_source()
        return PolicyAction(message=message, token_ids=token_ids, logprobs=logprobs, prompt_token_ids=prompt,
                            finish_reason=choice.get("finish_reason"), model_version=version,
                            extra={"text": text, "usage": data.get("usage"), "server": str(client.base_url)})

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def __aenter__(self) -> TokenPolicy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
