"""Registering and making environments; third-party packages plug in through entry points.

``agentgym.register("agentgym/sql-v0", "agentgym.envs.sql:SqlEnv", max_turns=5)`` records an EnvSpec
and registers the same id with gymnasium, so ``gymnasium.make`` works too. Plug-in packages declare
``[project.entry-points."agentgym.envs"] name = "pkg.module:register_function"``; the function calls
``agentgym.register`` (with a lazy "module:Class" string, so listing envs imports nothing heavy).

``agentgym.suite("agentgym/sql-v0", dataset="spider", path=...)`` returns the task suite that
``make`` with the same kwargs would serve, without an episode-ready env (no browser, sandbox or database
worker): a spec's ``suite_loader`` builds it from the kwargs, and a plug-in that declares none is made,
asked for its suite and closed. Suites are cached per (id, kwargs).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import inspect
import threading
import warnings
from collections.abc import Callable, Coroutine, Hashable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import gymnasium

from agentgym.env import AsyncEnv
from agentgym.errors import UnknownEnvError, UnknownOptionError
from agentgym.tasks import TaskSuite

ENTRY_POINT_GROUP = "agentgym.envs"


SuiteLoader = Callable[..., TaskSuite]
"""Builds an env's task suite from the env's kwargs (all of them: it ignores those that do not shape the suite)."""


def _resolve(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """A callable as is, or the object a lazy "module:attr.path" string names (imported only now)."""
    if callable(target):
        return target
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class EnvSpec:
    """A registered env: id, entry point ("module:Class" or a callable), default kwargs, suite loader, origin."""

    id: str
    entry_point: str | Callable[..., AsyncEnv]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "agentgym"  # the distribution or module that registered it
    suite_loader: str | SuiteLoader | None = None  # "module:function" or a callable; None: ask a made env

    def load(self) -> Callable[..., AsyncEnv]:
        """Import the entry point (lazy strings are resolved only now)."""
        return _resolve(self.entry_point)

    def load_suite_loader(self) -> SuiteLoader | None:
        """Import the suite loader, or None when the env declares none."""
        return None if self.suite_loader is None else _resolve(self.suite_loader)


_REGISTRY: dict[str, EnvSpec] = {}
_plugins_loaded = False
_plugin_errors: dict[str, str] = {}


def register(id: str, entry_point: str | Callable[..., AsyncEnv], *, description: str = "",
             source: str | None = None, suite_loader: str | SuiteLoader | None = None, **kwargs: Any) -> EnvSpec:
    """Register an env under `id` (e.g. "agentgym/sql-v0") here and with gymnasium. Re-registering replaces.

    `suite_loader` ("module:function" or a callable taking the env kwargs) lets ``agentgym.suite`` list the
    tasks without making the env; the env's own ``load_suite`` should call the same function.
    """
    spec = EnvSpec(id=id, entry_point=entry_point, kwargs=dict(kwargs), description=description,
                   source=source or _caller_module(), suite_loader=suite_loader)
    _REGISTRY[id] = spec
    _forget_suites(id)  # a re-registered id may serve another suite
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
    options = {**s.kwargs, **kwargs}
    check_options(s, options)
    env = s.load()(**options)
    if env.spec is None:
        env.spec = gymnasium.spec(id) if id in gymnasium.registry else None
    return env


def accepted_options(s: EnvSpec) -> set[str] | None:
    """The keyword arguments the env's constructor takes, or None when it takes any (``**kwargs`` to the end).

    Follows ``**kwargs`` up the class hierarchy (``SqlEnv(**kwargs)`` -> ``ToolEnv(split=..., ...)``), so the
    answer is known without making the env.
    """
    target = s.load()
    inits = ([vars(k)["__init__"] for k in target.__mro__ if "__init__" in vars(k)] if isinstance(target, type)
             else [target])
    names: set[str] = set()
    for init in inits:
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):  # a builtin without a signature: nothing to check against
            return None
        names |= {n for n, p in params.items()
                  if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return names
    return None


def check_options(s: EnvSpec, options: Mapping[str, Any]) -> None:
    """Raise UnknownOptionError (a TypeError) listing the env's options when `options` holds one it does not take."""
    accepted = accepted_options(s)
    unknown = sorted(set(options) - accepted) if accepted is not None else []
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise UnknownOptionError(f"{s.id} has no option{plural} {', '.join(map(repr, unknown))}; "
                                 f"its options are: {', '.join(sorted(accepted or ()))}")


