"""The declared shape of the ``info`` dict every env returns from ``areset`` and ``astep``.

``info`` stays a plain ``dict`` at runtime (episode records store it as JSON); ``StepInfo`` is the
``TypedDict`` that names its keys, so readers know what to expect and type checkers can follow it.
Every key is optional (``total=False``): an env that is not a ``ToolEnv`` sets only what it knows. An env
kind may add keys of its own through ``ToolEnv.extra_info()``; its module documents them.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Termination = Literal["submitted", "turn_budget", "time_limit"]
"""Why an episode ended, as the env sees it (the rollout engine adds its own: deadline, infra_error, ...)."""


class OutcomeInfo(TypedDict):
    """The outcome of a finished episode: its outcome reward and whether the task was solved."""

    reward: float
    success: bool


class InfraErrorInfo(TypedDict):
    """Broken machinery (not the agent's fault): the error's type name and message."""

    type: str
    message: str


class CallInfo(TypedDict):
    """One tool call of the turn that reached dispatch: the tool's name and whether it succeeded."""

    name: str
    ok: bool


class LoopBlockInfo(TypedDict):
    """An async tool handler that held the event loop this turn, and for how long."""

    tool: str
    seconds: float


class StepInfo(TypedDict, total=False):
    """Keys of the ``info`` dict of ``areset``/``astep`` (all optional; reset sets the task and counter keys)."""

    # --- the task (set on reset and every step) ---
    env_id: str                      # the registered id of the env that produced this info
    task_id: str | None              # the task being played
    family: str | None               # the task's family (schema, site, app, ...)
    template: str | None             # the generator template the task came from, if any
    difficulty: str | None           # the task's difficulty label, if any
    split: str | None                # the task's split in the suite: train / dev / test

    # --- counters (set on reset and every step) ---
    turn: int                        # steps taken in this episode
    turns_left: int                  # steps left before the turn budget truncates the episode
    invalid_actions: int             # turns whose action reached no tool handler (no or malformed call)
    tool_errors: int                 # tool calls that failed because of the agent (unknown tool, bad args, ToolError)
    tool_calls: int                  # tool calls attempted (tool_errors / tool_calls is a rate)

    # --- this step (astep only) ---
    format: str | None               # the tool-call format the action was parsed in (None: no call found)
    calls: list[CallInfo]            # the calls dispatched this turn, in order
    turn_reward: float               # the per-turn reward handlers gave this turn (outcome reward excluded)
    loop_blocked: list[LoopBlockInfo]  # async handlers that held the event loop this turn
    infra_error: InfraErrorInfo      # the env's own machinery broke: the episode is truncated and not scored

    # --- the end of an episode (terminating or truncating step only) ---
    termination: Termination         # why the episode ended
    outcome: OutcomeInfo             # the outcome reward and success
    reward_components: dict[str, float]  # named partial scores (reported, never mixed into the reward)

    # --- hints for trainers ---
    observation_tokens: Literal["env"]   # every observation token is env text: mask it out of the policy loss

