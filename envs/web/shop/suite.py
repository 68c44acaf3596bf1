"""The shop's task suite: one task per generated goal, split by category subtree (OOD) and goal group (IID).

OOD test = the whole ``garden`` subtree, OOD dev = ``sports`` (their product types and attribute words never
appear in training). IID = a hash split over (product type, wanted attributes), so goals that differ only
in options, price or phrasing never straddle splits; held-out goals whose instruction is still a near-duplicate
of a training one (word 3-gram Jaccard >= 0.7) are dropped after generation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.envs.web.shop.app import SearchIndex
from agentgym.envs.web.shop.catalog import CATALOG_SEED, Goal, Product, build_catalog
from agentgym.tasks import SplitRule, Task, TaskSuite, near_duplicates

SUITE_NAME = "web-shop-v0"
SUITE_VERSION = "v0"
MANIFEST = Path(__file__).resolve().parent.parent / "manifests" / f"{SUITE_NAME}.json"
SPLIT_RULE = SplitRule(ood_test_families=frozenset({"garden"}), ood_dev_families=frozenset({"sports"}),
                       iid_test_percent=8, iid_dev_percent=8)
NEAR_DUPLICATE = 0.7


@dataclass(frozen=True)
class ShopWorld:
    """The catalog, its search index, goals by task id, and the suite."""

    products: list[Product]
    index: SearchIndex
    goals: dict[str, Goal]
    suite: TaskSuite


def goal_task(goal: Goal) -> Task:
    return Task(kind="web-shop", family=goal.category, template=goal.product_type,
                params={"asin": goal.asin, "attributes": list(goal.attributes), "options": dict(goal.options),
                        "price_upper": goal.price_upper},
                data={"instruction": goal.instruction},
                group=f"{goal.product_type}|{'+'.join(goal.attributes)}")


_LOCK = threading.Lock()
_WORLDS: dict[int, ShopWorld] = {}


def load_world(seed: int = CATALOG_SEED) -> ShopWorld:
    """Build (once per process and seed) the catalog, index and suite; thread-safe."""
    with _LOCK:
        if seed not in _WORLDS:
            products, goals = build_catalog(seed)
            tasks = {}
            for g in goals:
                task = goal_task(g)
                tasks[task.id] = (task, g)
            suite = TaskSuite(SUITE_NAME, SUITE_VERSION, [t for t, _ in tasks.values()], SPLIT_RULE)
            train = [t.data["instruction"] for t in suite.tasks("train")]
            held = suite.tasks("dev") + suite.tasks("test")
            for _, j, _ in near_duplicates(train, [t.data["instruction"] for t in held], threshold=NEAR_DUPLICATE):
                tasks.pop(held[j].id, None)
            suite = TaskSuite(SUITE_NAME, SUITE_VERSION, [t for t, _ in tasks.values()], SPLIT_RULE)
            _WORLDS[seed] = ShopWorld(products, SearchIndex(products), {k: g for k, (_, g) in tasks.items()}, suite)
        return _WORLDS[seed]


def suite_for(**_options: Any) -> TaskSuite:
    """The suite ``ShopEnv`` serves whatever its options (no browser needed): the registry's loader and the env's."""
    return load_world().suite