# --- task suites without episode-ready envs -------------------------------------------------------

_SUITES: dict[tuple[str, Hashable], tuple[dict[str, Any], TaskSuite]] = {}
_SUITES_LOCK = threading.Lock()


def _freeze(value: Any) -> Hashable:
    """A hashable cache key for an option value: containers by content, anything unhashable by identity."""
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_freeze(v) for v in value]
        return (type(value).__name__, tuple(sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items))
    try:
        hash(value)
    except TypeError:  # e.g. a datasets.Dataset given as rows=: the cache entry keeps it alive, so its id is stable
        return ("id", id(value))
    return (type(value).__name__, value)


def _prepare(id: str, kwargs: Mapping[str, Any]) -> tuple[EnvSpec, dict[str, Any], tuple[str, Hashable]]:
    s = spec(id)
    options = {**s.kwargs, **kwargs}
    check_options(s, options)  # the same error as make() gives, before anything is built
    return s, options, (id, _freeze(options))


def _remember(key: tuple[str, Hashable], options: dict[str, Any], loaded: TaskSuite) -> TaskSuite:
    if not isinstance(loaded, TaskSuite):
        raise TypeError(f"the suite loader of {key[0]} returned {type(loaded).__name__}, not a TaskSuite")
    with _SUITES_LOCK:  # two callers racing on one key both get the first suite stored
        return _SUITES.setdefault(key, (options, loaded))[1]


def _cached(key: tuple[str, Hashable]) -> TaskSuite | None:
    with _SUITES_LOCK:
        hit = _SUITES.get(key)
    return hit[1] if hit else None


def _forget_suites(id: str) -> None:
    with _SUITES_LOCK:
        for key in [k for k in _SUITES if k[0] == id]:
            del _SUITES[key]


async def _suite_of_made_env(id: str, options: dict[str, Any]) -> TaskSuite:
    """The fallback for an env without a suite loader: make it, ask for its suite, close it."""
    env = make(id, **options)
    try:
        return await env.aload_suite()
    finally:
        await env.aclose()


def _run_in_fresh_loop(coro: Coroutine[Any, Any, TaskSuite]) -> TaskSuite:
    """Run `coro` to completion on a new event loop in a helper thread (works inside a running loop too)."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="agentgym-suite") as pool:
        return pool.submit(asyncio.run, coro).result()


def suite(id: str, **kwargs: Any) -> TaskSuite:
    """The task suite that ``make(id, **kwargs)`` serves, built without an episode-ready env; cached per kwargs.

    Unknown kwargs raise the UnknownOptionError that ``make`` raises. Blocks while the suite is built (seconds on
    first use for generated suites); in async code use ``await asuite(...)``.
    """
    s, options, key = _prepare(id, kwargs)
    hit = _cached(key)
    if hit is not None:
        return hit
    loader = s.load_suite_loader()
    loaded = loader(**options) if loader is not None else _run_in_fresh_loop(_suite_of_made_env(id, options))
    return _remember(key, options, loaded)


async def asuite(id: str, **kwargs: Any) -> TaskSuite:
    """``suite`` for async code: the loader runs in a worker thread, so the event loop is never blocked."""
    s, options, key = _prepare(id, kwargs)
    hit = _cached(key)
    if hit is not None:
        return hit
    loader = s.load_suite_loader()
    loaded = (await asyncio.to_thread(loader, **options) if loader is not None
              else await _suite_of_made_env(id, options))
    return _remember(key, options, loaded)
