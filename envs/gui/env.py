"""PhoneEnv: device control on PhoneOS, a simulated phone rendered in a mobile Chromium context.

Each episode builds the task's app data in a per-episode store, loads the phone at http://phone.local/, and
observes a stable screenshot plus AndroidWorld's UI element list after every action. Actions are AndroidWorld's
JSON actions (as tools, or as JSON text), or AitW / DigiRL / CogAgent formats parsed into them. The episode ends
with ``status`` or ``answer``; success is read from the committed app state (plus an answer check for
information tasks), and any other change to the device's data fails the task (collateral damage).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from gymnasium import spaces

from agentgym.env import EnvSnapshot, StepReturn
from agentgym.envs.browser.host import BrowserConfig
from agentgym.envs.browser.network import NetworkPolicy
from agentgym.envs.browser.session import BrowserSession, BrowserSessionMixin
from agentgym.envs.browser.settle import install_settle
from agentgym.envs.gui.actions import DIRECTIONS, AitwFormat, AndroidWorldFormat, CogAgentFormat, PhoneAction
from agentgym.envs.gui.actuation import Actuator, app_id
from agentgym.envs.gui.coords import Screen
from agentgym.envs.gui.device.server import HOME_URL, ORIGIN, PhoneServer
from agentgym.envs.gui.device.store import PhoneStore
from agentgym.envs.gui.observation import ScreenObservation, observe, stabilize
from agentgym.envs.gui.oracle import OraclePlayer
from agentgym.envs.gui.scoring import score
from agentgym.envs.gui.suite import pools_of, suite_for
from agentgym.envs.gui.tasks import TEMPLATES
from agentgym.errors import ToolError
from agentgym.messages import Action, Message, image_part
from agentgym.spaces import ChatObservationSpace
from agentgym.tasks import Task, TaskSuite
from agentgym.tool_calls import ToolCallParser
from agentgym.tool_env import Outcome, ToolEnv, ToolOutput
from agentgym.tools import tool

SYSTEM_PROMPT = """You operate an Android phone to complete a task. After each action you get a screenshot \
({width}x{height} pixels) and the list of UI elements on screen ("UI element i: {{...}}", with text, \
content_description, class_name, bbox_pixels and flags). Act with one action per turn, either as a tool call or as \
AndroidWorld JSON, e.g. {{"action_type": "click", "index": 3}}. Actions:
- click / long_press / double_tap: an element "index", or "x" and "y" in screenshot pixels
- input_text: "text" (and an element "index" or x/y; "clear_text": true replaces what is there); presses Enter after
- keyboard_enter, navigate_back, navigate_home, wait
- open_app: "app_name" (Contacts, Messages, Phone, Calendar, Notes, Expenses, Clock, Settings, Browser)
- scroll: "direction" up/down/left/right (content in that direction comes into view), optional element "index"
- swipe: "direction" of the finger, optional element "index" or x/y
- status: "goal_status" complete (the task is done) or infeasible; answer: "text" for questions (ends the task)
AitW DUAL_POINT actions (normalised [y, x] points) and `tap [[x,y]]` on a 0-1000 grid are also understood.
Off-screen list items are not listed: scroll to find them. The device's data is checked when you finish."""

_TARGET = {"index": "element index from the UI element list", "x": "x in screenshot pixels", "y": "y in screenshot pixels"}


