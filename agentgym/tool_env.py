"""ToolEnv: the multi-turn tool-use loop every env kind shares.

It parses actions into tool calls (any registered format), validates arguments against the tool
schemas, dispatches to ``@tool`` handlers, turns agent mistakes into observations, turns broken
machinery into recorded infrastructure failures, counts turns, and sets ``truncated`` at the budget.
An env kind only declares its tools, its task suite, the first messages of an episode and its outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from gymnasium import spaces

from agentgym.env import AsyncEnv
from agentgym.errors import InfrastructureError, ToolError, UnknownTaskError
from agentgym.info import CallInfo, InfraErrorInfo, LoopBlockInfo, StepInfo
from agentgym.messages import Action, Message
from agentgym.spaces import AssistantActionSpace, ChatObservationSpace, default_sample, observation
from agentgym.tasks import Task, TaskSuite
from agentgym.tool_calls import ParsedAction, ToolCall, ToolCallParser, ToolResult, parse_action, resolve_parsers
from agentgym.tools import TOOL_ATTRIBUTE, Tool
from agentgym.watchdog import BlockMeter, LoopLagMonitor, run_in_process, run_in_thread, run_metered

_log = logging.getLogger("agentgym.watchdog")


@dataclass(frozen=True)
class Outcome:
    """How an episode ended: the outcome reward, success, and named partial scores (never mixed in)."""

    reward: float
    success: bool
    components: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolOutput:
    """What a tool handler returns: text for the agent, an optional per-turn reward, and an outcome if it ends the episode."""

    content: str
    turn_reward: float = 0.0
    outcome: Outcome | None = None


@dataclass
class _Turn:
    """One turn in progress, handed from parsing to dispatch to finishing (see ``ToolEnv.astep``)."""

    parsed: ParsedAction | None         # None: the action had no tool call
    renderer: ToolCallParser            # answers in the format the agent used
    results: list[ToolResult]           # what the agent is told, in order
    calls: list[CallInfo] = field(default_factory=list)  # the calls that reached dispatch
    outcome: Outcome | None = None      # set by a terminal tool
    infra: InfraErrorInfo | None = None  # set when the env's machinery broke
    turn_reward: float = 0.0
    executed: int = 0                   # calls whose handler ran


ToolStepReturn = tuple[dict, float, bool, bool, StepInfo]


class ToolEnv(AsyncEnv):
    """Base class of tool-using envs. Subclasses provide:

    - ``@tool``-decorated handlers (return ``str`` or ``ToolOutput``; raise ``ToolError`` for the agent's
      mistakes; any other exception is an infrastructure failure). An ``async def`` runs on the event loop and
      must not block it (a stretch over ``tool_timeout_s`` without yielding counts as a timeout, one over
      ``loop_block_warn_s`` is logged and reported in ``info["loop_blocked"]``); a plain ``def`` runs in a worker
      thread; ``@tool(..., isolate="process")`` runs in a child process that a timeout kills;
    - ``load_suite()`` -> ``TaskSuite``;
    - ``begin_episode(task)`` -> the first messages (system prompt, task statement);
    - optionally ``budget_outcome()`` (when turns run out), ``end_episode()``, ``sample_action(rng)``,
      ``no_call_message()`` and ``extra_info()``.
    """

    max_turns: int = 5
    tool_parsers: Sequence[str | ToolCallParser] = ("openai", "hermes")
    max_calls_per_turn: int = 4
    tool_timeout_s: float = 30.0  # per call; max_calls_per_turn * this stays under the rollout's step timeout
    loop_block_warn_s: float = 0.5  # an async handler holding the event loop longer than this is reported
    remind_turns: bool = True

    def __init__(self, *, split: str = "train", max_turns: int | None = None,
                 tool_parsers: Sequence[str | ToolCallParser] | None = None, tool_timeout_s: float | None = None,
                 offered_tools: Sequence[str] | None = None):
        """``offered_tools`` restricts the declared tools to a named subset (e.g. a benchmark's action set)."""
        self.split = split
        if max_turns is not None:
            if max_turns < 1:
                raise ValueError("max_turns must be >= 1")
            self.max_turns = max_turns
        if tool_parsers is not None:
            self.tool_parsers = tuple(tool_parsers)
        if tool_timeout_s is not None:
            self.tool_timeout_s = tool_timeout_s
        self._parsers = resolve_parsers(self.tool_parsers)
        self._tool_specs: dict[str, Tool] = {}
        self._tool_methods: dict[str, str] = {}
        for klass in reversed(type(self).__mro__):
            for attr, value in vars(klass).items():
                spec = getattr(value, TOOL_ATTRIBUTE, None)
                if spec is not None:
                    self._tool_specs[spec.name] = spec
                    self._tool_methods[spec.name] = attr
        if offered_tools is not None:
            unknown = set(offered_tools) - set(self._tool_specs)
            if unknown:
                raise ValueError(f"{type(self).__name__} has no tools named {sorted(unknown)}")
            self._tool_specs = {n: s for n, s in self._tool_specs.items() if n in offered_tools}
            self._tool_methods = {n: m for n, m in self._tool_methods.items() if n in offered_tools}
        if not self._tool_specs:
            raise TypeError(f"{type(self).__name__} declares no @tool handlers")
        self.tools = [spec.schema() for spec in self._tool_specs.values()]
        self.observation_space = ChatObservationSpace({"turns_left": spaces.Discrete(self.max_turns + 1)})
        self.action_space = AssistantActionSpace(self.tools, sampler=self.sample_action)
        self._suite: TaskSuite | None = None
        self.task: Task | None = None
        self._loop_blocks: list[LoopBlockInfo] = []  # async handlers that held the loop this turn
        self._reset_counters()
        self._done = True

    # --- hooks for subclasses ---------------------------------------------------------------------

    def load_suite(self) -> TaskSuite:
        """Build (or load from cache) this env's task suite."""
        raise NotImplementedError

    async def begin_episode(self, task: Task) -> list[Message]:
        """Prepare state for `task` and return the first messages (system + user)."""
        raise NotImplementedError

    async def budget_outcome(self) -> Outcome:
        """The outcome when the turn budget runs out without a terminal tool call."""
        return Outcome(0.0, False)

    async def end_episode(self) -> None:
        """Per-episode cleanup (called before the next reset and on close)."""

    def sample_action(self, rng: np.random.Generator) -> Action:
        """A random action for this env's random policy (override for smarter random actions)."""
        return default_sample(rng, self.tools)

    # --- task selection ---------------------------------------------------------------------------

    @property
    def suite(self) -> TaskSuite:
        if self._suite is None:
            self._suite = self.load_suite()
        return self._suite

    async def aload_suite(self) -> TaskSuite:
        """The task suite, built off the event loop on first use (building can take seconds)."""
        if self._suite is None:
            self._suite = await asyncio.to_thread(self.load_suite)
        return self._suite

    def _choose_task(self, options: Mapping[str, Any] | None) -> Task:
        options = options or {}
        if isinstance(options.get("task"), Task):
            return options["task"]
        if options.get("task_id") is not None:
            return self.suite.get(str(options["task_id"]))
        split = options.get("split", self.split)
        pool = self.suite.tasks(split)
        if not pool:
            raise UnknownTaskError(f"split {split!r} of {self.suite.name} has no tasks")
        return pool[int(self.np_random.integers(len(pool)))]

    # --- the contract -----------------------------------------------------------------------------

    def _reset_counters(self) -> None:
        self.turn = 0
        self.invalid_actions = 0
        self.tool_errors = 0
        self.tool_calls = 0
        self.turn_rewards = 0.0

    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, StepInfo]:
        await super().areset(seed=seed)
        await self.aload_suite()
        task = self._choose_task(options)  # an unknown task id raises here, before the old episode is touched
        self._done = True
        if self.task is not None:
            await self.end_episode()
        self.task = task
        self._reset_counters()
        messages = await self.begin_episode(task)  # if this fails, the episode stays closed to astep()
        self._done = False
        return observation(messages, turns_left=self.max_turns), self._info()

    def _info(self, **extra: Any) -> StepInfo:
        """The info dict of a reset or step: the task, the counters, ``extra_info()`` and this step's `extra`."""
        task = self.task
        info: dict[str, Any] = {
            "env_id": self.env_id,
            "task_id": task.id if task else None,
            "family": task.family if task else None,
            "template": task.template if task else None,
            "difficulty": task.difficulty if task else None,
            "split": self.suite.split_of(task.id) if task else None,
            "turn": self.turn,
            "turns_left": self.max_turns - self.turn,
            "invalid_actions": self.invalid_actions,
            "tool_errors": self.tool_errors,
            "tool_calls": self.tool_calls,
        }
        info.update(self.extra_info())
        info.update(extra)
        return cast(StepInfo, info)  # a plain dict at runtime: records store it as JSON

    def extra_info(self) -> dict[str, Any]:
        """Env-specific entries added to every info dict (override; keep them deterministic)."""
        return {}

    async def astep(self, action: Action) -> ToolStepReturn:
        """One turn: parse the action into calls, dispatch them, then build the observation and info."""
        if self._done or self.task is None:
            raise RuntimeError("astep() called before areset() or after the episode ended; call areset() first")
        self.turn += 1
        self._loop_blocks = []
        turn = self._parse_turn(action)
        await self._dispatch_turn(turn)
        return await self._finish_turn(turn)

    def _parse_turn(self, action: Action) -> _Turn:
        """Read the action's tool calls; answer a missing call, unreadable calls and calls over the per-turn cap."""
        parsed = parse_action(action, self._parsers, self.turn)
        if parsed is None:
            return _Turn(None, self._parsers[0], [ToolResult(None, self.no_call_message(), True)])
        renderer = next((p for p in self._parsers if p.name == parsed.format), self._parsers[0])
        turn = _Turn(parsed, renderer, list(parsed.errors))
        for extra in parsed.calls[self.max_calls_per_turn:]:
            turn.results.append(ToolResult(extra, f"not run: at most {self.max_calls_per_turn} tool calls per turn",
                                           True))
        return turn

    async def _dispatch_turn(self, turn: _Turn) -> None:
        """Run the turn's calls in order; after an outcome or an infrastructure failure the rest are not run."""
        if turn.parsed is None:
            return
        for call in turn.parsed.calls[: self.max_calls_per_turn]:
            if turn.outcome is not None or turn.infra is not None:
                turn.results.append(ToolResult(call, "not run: the episode already ended", True))
                continue
            result, out, turn.infra = await self._dispatch(call)
            turn.calls.append({"name": call.name, "ok": not result.is_error})
            turn.results.append(result)
            if out is not None:
                turn.executed += 1
                turn.turn_reward += out.turn_reward
                turn.outcome = out.outcome

    async def _finish_turn(self, turn: _Turn) -> ToolStepReturn:
        """Update the counters, decide how the episode ends, and render the observation and info."""
        if turn.executed == 0 and turn.infra is None:  # no call reached a handler: the action itself was malformed
            self.invalid_actions += 1
        self.turn_rewards += turn.turn_reward
        outcome, infra, results = turn.outcome, turn.infra, turn.results
        terminated = outcome is not None
        truncated = False
        extra: StepInfo = {"format": turn.parsed.format if turn.parsed else None, "calls": turn.calls,
                           "turn_reward": turn.turn_reward}
        if self._loop_blocks:
            extra["loop_blocked"] = self._loop_blocks
        if infra is not None:
            truncated = True
            extra["infra_error"] = infra
            results = [ToolResult(None, "the environment failed (" + infra["message"] + "); this episode is not scored",
                                  True)]
        elif not terminated and self.turn >= self.max_turns:
            truncated = True
            outcome = await self.budget_outcome()
            extra["termination"] = "turn_budget"
        elif terminated:
            extra["termination"] = "submitted"
        if outcome is not None and infra is None:
            extra["outcome"] = {"reward": outcome.reward, "success": outcome.success}
            extra["reward_components"] = dict(outcome.components)
        messages = turn.renderer.render(results)
        if self.remind_turns and not (terminated or truncated):
            self._remind_turns_left(messages)
        self._done = terminated or truncated
        reward = turn.turn_reward + (outcome.reward if outcome is not None and infra is None else 0.0)
        obs = observation(messages, turns_left=self.max_turns - self.turn)
        return obs, float(reward), terminated, truncated, self._info(**extra)

    def _remind_turns_left(self, messages: list[Message]) -> None:
        """Tell the agent how many turns it has left, in the last user message (or a new one)."""
        left = self.max_turns - self.turn
        reminder = f"You have {left} turn{'s' if left != 1 else ''} left."
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "user" and isinstance(last.get("content"), str):
            last["content"] += "\n" + reminder
        else:
            messages.append({"role": "user", "content": reminder})

    def no_call_message(self) -> str:
        """What the agent is told when its message has no tool call (override for a protocol's own wording)."""
        names = ", ".join(self._tool_specs)
        return (f"No tool call found in your message. Call one of: {names} "
                f"(formats accepted: {', '.join(p.name for p in self._parsers)}).")

    async def _dispatch(self, call: ToolCall) -> tuple[ToolResult, ToolOutput | None, InfraErrorInfo | None]:
        """Run one call; returns (result for the agent, handler output if it ran, infra error if the env broke)."""
        self.tool_calls += 1  # every attempted call, so tool_errors / tool_calls is a rate
        spec = self._tool_specs.get(call.name)
        if spec is None:
            self.tool_errors += 1
            return ToolResult(call, f"unknown tool {call.name!r}; available: {', '.join(self._tool_specs)}", True), None, None
        args, problem = spec.validate(call.arguments)
        if problem:
            self.tool_errors += 1
            return ToolResult(call, problem, True), None, None
        handler = getattr(self, self._tool_methods[call.name])
        meter = BlockMeter()
        try:
            try:
                async with asyncio.timeout(self.tool_timeout_s):
                    out = await self._run_handler(spec, handler, args, meter)
            finally:
                self._check_loop_block(call.name, meter)
        except ToolError as exc:
            self.tool_errors += 1
            return ToolResult(call, str(exc), True), ToolOutput(str(exc)), None
        except TimeoutError:
            message = f"tool {call.name} did not finish within {self.tool_timeout_s} s"
            if meter.longest_s >= self.tool_timeout_s:
                message += (f" (its async handler blocked the event loop for {meter.longest_s:.1f} s: make it a plain "
                            "def, which runs in a worker thread, or use @tool(..., isolate='process'))")
            infra: InfraErrorInfo = {"type": "EnvTimeoutError", "message": message}
            return ToolResult(call, infra["message"], True), None, infra
        except InfrastructureError as exc:
            return ToolResult(call, str(exc), True), None, {"type": type(exc).__name__, "message": str(exc)}
        except Exception as exc:  # the env's own code broke: not the agent's fault
            return (ToolResult(call, "internal error", True), None,
                    {"type": type(exc).__name__, "message": f"{type(exc).__name__}: {exc}"[:500]})
        if isinstance(out, str):
            out = ToolOutput(out)
        if not isinstance(out, ToolOutput) or (spec.terminal and out.outcome is None):
            problem = (f"tool {call.name} returned {type(out).__name__}, expected str or ToolOutput"
                       if not isinstance(out, ToolOutput) else f"terminal tool {call.name} returned no outcome")
            return ToolResult(call, "internal error", True), None, {"type": "ContractError", "message": problem}
        return ToolResult(call, out.content, False), out, None

    async def _run_handler(self, spec: Tool, handler: Any, args: dict[str, Any], meter: BlockMeter) -> Any:
        """Run a handler where its declaration says (loop, worker thread or child process); see watchdog.py."""
        if spec.runs_in == "process":
            return await run_in_process(handler, args, name=spec.name)
        if spec.runs_in == "thread":
            return await run_in_thread(handler, args, name=spec.name)
        with LoopLagMonitor.for_running_loop().running(spec.name):
            return await run_metered(handler(**args), meter)

    def _check_loop_block(self, tool_name: str, meter: BlockMeter) -> None:
        """Report an async handler that held the event loop; one held past the tool timeout timed out."""
        if meter.longest_s < self.loop_block_warn_s:
            return
        self._loop_blocks.append({"tool": tool_name, "seconds": round(meter.longest_s, 3)})
        _log.warning("tool %s of %s blocked the event loop for %.2f s (every other episode on the loop waited); "
                     "make the handler a plain def (worker thread) or use @tool(..., isolate='process')",
                     tool_name, self.env_id, meter.longest_s)
        if meter.longest_s >= self.tool_timeout_s:
            raise TimeoutError  # the timeout could not fire while the loop was blocked: it counts all the same

    async def aclose(self) -> None:
        if self.task is not None:
            await self.end_episode()
        self.task = None
        self._done = True

    # --- snapshot helpers for subclasses that support it --------------------------------------------

    def _base_state(self) -> dict[str, Any]:
        return {"task_id": self.task.id if self.task else None, "turn": self.turn, "done": self._done,
                "invalid_actions": self.invalid_actions, "tool_errors": self.tool_errors,
                "tool_calls": self.tool_calls, "turn_rewards": self.turn_rewards}

    def _load_base_state(self, state: Mapping[str, Any]) -> None:
        self.task = self.suite.get(state["task_id"])
        self.turn = int(state["turn"])
        self._done = bool(state["done"])
        self.invalid_actions = int(state["invalid_actions"])
        self.tool_errors = int(state["tool_errors"])
        self.tool_calls = int(state["tool_calls"])
        self.turn_rewards = float(state["turn_rewards"])
