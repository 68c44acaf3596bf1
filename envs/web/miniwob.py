"""MiniWoB++ in a real browser (``agentgym/web-miniwob-v0``): the task HTML shipped in the ``miniwob`` package,
BrowserGym observations and actions, reset by re-seeding the task on the same page.

A task is (MiniWoB task, seed). OOD held-out = whole families of similar tasks (``-nodelay`` twins,
``click-tab-2*`` variants, every ``email-inbox-*`` ... stay together); IID held-out = a hash split of seeds.
Reward: 1.0 when the task's raw reward is positive (BrowserGym's binary reward), or the raw reward in
[-1, 1] with ``reward_mode="raw"``; never the wall-clock-decayed one. Scripted solvers (the oracle) exist
for the tasks in ``SOLVERS``.
"""

from __future__ import annotations

import datetime
import importlib.resources
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agentgym.envs.browser.host import guarded
from agentgym.envs.browser.network import App, NetworkPolicy
from agentgym.envs.web.env import BrowserEnv
from agentgym.errors import ToolError
from agentgym.messages import Action
from agentgym.tasks import SplitRule, Task, TaskSuite
from agentgym.tool_env import Outcome

SUITE_NAME = "web-miniwob-v0"
SUITE_VERSION = "v0"
SEEDS_PER_TASK = 50
MANIFEST = Path(__file__).with_name("manifests") / f"{SUITE_NAME}.json"
# Families held out whole (OOD). Every task with a scripted solver is in a training family, so solvers are
# measured on held-out seeds (IID) of their own task.
OOD_TEST = frozenset({"click-tab", "email-inbox", "book-flight", "choose-date", "use-autocomplete",
                      "click-collapsible", "read-table", "copy-paste", "social-media", "use-slider",
                      "count-shape", "find-word"})
OOD_DEV = frozenset({"click-menu", "drag-items", "search-engine", "enter-date", "navigate-tree"})
_PREFIX_FAMILIES = ("email-inbox", "social-media", "drag-items", "click-collapsible", "book-flight",
                    "use-autocomplete", "click-checkboxes", "choose-date", "click-tab", "login-user")
_SUFFIXES = ("-nodelay", "-transfer", "-soft", "-large", "-easy", "-medium", "-hard", "-nl-turk", "-nl", "-turk",
             "-popup", "-dynamic")
_TRANSFER = ("-transfer", "-nl-turk")  # tasks with a train/test data mode (core.setDataMode)


def html_root() -> Path:
    """The directory holding MiniWoB's ``miniwob/``, ``core/`` ... folders (from the installed package)."""
    from agentgym.extras import require

    require("miniwob", "web")
    return Path(str(importlib.resources.files("miniwob") / "html")).resolve()


def task_names() -> list[str]:
    """All MiniWoB task names shipped in the package."""
    return sorted(p.stem for p in (html_root() / "miniwob").glob("*.html"))


def family_of(task: str) -> str:
    """The similarity family of a task: its name without difficulty / delay / variant suffixes."""
    for prefix in _PREFIX_FAMILIES:
        if task.startswith(prefix):
            return prefix
    name, changed = task, True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if name.endswith(suffix):
                name, changed = name[: -len(suffix)], True
        stripped = re.sub(r"-\d+$", "", name)
        if stripped != name:
            name, changed = stripped, True
    return name


SPLIT_RULE = SplitRule(ood_test_families=OOD_TEST, ood_dev_families=OOD_DEV, iid_test_percent=10, iid_dev_percent=10)
_LOCK = threading.Lock()
_SUITES: dict[tuple[str, ...] | None, TaskSuite] = {}


def load_suite(tasks: Sequence[str] | None = None) -> TaskSuite:
    """The MiniWoB suite (optionally only some tasks); built once per process, thread-safe."""
    key = tuple(sorted(tasks)) if tasks else None
    with _LOCK:
        if key not in _SUITES:
            names = task_names()
            if key is not None:
                unknown = sorted(set(key) - set(names))
                if unknown:
                    raise ValueError(f"unknown MiniWoB tasks: {unknown}")
                names = list(key)
            items = [Task(kind="web-miniwob", family=family_of(n), template=n, params={"task": n, "seed": s},
                          group=f"{n}#{s}", data={"goal_hint": n.replace("-", " ")}, difficulty=None)
                     for n in names for s in range(SEEDS_PER_TASK)]
            name = SUITE_NAME if key is None else f"{SUITE_NAME}[{','.join(key)}]"
            _SUITES[key] = TaskSuite(name, SUITE_VERSION, items, SPLIT_RULE)
        return _SUITES[key]


def suite_for(*, tasks: Sequence[str] | None = None, **_options: Any) -> TaskSuite:
    """The suite ``MiniWobEnv(tasks=...)`` serves (no browser needed): the registry's loader and the env's."""
    return load_suite(tasks)