class PhoneEnv(BrowserSessionMixin, ToolEnv):
    """The GUI environment (`agentgym/gui-phone-v0`)."""

    env_id: ClassVar[str] = "agentgym/gui-phone-v0"
    max_turns = 40                 # a cap; each task's budget is about twice its oracle's length
    max_calls_per_turn = 1
    tool_timeout_s = 15.0
    context_base: ClassVar[dict[str, Any]] = {"is_mobile": True, "has_touch": True, "locale": "en-US",
                                              "timezone_id": "UTC", "reduced_motion": "reduce"}

    def __init__(self, *, split: str = "train", max_turns: int | None = None, screen: Screen | None = None,
                 screenshot: bool = True, marks: bool = False, browser: BrowserConfig | None = None,
                 stabilize_cap_ms: float = 1000.0, tasks_per_template: int | None = None, transitions: bool = False,
                 tool_parsers: Sequence[str | ToolCallParser] | None = None, **kwargs: Any):
        self.screen = screen or Screen()
        parsers = tool_parsers or ("openai", "hermes", AndroidWorldFormat(self.screen), AitwFormat(self.screen),
                                   CogAgentFormat(self.screen))
        self._fixed_budget = max_turns is not None
        super().__init__(split=split, max_turns=max_turns, tool_parsers=parsers, **kwargs)
        self._turn_cap = self.max_turns
        self.observation_space = ChatObservationSpace({"turns_left": spaces.Discrete(self._turn_cap + 1)})
        self.screenshot, self.marks = screenshot, marks
        self.browser_config = browser or BrowserConfig()
        self.stabilize_cap_ms = stabilize_cap_ms
        # reduced motion by default; transitions=True plays the 180 ms screen transitions (observed once finished)
        self.context_options = {**self.context_base, "reduced_motion": "no-preference" if transitions else "reduce"}
        self.tasks_per_template = tasks_per_template
        self.server = PhoneServer()
        self.browser_session = BrowserSession(self.browser_config)
        self._actuator: Actuator | None = None
        self.last_obs: ScreenObservation | None = None
        self.store: PhoneStore | None = None
        self.initial_state: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.oracle: OraclePlayer | None = None
        self._episode_seed: int | None = None
        self._episodes = 0

    # --- suite and episode ------------------------------------------------------------------------

    def load_suite(self) -> TaskSuite:
        return suite_for(tasks_per_template=self.tasks_per_template)

    async def _ensure_page(self) -> None:
        if not self.browser_session.needs_lease:
            return
        policy, timeout = NetworkPolicy(origins=(ORIGIN,)), self.browser_config.call_timeout_s

        async def setup(context: Any) -> None:
            await policy.install(context, {ORIGIN: self.server}, timeout)
            await install_settle(context, timeout)

        lease = await self.browser_session.renew(
            setup, viewport={"width": self.screen.width, "height": self.screen.height},
            device_scale_factor=self.screen.dpr, **self.context_options)
        cdp = await lease.call(lease.context.new_cdp_session(lease.page), "CDP session")
        self._actuator = Actuator(lease, self.screen, cdp)

    async def begin_episode(self, task: Task) -> list[Message]:
        template = TEMPLATES[task.family]
        self.initial_state = template.initial_state(dict(task.params), pools_of(template))
        self.store = PhoneStore(self.initial_state)
        self.server.store = self.store
        if not self._fixed_budget:
            self.max_turns = min(self._turn_cap, int(task.data["budget"]))
        self.history = []
        self.oracle = OraclePlayer(template.plan(dict(task.params), self.initial_state))
        await self._ensure_page()
        self.lease.episodes += 1
        self._episodes += 1
        await self.lease.call(self.page.goto(f"{HOME_URL}?episode={self._episodes}", wait_until="load"), "load PhoneOS")
        obs = await self._observe()
        prompt = SYSTEM_PROMPT.format(width=self.screen.pixel_size[0], height=self.screen.pixel_size[1])
        return [{"role": "system", "content": prompt},
                {"role": "user", "content": self._content(f"Task: {task.data['goal']}\n\n", obs)}]

    async def _observe(self) -> ScreenObservation:
        timeout = self.browser_config.call_timeout_s
        await self.lease.call(stabilize(self.page, self.stabilize_cap_ms, timeout), "stabilize")
        self.last_obs = await self.lease.call(observe(self.page, self.screen, screenshot=self.screenshot,
                                                      marks=self.marks, timeout_s=timeout), "observe")
        return self.last_obs

    def _content(self, prefix: str, obs: ScreenObservation) -> Any:
        text = prefix + "UI elements:\n" + obs.text()
        if obs.screenshot is None:
            return text
        return [{"type": "text", "text": text}, image_part(obs.screenshot)]

    async def end_episode(self) -> None:
        self.server.store = None

    # --- actions ----------------------------------------------------------------------------------

    async def _act(self, action: PhoneAction, replay: bool = False) -> ToolOutput:
        """Carry out one canonical action, then observe the stable screen."""
        if not replay:
            self.history.append({"action_type": action.action_type, **action.arguments()})
        assert self._actuator is not None and self.last_obs is not None
        act, elements, kind = self._actuator, self.last_obs.elements, action.action_type
        error: ToolError | None = None
        try:
            if kind in ("click", "long_press", "double_tap"):
                point = act.target(elements, action.index, action.x, action.y)
                if kind == "long_press":
                    await act.long_press(point)
                else:
                    for _ in range(2 if kind == "double_tap" else 1):
                        await act.tap(point)
            elif kind == "input_text":
                await act.input_text(act.target(elements, action.index, action.x, action.y, required=False),
                                     action.text or "", bool(action.clear_text))
            elif kind in ("scroll", "swipe"):
                if action.direction not in DIRECTIONS:
                    raise ToolError(f"direction must be one of {', '.join(DIRECTIONS)}")
                point = act.target(elements, action.index, action.x, action.y, required=False)
                moved = await (act.scroll if kind == "scroll" else act.swipe)(point, action.direction)
                if not moved:
                    error = ToolError(f"nothing scrolled ({kind} {action.direction})")
            elif kind == "keyboard_enter":
                await act.enter()
            elif kind == "navigate_back":
                await act.system("back")
            elif kind == "navigate_home":
                await act.system("home")
            elif kind == "open_app":
                await act.system("open", app_id(action.app_name or ""))
        except ToolError as exc:
            error = exc
        obs = await self._observe()
        if error is not None and kind not in ("scroll", "swipe"):
            raise ToolError(f"{error}\n\nUI elements:\n{obs.text()}")
        note = f"({error})\n" if error else ""
        return ToolOutput(note + "UI elements:\n" + obs.text())

    @tool("Tap an element (by index) or a point (x, y in screenshot pixels).", params=_TARGET)
    async def click(self, index: int | None = None, x: float | None = None, y: float | None = None) -> ToolOutput:
        return await self._act(PhoneAction("click", index=index, x=_px(x), y=_px(y)))

    @tool("Touch and hold an element or a point.", params=_TARGET)
    async def long_press(self, index: int | None = None, x: float | None = None, y: float | None = None) -> ToolOutput:
        return await self._act(PhoneAction("long_press", index=index, x=_px(x), y=_px(y)))

    @tool("Tap an element or a point twice quickly.", params=_TARGET)
    async def double_tap(self, index: int | None = None, x: float | None = None, y: float | None = None) -> ToolOutput:
        return await self._act(PhoneAction("double_tap", index=index, x=_px(x), y=_px(y)))

    @tool("Type text into a field (tap it first by index or x/y; clear_text replaces its content), then press Enter.",
          params={**_TARGET, "text": "the text to type", "clear_text": "clear the field first"})
    async def input_text(self, text: str, index: int | None = None, x: float | None = None, y: float | None = None,
                         clear_text: bool = False) -> ToolOutput:
        return await self._act(PhoneAction("input_text", index=index, x=_px(x), y=_px(y), text=text,
                                           clear_text=clear_text or None))

    @tool("Press the keyboard's Enter key.")
    async def keyboard_enter(self) -> ToolOutput:
        return await self._act(PhoneAction("keyboard_enter"))

    @tool("Press the system Back button (closes the keyboard first).")
    async def navigate_back(self) -> ToolOutput:
        return await self._act(PhoneAction("navigate_back"))

    @tool("Press the system Home button.")
    async def navigate_home(self) -> ToolOutput:
        return await self._act(PhoneAction("navigate_home"))

    @tool("Launch an app by name.", params={"app_name": "Contacts, Messages, Phone, Calendar, Notes, Expenses, Clock, "
                                                        "Settings or Browser"})
    async def open_app(self, app_name: str) -> ToolOutput:
        return await self._act(PhoneAction("open_app", app_name=app_name))

    @tool("Scroll a list (by element index, or the screen's list) so content in `direction` comes into view.",
          params={"direction": "up, down, left or right", **_TARGET})
    async def scroll(self, direction: Literal["up", "down", "left", "right"], index: int | None = None,
                     x: float | None = None, y: float | None = None) -> ToolOutput:
        return await self._act(PhoneAction("scroll", index=index, x=_px(x), y=_px(y), direction=direction))

    @tool("Swipe a finger in `direction` (swiping up scrolls the content down).",
          params={"direction": "up, down, left or right", **_TARGET})
    async def swipe(self, direction: Literal["up", "down", "left", "right"], index: int | None = None,
                    x: float | None = None, y: float | None = None) -> ToolOutput:
        return await self._act(PhoneAction("swipe", index=index, x=_px(x), y=_px(y), direction=direction))

    @tool("Wait for the screen to update.")
    async def wait(self) -> ToolOutput:
        return await self._act(PhoneAction("wait"))

    @tool("Finish: 'complete' when the task is done, 'infeasible' if it cannot be done.",
          params={"goal_status": "complete or infeasible"}, terminal=True)
    async def status(self, goal_status: Literal["complete", "infeasible"]) -> ToolOutput:
        self.history.append({"action_type": "status", "goal_status": goal_status})
        outcome = self._score(None, feasible_claim=goal_status == "complete")
        return ToolOutput(f"Task marked {goal_status}.", outcome=outcome)

    @tool("Answer the task's question (ends the task).", params={"text": "the answer"}, terminal=True)
    async def answer(self, text: str) -> ToolOutput:
        self.history.append({"action_type": "answer", "text": text})
        return ToolOutput("Answer recorded.", outcome=self._score(text, feasible_claim=True))

    # --- scoring ----------------------------------------------------------------------------------

    def _score(self, answer: str | None, feasible_claim: bool) -> Outcome:
        assert self.task is not None and self.store is not None
        template = TEMPLATES[self.task.family]
        return score(template, dict(self.task.params), self.initial_state, self.store.state, answer, feasible_claim)

    async def budget_outcome(self) -> Outcome:
        outcome = self._score(None, feasible_claim=False)
        return Outcome(0.0, False, outcome.components)

    # --- gymnasium face ---------------------------------------------------------------------------

    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        self._episode_seed = seed
        return await super().areset(seed=seed, options=options)

    async def astep(self, action: Action) -> StepReturn:
        obs, reward, terminated, truncated, info = await super().astep(action)
        if info.get("infra_error"):
            self.browser_session.mark_broken()   # never reuse a context that just failed
        elif self.screenshot and not (terminated or truncated) and self.last_obs and self.last_obs.screenshot:
            obs["messages"].append({"role": "user", "content": [{"type": "text", "text": "Current screen:"},
                                                                image_part(self.last_obs.screenshot)]})
        return obs, reward, terminated, truncated, info

    async def aclose(self) -> None:
        await super().aclose()
        self._actuator = None
        await self.browser_session.close()

    # --- oracle, random policy, snapshot ------------------------------------------------------------

    async def oracle_action(self) -> Action | None:
        """The reference solver's next action, as AndroidWorld JSON text, read off the current screen."""
        if self._done or self.oracle is None or self.last_obs is None:
            return None
        action = self.oracle.next(self.last_obs)
        return None if action is None else "Action: " + action.to_json()

    def sample_action(self, rng: np.random.Generator) -> Action:
        """A random AndroidWorld action: mostly taps on listed elements or random points, sometimes typing,
        scrolling, keys, apps, and (rarely) finishing."""
        n = len(self.last_obs.elements) if self.last_obs else 1
        w, h = self.screen.pixel_size
        kinds = ["click"] * 6 + ["click_xy"] * 3 + ["input_text", "scroll", "swipe", "navigate_back", "navigate_home",
                                                    "open_app", "long_press", "keyboard_enter", "wait", "status", "answer"]
        kind = kinds[int(rng.integers(len(kinds)))]
        words = ["hello", "Ava Chen", "415-555-0100", "12:30", "Lunch", "yes", "42"]
        if kind in ("click", "long_press"):
            action = PhoneAction(kind, index=int(rng.integers(max(n, 1))))
        elif kind == "click_xy":
            action = PhoneAction("click", x=int(rng.integers(w)), y=int(rng.integers(h)))
        elif kind == "input_text":
            action = PhoneAction(kind, index=int(rng.integers(max(n, 1))), text=words[int(rng.integers(len(words)))])
        elif kind in ("scroll", "swipe"):
            action = PhoneAction(kind, direction=DIRECTIONS[int(rng.integers(4))])
        elif kind == "open_app":
            apps = ["Contacts", "Messages", "Phone", "Calendar", "Notes", "Expenses", "Clock", "Settings", "Browser"]
            action = PhoneAction(kind, app_name=apps[int(rng.integers(len(apps)))])
        elif kind == "status":
            action = PhoneAction(kind, goal_status="complete")
        elif kind == "answer":
            action = PhoneAction(kind, text=words[int(rng.integers(len(words)))])
        else:
            action = PhoneAction(kind)
        return action.to_json()

    async def snapshot(self) -> EnvSnapshot:
        """The task, the reset seed and the executed actions: restore replays them on a fresh episode."""
        assert self.task is not None, "snapshot() needs a started episode"
        return EnvSnapshot(self.env_id, self.task.id, {
            "base": self._base_state(), "seed": self._episode_seed, "history": copy.deepcopy(self.history),
            "oracle": self.oracle.position if self.oracle else None})

    async def restore(self, snapshot: EnvSnapshot) -> None:
        if snapshot.env_id != self.env_id:
            raise ValueError(f"snapshot of {snapshot.env_id} cannot restore {self.env_id}")
        payload = snapshot.payload
        await self.areset(seed=payload["seed"], options={"task_id": snapshot.task_id})
        for entry in payload["history"]:
            if entry["action_type"] in ("status", "answer"):
                continue
            try:
                await self._act(PhoneAction(**entry), replay=True)
            except ToolError:
                pass  # the original step failed the same way
        self.history = copy.deepcopy(payload["history"])
        self._load_base_state(payload["base"])
        if self.oracle is not None and payload["oracle"] is not None:
            self.oracle.restore(payload["oracle"])


def _px(v: float | None) -> int | None:
    return None if v is None else int(round(v))

