"""Registering and making environments; third-party packages plug in through entry points.

``agentgym.register("agentgym/sql-v0", "agentgym.envs.sql:SqlEnv", max_turns=5)`` records an EnvSpec
and registers the same id with gymnasium, so ``gymnasium.make`` works too. Plug-in packages declare
``[project.entry-points."agentgym.envs"] name = "pkg.module:register_function"``; the function calls
``agentgym.register`` (with a lazy "module:Class" string, so listing envs imports nothing heavy).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import gymnasium

from agentgym.env import AsyncEnv
from agentgym.errors import UnknownEnvError

ENTRY_POINT_GROUP = "agentgym.envs"


@dataclass(frozen=True)
class EnvSpec:
    """A registered env: id, entry point ("module:Class" or a callable), default kwargs, and where it came from."""

    id: str
    entry_point: str | Callable[..., AsyncEnv]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "agentgym"  # the distribution or module that registered it

    def load(self) -> Callable[..., AsyncEnv]:
        """Import the entry point (lazy strings are resolved only now)."""
        if callable(self.entry_point):
            return self.entry_point
        module, _, attr = self.entry_point.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


_REGISTRY: dict[str, EnvSpec] = {}
_plugins_loaded = False
_plugin_errors: dict[str, str] = {}


def register(id: str, entry_point: str | Callable[..., AsyncEnv], *, description: str = "",
             source: str | None = None, **kwargs: Any) -> EnvSpec:
    """Register an env under `id` (e.g. "agentgym/sql-v0") here and with gymnasium. Re-registering replaces."""
    spec = EnvSpec(id=id, entry_point=entry_point, kwargs=dict(kwargs), description=description,
                   source=source or _caller_module())
    _REGISTRY[id] = spec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium warns when an id is overridden
        gymnasium.register(id=id, entry_point=entry_point, kwargs=dict(kwargs),
                           disable_env_checker=False, order_enforce=True)
    return spec


def _caller_module() -> str:
    import inspect

    frame = inspect.currentframe()
    try:
        caller = frame.f_back.f_back if frame and frame.f_back else None
        return caller.f_globals.get("__name__", "?") if caller else "?"
    finally:
        del frame


def load_plugins(*, reload: bool = False) -> dict[str, str]:
    """Run every ``agentgym.envs`` entry point once; returns {entry point: error} for plug-ins that failed.

    A broken plug-in never breaks the others: its error is kept and shown by ``agentgym envs list``.
    """
    global _plugins_loaded
    if _plugins_loaded and not reload:
        return dict(_plugin_errors)
    _plugins_loaded = True
    _plugin_errors.clear()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()
            if callable(target):
                target()
        except Exception as exc:  # a plug-in's bug must not take the registry down
            _plugin_errors[f"{ep.name} = {ep.value}"] = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"agentgym plug-in {ep.name!r} ({ep.value}) failed to register: {exc}", stacklevel=2)
    return dict(_plugin_errors)


def registry() -> dict[str, EnvSpec]:
    """All registered env specs by id (plug-ins loaded)."""
    load_plugins()
    return dict(sorted(_REGISTRY.items()))


def spec(id: str) -> EnvSpec:
    """The spec of `id`, or UnknownEnvError listing close matches."""
    specs = registry()
    if id not in specs:
        import difflib

        close = difflib.get_close_matches(id, specs, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; registered: {', '.join(specs) or 'none'}"
        raise UnknownEnvError(f"no environment registered as {id!r}{hint}")
    return specs[id]


def make(id: str, **kwargs: Any) -> AsyncEnv:
    """Create the env registered as `id` (the raw AsyncEnv, no gymnasium wrappers); kwargs override defaults."""
    s = spec(id)
    env = s.load()(**{**s.kwargs, **kwargs})
    if getattr(env, "spec", None) is None:
        env.spec = gymnasium.spec(id) if id in gymnasium.registry else None
    return env
