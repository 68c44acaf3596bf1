"""Async wrappers: behaviour composed around an env without changing it, like gymnasium's ``Wrapper``.

``AsyncWrapper(env)`` holds ``env``, forwards ``areset``/``astep``/``aclose`` and every member of the env
contract (``env_id``, ``tools``, ``suite``, ``spec``, spaces, ...), and delegates other public attributes
(``oracle_action``, ``task``, ...) to the wrapped env; ``unwrapped`` is the innermost env. A subclass
overrides only what it changes. Two wrappers ship here: ``TimeLimit`` and ``TransformReward``.
``as_async_env`` adapts a duck-typed env (``areset``/``astep``/``aclose`` but not an ``AsyncEnv``) to the
declared contract, so the core reads every env the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np

from agentgym.env import AsyncEnv, StepReturn
from agentgym.messages import Action

if TYPE_CHECKING:
    from agentgym.tasks import TaskSuite


CAPABILITIES = ("oracle_action", "snapshot", "restore")
"""The methods of the optional capabilities (``SupportsOracle``, ``SupportsSnapshot``) a wrapper passes on."""


class AsyncWrapper(AsyncEnv):
    """Wraps an AsyncEnv: forwards the contract and public attributes; subclasses override what they change."""

    def __init__(self, env: AsyncEnv):
        self.env = env
        self._action_space: gymnasium.Space | None = None       # set to override the wrapped env's
        self._observation_space: gymnasium.Space | None = None
        for name in CAPABILITIES:
            # Bound here, not only through __getattr__: since Python 3.12 isinstance() against a runtime Protocol
            # looks attributes up statically, so a capability reached by __getattr__ alone would not count.
            if not hasattr(type(self), name) and hasattr(env, name):
                setattr(self, name, getattr(env, name))

    def __getattr__(self, name: str) -> Any:
        """Public attributes the wrapper does not define come from the wrapped env (capabilities, task, ...)."""
        if name == "env" or name.startswith("_"):
            # private state is the wrapped env's own business; "env" missing means __init__ has not run yet
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} (private names are not forwarded)")
        return getattr(self.env, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}{self.env!r}>"

    # --- the step loop ----------------------------------------------------------------------------

    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Reset the wrapped env."""
        return await self.env.areset(seed=seed, options=options)

    async def astep(self, action: Action) -> StepReturn:
        """Step the wrapped env."""
        return await self.env.astep(action)

    async def aclose(self) -> None:
        """Close the wrapped env."""
        await self.env.aclose()

    # --- the contract, forwarded (each member means what AsyncEnv's docstring says) ------------------

    @property
    def unwrapped(self) -> AsyncEnv:  # type: ignore[override]
        """The innermost env (all wrappers removed)."""
        return self.env.unwrapped  # type: ignore[return-value]

    @property
    def env_id(self) -> str:  # type: ignore[override]
        return self.env.env_id

    @property
    def tools(self) -> Sequence[dict[str, Any]]:  # type: ignore[override]
        return self.env.tools

    @property
    def suite(self) -> TaskSuite | None:  # type: ignore[override]
        return self.env.suite

    async def aload_suite(self) -> TaskSuite:
        return await self.env.aload_suite()

    def task_axis(self, task_id: str) -> str | None:
        return self.env.task_axis(task_id)

    @property
    def options_help(self) -> Mapping[str, str]:  # type: ignore[override]
        return self.env.options_help

    @property
    def spec(self) -> Any:  # type: ignore[override]
        return self.env.spec

    @spec.setter
    def spec(self, value: Any) -> None:
        self.env.spec = value

    @property
    def metadata(self) -> dict[str, Any]:  # type: ignore[override]
        return self.env.metadata

    @property
    def render_mode(self) -> str | None:  # type: ignore[override]
        return self.env.render_mode

    @property
    def np_random(self) -> np.random.Generator:  # type: ignore[override]
        return self.env.np_random

    @property
    def action_space(self) -> gymnasium.Space:  # type: ignore[override]
        return self._action_space if self._action_space is not None else self.env.action_space

    @action_space.setter
    def action_space(self, space: gymnasium.Space) -> None:
        self._action_space = space

    @property
    def observation_space(self) -> gymnasium.Space:  # type: ignore[override]
        return self._observation_space if self._observation_space is not None else self.env.observation_space

    @observation_space.setter
    def observation_space(self, space: gymnasium.Space) -> None:
        self._observation_space = space


