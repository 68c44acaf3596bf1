"""The environment contract: a gymnasium.Env whose real methods are async, and every member the core reads.

Subclasses implement ``areset``, ``astep`` and (if they hold resources) ``aclose``. The sync
``reset``/``step``/``close`` that gymnasium calls run those coroutines on a private event loop in a
helper thread, so ``gymnasium.make`` and ``gymnasium.utils.env_checker.check_env`` work unchanged and
the sync face also works inside a running event loop (notebooks).

Observations are ``{"messages": [new chat messages], **fields}`` (see ``agentgym.spaces``); actions are
assistant messages (text, or a dict with ``content`` and OpenAI ``tool_calls``). ``info`` is a plain dict
whose keys are declared by ``agentgym.info.StepInfo``: the task id, split, counters (invalid actions, tool
errors), ``reward_components`` and, when the env's own machinery broke, ``infra_error``: the episode then
ends with ``truncated=True`` and the rollout engine records an infrastructure failure instead of a score.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import gymnasium

from agentgym.errors import AgentGymError
from agentgym.messages import Action

if TYPE_CHECKING:
    from agentgym.tasks import TaskSuite

T = TypeVar("T")
log = logging.getLogger(__name__)
LOOP_SHUTDOWN_TIMEOUT_S = 60.0  # the private loop's loop-end cleanups (each bounded by agentgym.shutdown)
StepReturn = tuple[dict, float, bool, bool, dict]


class _LoopThread:
    """A private event loop on a daemon thread, so sync calls work whether or not a loop is running here."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="agentgym-env-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        """Close the loop's async generators (so ``agentgym.shutdown`` cleanups run in it), then stop it; idempotent."""
        if self.loop.is_closed():
            return
        if self.thread.is_alive():
            try:
                done = asyncio.run_coroutine_threadsafe(self.loop.shutdown_asyncgens(), self.loop)
                done.result(LOOP_SHUTDOWN_TIMEOUT_S)
            except Exception:  # a stuck cleanup must not keep close() from returning
                log.exception("shutting down the env's private event loop failed")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


class NoTaskSuiteError(AgentGymError):
    """The env has no task suite (it serves episodes without named tasks), so there is nothing to list or benchmark."""


class AsyncEnv(gymnasium.Env[dict, Action]):
    """Async gymnasium env for LLM agents.

    Methods a subclass implements:
      - ``await areset(seed=None, options=None) -> (obs, info)``: call ``await super().areset(seed=seed)``
        first (it seeds ``self.np_random``, gymnasium's one seeding rule). ``options`` may name a task
        (``{"task_id": ...}``) or a split (``{"split": ...}``).
      - ``await astep(action) -> (obs, reward, terminated, truncated, info)``: never raises on a malformed
        action; it answers with an observation saying what was wrong.
      - ``await aclose()``: release resources; safe to call twice.

    Members the core reads (declared here, so nothing probes for them):
      - ``env_id``: the registered id (a subclass sets it as a class attribute; otherwise the gymnasium
        spec's id, otherwise the class name).
      - ``tools``: the OpenAI function schemas the env accepts (empty: free-text actions).
      - ``suite``: the task suite (``agentgym.tasks.TaskSuite``), or None for an env without one;
        ``await aload_suite()`` returns it, loading it off the event loop where that is slow.
      - ``task_axis(task_id)``: the held-out axis of a task ("iid"/"ood"), or None.
      - ``options_help``: what each ``agentgym.make`` kwarg / reset option means, for ``agentgym envs show``.
      - ``observation_space``, ``action_space`` (None when the env declares none), ``spec``, ``metadata``,
        ``unwrapped``: gymnasium's.
    Optional capabilities: ``SupportsSnapshot`` (snapshot/restore for tree search) and ``SupportsOracle``
    (the task's reference next action, for the oracle policy and for tests). Behaviour that composes around
    an env (time limits, reward shaping, replay snapshots) goes in an ``agentgym.wrappers.AsyncWrapper``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    tools: Sequence[dict[str, Any]] = ()
    suite: TaskSuite | None = None
    options_help: ClassVar[Mapping[str, str]] = {}
    # gymnasium declares the spaces without a value; None here means "not declared" (ToolEnv always sets both)
    observation_space: gymnasium.Space | None = None  # type: ignore[assignment]
    action_space: gymnasium.Space | None = None  # type: ignore[assignment]

    _sync_runner: _LoopThread | None = None

    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Start an episode. Subclasses call ``await super().areset(seed=seed)`` and return (obs, info)."""
        gymnasium.Env.reset(self, seed=seed)
        return {"messages": []}, {}

    async def astep(self, action: Action) -> StepReturn:
        """Apply one assistant message; returns (obs, reward, terminated, truncated, info)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release resources (databases, browsers, sandboxes). Idempotent."""

    # --- what the core reads besides the step loop ------------------------------------------------

    @property
    def env_id(self) -> str:
        """The registered id; a subclass declares it as a class attribute (``env_id = "me/thing-v0"``)."""
        return self.__dict__.get("_env_id") or (self.spec.id if self.spec is not None else type(self).__name__)

    @env_id.setter
    def env_id(self, value: str) -> None:
        self.__dict__["_env_id"] = value

    async def aload_suite(self) -> TaskSuite:
        """The task suite (NoTaskSuiteError if none); an env whose suite is slow to build loads it off the loop here."""
        if self.suite is None:
            raise NoTaskSuiteError(f"{self.env_id} has no task suite (set `suite` or override aload_suite())")
        return self.suite

    def task_axis(self, task_id: str) -> str | None:
        """The held-out axis of `task_id` in this env's suite ("iid"/"ood"), or None (no suite, or no axis)."""
        return self.suite.axis_of(task_id) if self.suite is not None else None

    # --- the sync face gymnasium uses -------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._sync_runner is None:
            self._sync_runner = _LoopThread()
            # an env dropped without close() must not leak its loop thread
            weakref.finalize(self, self._sync_runner.stop)
        return self._sync_runner.run(coro)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:  # type: ignore[override]
        return self._run(self.areset(seed=seed, options=options))

    def step(self, action: Action) -> StepReturn:  # type: ignore[override]
        return self._run(self.astep(action))

    def close(self) -> None:
        runner = self._sync_runner
        self._sync_runner = None
        if runner is None:
            runner = _LoopThread()  # used only through the async API: still release its resources
        try:
            runner.run(self.aclose())
        finally:
            runner.stop()

    # --- async context manager --------------------------------------------------------------------

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@dataclass(frozen=True)
class EnvSnapshot:
    """An env state to branch from: JSON-able payload, tied to the env id and task it came from."""

    env_id: str
    task_id: str
    payload: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SupportsSnapshot(Protocol):
    """Capability: save the current episode state and return to it later (MCTS, rollouts from mid-episode).

    ``restore`` puts the env exactly where ``snapshot`` was taken: the same next observation and reward
    for the same next action. Envs that cannot do this natively are wrapped by a replay adapter.
    """

    async def snapshot(self) -> EnvSnapshot: ...

    async def restore(self, snapshot: EnvSnapshot) -> None: ...


@runtime_checkable
class SupportsOracle(Protocol):
    """Capability: the reference solution's next action from the current state (None when it has none)."""

    async def oracle_action(self) -> Action | None: ...
