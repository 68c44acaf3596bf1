"""Gymnasium spaces for chat: observations are message lists plus fields, actions are assistant messages."""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from agentgym.messages import Action, Message, message_problem

_PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " \n"


def _random_text(rng: np.random.Generator, max_len: int = 40) -> str:
    n = int(rng.integers(0, max_len + 1))
    return "".join(_PRINTABLE[i] for i in rng.integers(0, len(_PRINTABLE), size=n))


class ChatObservationSpace(spaces.Space[dict]):
    """Observations: ``{"messages": [chat messages], **fields}``, each field checked by its own Space.

    ``fields`` maps a structured field name (e.g. ``turns_left``) to a gymnasium Space or to a Python type.
    """

    def __init__(self, fields: Mapping[str, spaces.Space | type | tuple[type, ...]] | None = None, seed: int | None = None):
        self.fields = dict(fields or {})
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def seed(self, seed: int | None = None) -> list[int]:
        """Seed this space and, deterministically from it, every field sub-space."""
        seeds = super().seed(seed)
        for i, check in enumerate(self.fields.values()):
            if isinstance(check, spaces.Space):
                check.seed(int(self.np_random.integers(2**31)) + i)
        return seeds

    def contains(self, x: Any) -> bool:
        if not isinstance(x, Mapping) or "messages" not in x:
            return False
        msgs = x["messages"]
        if not isinstance(msgs, list) or any(message_problem(m) is not None for m in msgs):
            return False
        if set(x.keys()) - {"messages"} - set(self.fields):
            return False
        for name, check in self.fields.items():
            if name not in x:
                return False
            value = x[name]
            if isinstance(check, spaces.Space):
                if not check.contains(value):
                    return False
            elif not isinstance(value, check):
                return False
        return True

    def sample(self, mask: Any = None, probability: Any = None) -> dict:
        obs: dict[str, Any] = {"messages": [{"role": "user", "content": _random_text(self.np_random)}]}
        for name, check in self.fields.items():
            if isinstance(check, spaces.Space):
                obs[name] = check.sample()
            else:
                kind = check[0] if isinstance(check, tuple) else check
                obs[name] = kind()
        return obs

    def __repr__(self) -> str:
        return f"ChatObservationSpace(fields={sorted(self.fields)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatObservationSpace) and other.fields.keys() == self.fields.keys()


ActionSampler = Callable[[np.random.Generator], Action]


class AssistantActionSpace(spaces.Space[Action]):
    """Actions: a string, or an assistant message dict with ``content`` and optional OpenAI ``tool_calls``.

    Everything the space contains is a well-typed message; whether its tool calls make sense is the env's
    business (malformed calls become observations). ``sample()`` draws from an env-provided sampler, so a
    random policy can be ``action_space.sample()`` for every env.
    """

    def __init__(self, tools: Sequence[Mapping[str, Any]] = (), sampler: ActionSampler | None = None,
                 max_length: int = 1_000_000, seed: int | None = None):
        self.tools = [dict(t) for t in tools]
        self.sampler = sampler
        self.max_length = max_length
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        if isinstance(x, str):
            return len(x) <= self.max_length
        if not isinstance(x, Mapping):
            return False
        if x.get("role", "assistant") != "assistant":
            return False
        return message_problem({"role": "assistant", **{k: v for k, v in x.items() if k != "role"}}) is None

    def sample(self, mask: Any = None, probability: Any = None) -> Action:
        if self.sampler is not None:
            return self.sampler(self.np_random)
        return default_sample(self.np_random, self.tools)

    def __repr__(self) -> str:
        return f"AssistantActionSpace(tools={[t['function']['name'] for t in self.tools if 'function' in t]})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AssistantActionSpace) and other.tools == self.tools


def _sample_value(rng: np.random.Generator, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        options = list(schema["enum"])
        return options[int(rng.integers(len(options)))]
    if kind == "integer":
        return int(rng.integers(-5, 100))
    if kind == "number":
        return float(np.round(rng.normal(0, 10), 3))
    if kind == "boolean":
        return bool(rng.integers(2))
    if kind == "array":
        return [_sample_value(rng, schema.get("items", {"type": "string"})) for _ in range(int(rng.integers(0, 3)))]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _sample_value(rng, v) for k, v in props.items()}
    return _random_text(rng, 20)


def default_sample(rng: np.random.Generator, tools: Sequence[Mapping[str, Any]]) -> Action:
    """A random action: free text, or a call of a random declared tool with schema-typed random arguments."""
    if not tools or rng.random() < 0.2:
        return _random_text(rng)
    fn = tools[int(rng.integers(len(tools)))]["function"]
    args = _sample_value(rng, fn.get("parameters", {"type": "object", "properties": {}}))
    call_id = f"call_{int(rng.integers(1 << 30)):x}"
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": call_id, "type": "function",
                            "function": {"name": fn["name"], "arguments": json.dumps(args)}}]}


def observation(messages: list[Message], **fields: Any) -> dict:
    """Build an observation dict (a fresh object each call, as gymnasium's checker demands)."""
    return {"messages": [dict(m) for m in messages], **fields}
