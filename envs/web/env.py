"""BrowserEnv: the ToolEnv base of every web env (a leased page, BrowserGym actions as tools, page observations).

A subclass provides the task suite, ``network()`` (allowed origins and in-process apps), ``start_task(task)``
(load or reset the page for an episode and return the goal), ``check_outcome()`` (read the reward after each
action) and optionally ``oracle_action()``. This base leases a context from the shared browser, recycles it,
dispatches the whitelisted actions (offered both as tools and as ``click('12')`` text), settles the page by
events, observes it, and turns broken machinery into recorded infrastructure failures.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from agentgym.env import EnvSnapshot, StepReturn
from agentgym.envs.browser.host import BrowserConfig
from agentgym.envs.browser.network import App, NetworkPolicy
from agentgym.envs.browser.session import BrowserSession, BrowserSessionMixin
from agentgym.envs.browser.settle import RequestTracker, install_settle, settle
from agentgym.envs.web.actions import ACTIONS, BrowserActions, subset
from agentgym.envs.web.observation import Observer, PageObservation
from agentgym.errors import ToolError
from agentgym.messages import Action, Message, image_part
from agentgym.python_calls import PythonCalls
from agentgym.spaces import ChatObservationSpace
from agentgym.tasks import Task
from agentgym.tool_calls import ToolCallParser
from agentgym.tool_env import Outcome, ToolEnv, ToolOutput
from agentgym.tools import TOOL_ATTRIBUTE, tool

SYSTEM_PROMPT = """You control a web browser to complete a task. Each observation shows the page's URL, the focused \
element and its accessibility tree, one element per line as [bid] role 'name'. Act with exactly one action per turn, \
written as a Python call with literal arguments, for example click('12') or fill('7', "some text"). Available actions:
{actions}
You have {max_turns} turns."""


class BrowserEnv(BrowserSessionMixin, ToolEnv):
    """Base class of browser envs; see the module docstring for what subclasses provide."""

    max_turns = 10
    max_calls_per_turn = 1       # BrowserGym's default: one action per step
    tool_timeout_s = 30.0
    default_subset: ClassVar[str] = "all"
    context_options: ClassVar[dict[str, Any]] = {"viewport": {"width": 800, "height": 600}, "locale": "en-US",
                                                  "timezone_id": "UTC", "reduced_motion": "reduce"}
    extra_tools: ClassVar[tuple[str, ...]] = ()   # env-specific tools offered next to the browser actions

    def __init__(self, *, action_subset: str | Sequence[str] | None = None, screenshot: bool = False,
                 browser: BrowserConfig | None = None, settle_cap_ms: float = 300.0,
                 action_timeout_ms: float = 1000.0, tool_parsers: Sequence[str | ToolCallParser] | None = None,
                 **kwargs: Any):
        self.action_names = subset(action_subset or self.default_subset)
        offered = (*self.action_names, *self.extra_tools)
        schemas = [getattr(getattr(type(self), n), TOOL_ATTRIBUTE).schema() for n in offered]
        self.text_parser = PythonCalls.from_tools("browsergym", schemas)
        # every action is declared on the class; the subset offered is per instance
        super().__init__(tool_parsers=tool_parsers or ("openai", "hermes", self.text_parser, *self.more_parsers()),
                         offered_tools=offered, **kwargs)
        self.observation_space = ChatObservationSpace({
            "turns_left": spaces.Discrete(self.max_turns + 1), "url": str, "focused_element_bid": str,
            "last_action_error": str})
        self.screenshot = screenshot
        self.browser_config = browser or BrowserConfig()
        self.settle_cap_ms = settle_cap_ms
        self.action_timeout_ms = action_timeout_ms
        self.browser_session = BrowserSession(self.browser_config)
        self._observer: Observer | None = None
        self._tracker: RequestTracker | None = None
        self.actions: BrowserActions | None = None
        self.last_obs: PageObservation | None = None
        self.last_action_error = ""
        self.history: list[tuple[str, dict[str, Any]]] = []   # executed (action, arguments), for replay
        self._episode_seed: int | None = None
        self._replaying = False

    # --- hooks ------------------------------------------------------------------------------------

    def more_parsers(self) -> tuple[ToolCallParser, ...]:
        """Extra action formats of a subclass (e.g. WebShop's search[...] / click[...])."""
        return ()

    def network(self) -> tuple[NetworkPolicy, Mapping[str, App]]:
        """The allowed origins and the in-process apps served to this env's pages."""
        raise NotImplementedError

    async def prepare_context(self, context: Any) -> None:
        """Extra per-context setup (init scripts) of a subclass."""

    async def start_task(self, task: Task, seed: int | None) -> str:
        """Load or reset the page for `task`; return the goal text."""
        raise NotImplementedError

    async def check_outcome(self) -> Outcome | None:
        """After each action: the outcome if the episode ended, else None."""
        return None

    # --- browser plumbing -------------------------------------------------------------------------

    async def _ensure_page(self) -> bool:
        """Lease a (new) context when there is none or the current one must be recycled; True if new."""
        if not self.browser_session.needs_lease:
            return False
        policy, apps = self.network()

        async def setup(context: Any) -> None:
            await policy.install(context, apps, self.browser_config.call_timeout_s)
            await install_settle(context, self.browser_config.call_timeout_s)
            await self.prepare_context(context)

        lease = await self.browser_session.renew(setup, **self.context_options)
        try:  # a page is usable only once everything attached to it is: commit them together
            tracker = RequestTracker(lease.page)
            observer = await Observer.attach(lease.context, lease.page, self.browser_config.call_timeout_s)
            actions = BrowserActions(lease, policy, self.action_timeout_ms)
        except BaseException:
            await self.browser_session.drop_lease()
            raise
        self._tracker, self._observer, self.actions = tracker, observer, actions
        return True

    async def settle(self) -> None:
        await settle(self.page, self._tracker, self.settle_cap_ms, self.browser_config.call_timeout_s)

    async def observe(self, reset_bids: bool = False) -> PageObservation:
        assert self._observer is not None
        self.last_obs = await self._observer.observe(screenshot=self.screenshot, reset_bids=reset_bids)
        return self.last_obs

    def _obs_content(self, obs: PageObservation, prefix: str = "") -> Any:
        text = prefix + obs.text(self.last_action_error or None)
        if obs.screenshot is None:
            return text
        return [{"type": "text", "text": text}, image_part(obs.screenshot)]

    # --- episode ----------------------------------------------------------------------------------

    def system_prompt(self) -> str:
        lines = [f"- {n}({', '.join(ACTIONS[n][1])}): {ACTIONS[n][0]}" for n in self.action_names]
        return SYSTEM_PROMPT.format(actions="\n".join(lines), max_turns=self.max_turns)

    async def begin_episode(self, task: Task) -> list[Message]:
        self.last_action_error = ""
        self.history = []
        await self._ensure_page()
        self.lease.episodes += 1
        assert self.actions is not None
        self.actions.chat = []
        goal = await self.start_task(task, self._episode_seed)
        await self.settle()
        obs = await self.observe(reset_bids=True)
        self.goal = goal
        return [{"role": "system", "content": self.system_prompt()},
                {"role": "user", "content": self._obs_content(obs, f"Goal: {goal}\n\n")}]

    async def _run_action(self, name: str, args: dict[str, Any]) -> ToolOutput:
        """Dispatch one whitelisted action, settle, check the outcome, observe."""
        assert self.actions is not None
        if not self._replaying:
            self.history.append((name, dict(args)))
        self.last_action_error = ""
        error: ToolError | None = None
        impl = getattr(self, "act_" + name, None) or getattr(self.actions, name)  # whitelisted names only
        try:
            await impl(**args)
        except ToolError as exc:
            error = exc
            self.last_action_error = str(exc)
        await self.settle()
        outcome = await self.check_outcome()
        obs = await self.observe()
        if error is not None and outcome is None:
            raise ToolError(f"{error}\n\n{obs.text()}")
        return ToolOutput(obs.text(self.last_action_error or None), outcome=outcome)

    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        self._episode_seed = seed
        obs, info = await super().areset(seed=seed, options=options)
        return self._with_fields(obs), info

    async def astep(self, action: Action) -> StepReturn:
        obs, reward, terminated, truncated, info = await super().astep(action)
        if info.get("infra_error"):
            self.browser_session.mark_broken()   # never reuse a context that just failed
        return self._with_fields(obs), reward, terminated, truncated, info

    def _with_fields(self, obs: dict) -> dict:
        page_obs = self.last_obs
        obs["url"] = page_obs.url if page_obs else ""
        obs["focused_element_bid"] = (page_obs.focused_bid or "") if page_obs else ""
        obs["last_action_error"] = self.last_action_error
        return obs

    async def aclose(self) -> None:
        await super().aclose()
        self._observer = None
        self.actions = None
        await self.browser_session.close()

    # --- random policy, snapshot ------------------------------------------------------------------

    def sample_action(self, rng: np.random.Generator) -> Action:
        """A random action of the offered subset on a random element of the current page, text or tool call."""
        bids = sorted(self.last_obs.elements, key=lambda b: (len(b), b)) if self.last_obs else ["0"]
        bids = bids or ["0"]
        name = self.action_names[int(rng.integers(len(self.action_names)))]
        words = ["hello", "submit", "ok", "search", "blue", "12", "yes"]
        values = {"bid": bids[int(rng.integers(len(bids)))], "button": "left",
                  "value": words[int(rng.integers(len(words)))], "options": words[int(rng.integers(len(words)))],
                  "key_comb": ["Enter", "Tab", "ArrowDown", "a"][int(rng.integers(4))],
                  "delta_x": 0.0, "delta_y": float(rng.integers(-300, 300)), "url": "http://example.com/",
                  "text": words[int(rng.integers(len(words)))], "reason": "no", "wait_ms": 0.0,
                  "x": float(rng.integers(0, 300)), "y": float(rng.integers(0, 300))}
        args = {p: values[p] for p in ACTIONS[name][1] if p in values}
        if rng.random() < 0.5:
            return f"{name}({', '.join(repr(v) for v in args.values())})"
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{int(rng.integers(1 << 30)):x}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}]}

    async def snapshot(self) -> EnvSnapshot:
        """The task, the reset seed and the executed actions: restore replays them on a fresh episode."""
        assert self.task is not None, "snapshot() needs a started episode"
        return EnvSnapshot(self.env_id, self.task.id, {
            "base": self._base_state(), "seed": self._episode_seed, "history": [[n, dict(a)] for n, a in self.history],
            "last_action_error": self.last_action_error})

    async def restore(self, snapshot: EnvSnapshot) -> None:
        if snapshot.env_id != self.env_id:
            raise ValueError(f"snapshot of {snapshot.env_id} cannot restore {self.env_id}")
        payload = snapshot.payload
        await self.areset(seed=payload["seed"], options={"task_id": snapshot.task_id})
        self._replaying = True
        try:
            for name, args in payload["history"]:
                try:
                    await self._run_action(name, dict(args))
                except ToolError:
                    pass  # the original step failed the same way
        finally:
            self._replaying = False
        self.history = [(n, dict(a)) for n, a in payload["history"]]
        self._load_base_state(payload["base"])
        self.last_action_error = payload["last_action_error"]


def _action_tool(name: str) -> Any:
    """A tool handler for one BrowserGym action: its schema comes from BrowserActions' signature."""
    method = getattr(BrowserActions, name)

    @functools.wraps(method)
    async def handler(self: BrowserEnv, **kwargs: Any) -> ToolOutput:
        return await self._run_action(name, kwargs)

    description, params = ACTIONS[name]
    return tool(description, params=params)(handler)


for _name in ACTIONS:  # every action is declared once, in actions.py; the env exposes each as a tool
    setattr(BrowserEnv, _name, _action_tool(_name))
