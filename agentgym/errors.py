"""Typed errors, so the rollout engine can tell the agent's mistakes from broken machinery."""

from __future__ import annotations


class AgentGymError(Exception):
    """Base class of every agentgym error."""


class ActionParseError(AgentGymError):
    """The agent's action could not be read as text or tool calls (becomes an observation, never raised out of a step)."""


class ToolError(AgentGymError):
    """A tool call was well-formed but failed for a reason the agent caused (bad SQL, missing file, ...).

    Raised inside tool handlers; the env turns it into an observation and the episode goes on.
    """


class InfrastructureError(AgentGymError):
    """The env's own machinery broke (worker died, browser crashed); recorded as such, never scored as reward 0."""


class EnvTimeoutError(InfrastructureError):
    """An env call did not finish within its timeout."""


class PolicyError(AgentGymError):
    """The policy failed to produce an action (server down, timeout); an infrastructure failure of the policy side."""


class ContextOverflowError(PolicyError):
    """The conversation no longer fits the model's context: the agent's episode ends as a (scored) failure."""


class MissingExtraError(AgentGymError, ImportError):
    """An optional dependency is missing; the message names the `pip install 'agentgym[extra]'` that provides it."""


class DatasetError(AgentGymError):
    """A user-supplied dataset is malformed; the message names the file, the entry and the field."""


class SplitLeakError(AgentGymError):
    """A benchmark was asked to evaluate on a split that the policy was trained on (or on the train split)."""


class UnknownEnvError(AgentGymError, KeyError):
    """No environment is registered under the requested id."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class UnknownOptionError(AgentGymError, TypeError):
    """An env was given a keyword argument its constructor does not take; the message lists the ones it does."""


class UnknownPolicyError(AgentGymError, KeyError):
    """No policy is installed under the requested name; the message lists them all."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownTaskError(AgentGymError, KeyError):
    """The requested task id is not in the env's task suite."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
