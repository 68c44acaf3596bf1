"""The shop environment (``agentgym/web-shop-v0``): find and buy what the instruction asks for, in a real browser.

Actions: the BrowserGym set (``click('12')``, ``fill(...)``, ... as text or tool calls) and WebShop's text
actions ``search[keywords]`` / ``click[value]`` (tools ``search`` and ``click_text``). The episode ends at
Buy Now; the reward is WebShop's (see ``reward.py``). Only ``http://shop.local`` is reachable.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from agentgym.envs.browser.network import App, NetworkPolicy
from agentgym.envs.web.env import BrowserEnv
from agentgym.envs.web.shop.app import ORIGIN, ShopApp
from agentgym.envs.web.shop.reward import purchase_reward
from agentgym.envs.web.shop.suite import ShopWorld, load_world
from agentgym.envs.web.shop.text_actions import WebShopText
from agentgym.errors import ToolError
from agentgym.messages import Action
from agentgym.tasks import Task, TaskSuite
from agentgym.tool_calls import ToolCallParser
from agentgym.tool_env import Outcome, ToolOutput
from agentgym.tools import tool

_BID_OF = "(sel) => { const el = document.querySelector(sel); return el ? el.getAttribute('bid') : null; }"
_CLICKABLES = """() => Array.from(document.querySelectorAll('a, button')).map((el) =>
  [el.getAttribute('bid'), (el.textContent || '').replace(/\\s+/g, ' ').trim().toLowerCase()])"""


class ShopEnv(BrowserEnv):
    """A WebShop-like store with generated products; see the module docstring."""

    env_id = "agentgym/web-shop-v0"
    max_turns = 15
    default_subset = "webarena"
    extra_tools = ("search", "click_text")
    options_help = {
        "split": "task split: train | dev | test (default train)",
        "action_subset": "webarena (default) | all | miniwob_all | miniwob_liu18; search[...]/click[...] always work",
        "screenshot": "add a set-of-marks screenshot to each observation (default false)",
    }

    def __init__(self, **kwargs: Any):
        self.app: ShopApp | None = None
        self._oracle_step = 0
        super().__init__(**kwargs)

    def more_parsers(self) -> tuple[ToolCallParser, ...]:
        return (WebShopText(),)

    def load_suite(self) -> TaskSuite:
        return self.world.suite

    @cached_property
    def world(self) -> ShopWorld:
        """Catalog, search index and goals shared by every episode (``load_world`` builds them once per process)."""
        return load_world()

    def network(self) -> tuple[NetworkPolicy, Mapping[str, App]]:
        if self.app is None:
            self.app = ShopApp(self.world.products, self.world.index)
        return NetworkPolicy(origins=(ORIGIN,)), {ORIGIN: self.app}

    async def start_task(self, task: Task, seed: int | None) -> str:
        assert self.app is not None
        self.app.purchase = None
        self._oracle_step = 0
        await self.lease.call(self.page.goto(ORIGIN + "/"), "goto shop")
        return f"WebShop. Instruction: {task.data['instruction']}"

    async def check_outcome(self) -> Outcome | None:
        assert self.app is not None and self.task is not None
        bought = self.app.purchase
        if bought is None:
            return None
        goal = self.world.goals[self.task.id]
        reward, components = purchase_reward(goal, self.app.by_asin[bought.asin], bought.options)
        return Outcome(reward, reward >= 1.0, components)

    # --- WebShop's text actions -------------------------------------------------------------------

    async def _bid_of(self, selector: str) -> str | None:
        return await self.lease.call(self.page.evaluate(_BID_OF, selector), "find element")

    @tool("WebShop's search[keywords]: search the shop (only from the search page).",
          params={"keywords": "what to search for"})
    async def search(self, keywords: str) -> ToolOutput:
        return await self._run_action("search", {"keywords": keywords})

    @tool("WebShop's click[value]: click the link or button whose text is value (case-insensitive).",
          params={"value": "the text of a link or button on the page"})
    async def click_text(self, value: str) -> ToolOutput:
        return await self._run_action("click_text", {"value": value})

    async def act_search(self, keywords: str) -> None:
        assert self.actions is not None
        box, button = await self._bid_of("#search_input"), await self._bid_of("#search_btn")
        if box is None or button is None:
            raise ToolError("search[...] is only available on the search page; use click[back to search] first")
        await self.actions.fill(box, keywords[:500])
        await self.actions.click(button)

    async def act_click_text(self, value: str) -> None:
        assert self.actions is not None
        wanted = " ".join(value.split()).lower()
        clickables = await self.lease.call(self.page.evaluate(_CLICKABLES), "list clickables")
        for bid, text in clickables:
            if text == wanted and bid is not None:
                await self.actions.click(bid)
                return
        shown = ", ".join(t for _, t in clickables[:30])
        raise ToolError(f"nothing to click with the text {value[:80]!r}; clickable here: {shown}")

    # --- oracle -----------------------------------------------------------------------------------

    async def oracle_action(self) -> Action | None:
        """Search the target's title, open it, choose the goal's options, buy (privileged: knows the target)."""
        if self.task is None:
            return None
        goal = self.world.goals[self.task.id]
        product = self.app.by_asin[goal.asin] if self.app else None
        assert product is not None
        plan: list[tuple[str, str, str | None]] = [
            ("fill", "#search_input", product.title), ("click", "#search_btn", None),
            ("click", f'[data-asin="{goal.asin}"]', None),
            *(("click", f'[data-option="{d}"][data-value="{v}"]', None) for d, v in goal.options.items()),
            ("click", "#buy_now", None)]
        if self._oracle_step >= len(plan):
            return "noop()"
        name, selector, value = plan[self._oracle_step]
        self._oracle_step += 1
        bid = await self._bid_of(selector)
        if bid is None:
            return "noop()"
        return f"fill({bid!r}, {value!r})" if name == "fill" else f"click({bid!r})"