_HIDE_DISPLAY = """(() => {
  const style = () => {
    const s = document.createElement('style');
    s.textContent = '#reward-display, #click-canvas, #sync-task-cover { display: none !important; }';
    document.head.appendChild(s);
  };
  if (document.head) style(); else document.addEventListener('DOMContentLoaded', style);
})();"""

_RESET = """([seed, mode]) => {
  core.countdownTimer = function () {};   // the countdown only redraws a hidden display
  if (mode) core.setDataMode(mode);
  Math.seedrandom(seed);
  core.EPISODE_MAX_TIME = 1e9;            // episodes end by turn budget, never by wall clock
  core.startEpisodeReal();
  if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
  return core.getUtterance();
}"""

def goal_text(utterance: Any) -> str:
    """The task's own instruction text from ``core.getUtterance()``.

    Some tasks (``email-inbox-*-nl*`` outside test mode) return ``{"utterance": text, "fields": {...}}``;
    the fields are the task's answer key in structured form, so only the text is shown, as MiniWoB++ and
    BrowserGym do.
    """
    if isinstance(utterance, Mapping) and "utterance" in utterance:
        return str(utterance["utterance"])
    return str(utterance)


# Read defensively: after an agent navigates away from the task page, the globals are gone (= not done).
_STATE = ("() => (typeof WOB_DONE_GLOBAL === 'undefined') ? [false, 0, 'left the task page'] : "
          "[WOB_DONE_GLOBAL, WOB_RAW_REWARD_GLOBAL, WOB_REWARD_REASON === null ? '' : String(WOB_REWARD_REASON)]")

_ELEMENTS = """() => Array.from(document.querySelectorAll('body *')).map((el) => ({
  bid: el.getAttribute('bid'), tag: el.tagName.toLowerCase(), id: el.id || '', cls: el.className && el.className.baseVal === undefined ? el.className : '',
  type: el.getAttribute('type') || '', dtype: el.getAttribute('data-type') || '',
  text: (el.textContent || '').replace(/\\s+/g, ' ').trim(),
  label: el.closest('label') ? el.closest('label').textContent.replace(/\\s+/g, ' ').trim() : '',
  dialog: !!el.closest('.ui-dialog')}))"""


# --- scripted solvers (the oracle): utterance + element list -> a plan of actions --------------------

Plan = list[tuple[str, dict[str, Any]]]
Solver = Callable[[str, list[dict[str, Any]]], Plan]


def _quoted(utterance: str) -> list[str]:
    return re.findall(r'"([^"]*)"', utterance)


def _find(elements: list[dict[str, Any]], **want: Any) -> dict[str, Any]:
    for el in elements:
        if all((v(el[k]) if callable(v) else el[k] == v) for k, v in want.items()):
            return el
    raise LookupError(f"no element matching {want}")