class TimeLimit(AsyncWrapper):
    """Truncates an episode after `max_steps` steps: ``truncated=True`` and ``info["termination"] == "time_limit"``.

    A step that ends the episode by itself keeps its own flags and info. A time-limited episode has no
    ``outcome`` in its info (it was cut short, not judged), so the rollout engine records it as unsuccessful.
    Snapshots taken through this wrapper do not include its step count.
    """

    def __init__(self, env: AsyncEnv, max_steps: int):
        if max_steps < 1:
            raise ValueError("max_steps must be >= 1")
        super().__init__(env)
        self.max_steps = max_steps
        self.elapsed_steps = 0

    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Reset the wrapped env and the step count."""
        self.elapsed_steps = 0
        return await self.env.areset(seed=seed, options=options)

    async def astep(self, action: Action) -> StepReturn:
        """Step the wrapped env; the `max_steps`-th step truncates an episode that has not ended."""
        obs, reward, terminated, truncated, info = await self.env.astep(action)
        self.elapsed_steps += 1
        if self.elapsed_steps >= self.max_steps and not (terminated or truncated):
            truncated = True
            info = {**info, "termination": "time_limit"}
        return obs, reward, terminated, truncated, info


class TransformReward(AsyncWrapper):
    """Applies `fn` to every step's reward (scaling, clipping, a step penalty); observations and info are unchanged."""

    def __init__(self, env: AsyncEnv, fn: Callable[[float], float]):
        super().__init__(env)
        self.fn = fn

    async def astep(self, action: Action) -> StepReturn:
        """Step the wrapped env and transform its reward."""
        obs, reward, terminated, truncated, info = await self.env.astep(action)
        return obs, float(self.fn(float(reward))), terminated, truncated, info


class _DuckTypedEnv(AsyncWrapper):
    """An env with ``areset``/``astep``/``aclose`` that does not subclass AsyncEnv, seen through the declared contract.

    The one place that reads such an env's optional members with defaults: the id falls back to the gymnasium
    spec's id, then the class name; tools to none; the suite to none.
    """

    @property
    def unwrapped(self) -> Any:  # type: ignore[override]
        return self.env

    @property
    def env_id(self) -> str:  # type: ignore[override]
        spec = getattr(self.env, "spec", None)
        return getattr(self.env, "env_id", None) or (spec.id if spec is not None else type(self.env).__name__)

    @property
    def tools(self) -> Sequence[dict[str, Any]]:  # type: ignore[override]
        return getattr(self.env, "tools", ())

    @property
    def suite(self) -> TaskSuite | None:  # type: ignore[override]
        return getattr(self.env, "suite", None)

    async def aload_suite(self) -> TaskSuite:
        loader = getattr(self.env, "aload_suite", None)
        return await loader() if loader is not None else await AsyncEnv.aload_suite(self)

    def task_axis(self, task_id: str) -> str | None:
        """The duck env's own axis lookup if it has one, else the suite's."""
        own = getattr(self.env, "task_axis", None)
        return own(task_id) if own is not None else AsyncEnv.task_axis(self, task_id)

    @property
    def options_help(self) -> Mapping[str, str]:  # type: ignore[override]
        return getattr(self.env, "options_help", {})

    @property
    def spec(self) -> Any:  # type: ignore[override]
        return getattr(self.env, "spec", None)

    @property
    def metadata(self) -> dict[str, Any]:  # type: ignore[override]
        return getattr(self.env, "metadata", AsyncEnv.metadata)

    @property
    def render_mode(self) -> str | None:  # type: ignore[override]
        return getattr(self.env, "render_mode", None)

    @property
    def action_space(self) -> gymnasium.Space | None:  # type: ignore[override]
        return self._action_space if self._action_space is not None else getattr(self.env, "action_space", None)

    @property
    def observation_space(self) -> gymnasium.Space | None:  # type: ignore[override]
        return (self._observation_space if self._observation_space is not None
                else getattr(self.env, "observation_space", None))


def as_async_env(env: Any) -> AsyncEnv:
    """`env` itself when it is an AsyncEnv; otherwise wrapped so that every declared member reads with its default."""
    return env if isinstance(env, AsyncEnv) else _DuckTypedEnv(env)
