"""The policy contract: ``async act(observation, tools) -> action``.

Small and stable on purpose. A policy gets the whole conversation so far (it may be shared by many
concurrent episodes, so it keeps no per-episode state of its own) and returns an assistant message,
optionally with the exact token ids and log-probs it generated (for training without re-tokenisation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gymnasium.spaces import Space

from agentgym.errors import UnknownPolicyError
from agentgym.messages import Action, Message, assistant_message


@dataclass(frozen=True)
class PolicyObservation:
    """What a policy sees at a turn: the conversation so far plus public episode facts.

    ``oracle_action`` is privileged information: the engine fills it only for policies that declare
    ``privileged = True`` (the oracle), never for a model. ``context_token_ids`` is the previous turn's
    ``prompt_token_ids + token_ids`` exactly as generated (None on the first turn or for text policies):
    a token policy extends it with the new observation's tokens instead of re-tokenising the history.
    """

    messages: Sequence[Message]
    turn: int
    episode_id: str
    env_id: str
    task_id: str
    action_space: Space | None = None
    seed: int | None = None
    oracle_action: Action | None = None
    context_token_ids: Sequence[int] | None = None


@dataclass
class PolicyAction:
    """An action plus what a trainer needs: generated token ids, their log-probs, the prompt ids."""

    message: Message
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    prompt_token_ids: list[int] | None = None
    finish_reason: str | None = None
    model_version: int | str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, action: Action | PolicyAction) -> PolicyAction:
        """Wrap a bare action (text or assistant dict) into a PolicyAction."""
        if isinstance(action, PolicyAction):
            return action
        return cls(message=assistant_message(action))


@runtime_checkable
class Policy(Protocol):
    """Anything with a name and ``async act(observation, tools)``; ``privileged`` asks for the oracle action."""

    name: str

    async def act(self, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]]) -> PolicyAction | Action: ...


def is_privileged(policy: object) -> bool:
    """Whether the engine should pass the env's reference action to this policy."""
    return bool(getattr(policy, "privileged", False))


POLICY_ENTRY_POINT_GROUP = "agentgym.policies"


def policy_names() -> list[str]:
    """Names of the policies installed through the ``agentgym.policies`` entry point group."""
    from importlib.metadata import entry_points

    return sorted(ep.name for ep in entry_points(group=POLICY_ENTRY_POINT_GROUP))


def unknown_policy_message(name: str, served: Sequence[str] = ()) -> str:
    """One line naming the unknown policy, the closest match and every choice (`served`: the CLI's model servers)."""
    import difflib

    choices = policy_names()
    close = difflib.get_close_matches(name, [*choices, *served], n=1)
    hint = f" did you mean {close[0]!r}?" if close else ""
    served_text = f"; with --model DIR: {', '.join(served)}" if served else ""
    return f"unknown policy {name!r};{hint} installed: {', '.join(choices) or 'none'}{served_text}"


def make_policy(name: str, **kwargs: Any) -> Policy:
    """Build the policy registered under `name` (e.g. "oracle", "random", "openai") with kwargs."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=POLICY_ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()(**kwargs)
    raise UnknownPolicyError(unknown_policy_message(name))


def model_label(backend: str, model: str | None) -> str:
    """How a run is named in results and ``compare``: the backend plus the model path as given (``hf:runs/sft/final``).

    A checkpoint directory's last component alone (``final``) cannot tell an SFT run from an RL run.
    """
    if not model:
        return backend
    path = Path(model)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            pass
    return f"{backend}:{path.as_posix() if path.exists() or '/' in model else model}"