def _click(el: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "click", {"bid": el["bid"]}


def _submit(elements: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    return _click(_find(elements, tag="button", text=lambda t: t.lower() in ("submit", "login")))


def _solve_click_checkboxes(u: str, els: list[dict[str, Any]]) -> Plan:
    chosen = re.match(r"Select (.*) and click Submit\.", u).group(1)  # type: ignore[union-attr]
    names = set() if chosen == "nothing" else {n.strip() for n in re.split(r",| and ", chosen) if n.strip()}
    return [*(_click(_find(els, tag="input", type="checkbox", label=n)) for n in sorted(names)), _submit(els)]


SOLVERS: dict[str, Solver] = {
    "click-test": lambda u, els: [_click(_find(els, tag="button"))],
    "click-test-2": lambda u, els: [_click(_find(els, tag="button", text=re.search(r"button (\w+)", u).group(1)))],
    "click-button": lambda u, els: [_click(_find(els, tag="button", text=_quoted(u)[0]))],
    "click-button-sequence": lambda u, els: [_click(_find(els, tag="button", text="ONE")),
                                             _click(_find(els, tag="button", text="TWO"))],
    "click-link": lambda u, els: [_click(_find(els, tag="span", cls=lambda c: "alink" in c, text=_quoted(u)[0]))],
    "click-dialog": lambda u, els: [_click(_find(els, tag="button", cls=lambda c: "titlebar-close" in c))],
    "click-dialog-2": lambda u, els: [_click(
        _find(els, tag="button", cls=lambda c: "titlebar-close" in c) if _quoted(u)[0] == "x"
        else _find(els, tag="button", dialog=True, text=_quoted(u)[0]))],
    "click-widget": lambda u, els: [_click(_find(els, dtype=_quoted(u)[0]))],
    "click-option": lambda u, els: [
        _click(_find(els, tag="input", type="radio",
                     label=re.match(r"Select (.*) and click Submit\.", u).group(1))), _submit(els)],  # type: ignore[union-attr]
    "click-checkboxes": _solve_click_checkboxes,
    "focus-text": lambda u, els: [_click(_find(els, tag="input"))],
    "focus-text-2": lambda u, els: [_click(_find(els, tag="input", id="tt" + str(
        ["1st", "2nd", "3rd"].index(re.search(r"the (\w+) input", u).group(1)) + 1)))],  # type: ignore[union-attr]
    "enter-text": lambda u, els: [("fill", {"bid": _find(els, id="tt")["bid"], "value": _quoted(u)[0]}), _submit(els)],
    "enter-password": lambda u, els: [("fill", {"bid": _find(els, id="password")["bid"], "value": _quoted(u)[0]}),
                                      ("fill", {"bid": _find(els, id="verify")["bid"], "value": _quoted(u)[0]}),
                                      _submit(els)],
    "login-user": lambda u, els: [("fill", {"bid": _find(els, id="username")["bid"], "value": _quoted(u)[0]}),
                                  ("fill", {"bid": _find(els, id="password")["bid"], "value": _quoted(u)[1]}),
                                  _submit(els)],
    "choose-list": lambda u, els: [
        ("select_option", {"bid": _find(els, tag="select")["bid"],
                           "options": re.match(r"Select (.*) from the list", u).group(1)}),  # type: ignore[union-attr]
        _submit(els)],
}


class MiniWobEnv(BrowserEnv):
    """MiniWoB++ tasks with BrowserGym observations/actions; see the module docstring."""

    env_id = "agentgym/web-miniwob-v0"
    max_turns = 10
    default_subset = "miniwob_all"
    context_options = {"viewport": {"width": 500, "height": 340}, "locale": "en-US", "timezone_id": "UTC",
                       "reduced_motion": "reduce"}
    options_help = {
        "split": "task split: train | dev | test (default train)",
        "tasks": "only these MiniWoB task names (default: all 125+)",
        "reward_mode": "binary (default: 1 if the raw reward > 0) | raw (the task's reward in [-1, 1])",
        "action_subset": "miniwob_all (default) | miniwob_liu18 | webarena | all",
        "screenshot": "add a set-of-marks screenshot to each observation (default false)",
    }

    def __init__(self, *, tasks: Sequence[str] | None = None, reward_mode: str = "binary", **kwargs: Any):
        if reward_mode not in ("binary", "raw"):
            raise ValueError("reward_mode must be 'binary' or 'raw'")
        self.task_filter = tuple(tasks) if tasks else None
        self.reward_mode = reward_mode
        self._plan: Plan = []
        self._planned = False
        super().__init__(**kwargs)

    def load_suite(self) -> TaskSuite:
        return suite_for(tasks=self.task_filter)

    def network(self) -> tuple[NetworkPolicy, Mapping[str, App]]:
        return NetworkPolicy(file_roots=(str(html_root()),)), {}

    async def prepare_context(self, context: Any) -> None:
        timeout = self.browser_config.call_timeout_s
        await guarded(context.add_init_script(_HIDE_DISPLAY), timeout, "add_init_script(miniwob)")
        await guarded(context.clock.set_fixed_time(datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)),
                      timeout, "clock.set_fixed_time")

    async def start_task(self, task: Task, seed: int | None) -> str:
        name = task.params["task"]
        url = (html_root() / "miniwob" / f"{name}.html").as_uri()
        if self.page.url != url:
            await self.lease.call(self.page.goto(url, wait_until="load"), f"goto {name}")
        await self.lease.call(self.page.wait_for_function("() => typeof core !== 'undefined' && WOB_TASK_READY"),
                              "WOB_TASK_READY")
        mode = "test" if name.endswith(_TRANSFER) and self.suite.split_of(task.id) != "train" else None
        utterance = await self.lease.call(self.page.evaluate(_RESET, [task.params["seed"], mode]), "reset episode")
        self._plan = []
        self._planned = False
        return goal_text(utterance)

    async def check_outcome(self) -> Outcome | None:
        done, raw, reason = await self.lease.call(self.page.evaluate(_STATE), "read reward")
        if not done:
            return None
        raw = float(raw)
        reward = raw if self.reward_mode == "raw" else float(raw > 0)
        return Outcome(reward, raw > 0, {"raw_reward": raw})

    async def budget_outcome(self) -> Outcome:
        return Outcome(0.0, False, {"raw_reward": 0.0})

    async def oracle_action(self) -> Action | None:
        """The scripted solver's next action (privileged: reads the task's DOM); None without a solver."""
        if self.task is None or self.task.params["task"] not in SOLVERS:
            return None
        if not self._planned:
            elements = await self.lease.call(self.page.evaluate(_ELEMENTS), "read elements")
            try:
                self._plan = SOLVERS[self.task.params["task"]](self.goal, elements)
            except (LookupError, AttributeError, IndexError, ValueError) as exc:
                raise ToolError(f"the scripted solver found no plan: {exc}") from None
            self._planned = True
        if not self._plan:
            return "noop()"
        name, args = self._plan.pop(0)
        return f"{name}({', '.join(repr(v) for v in args.values())})"
