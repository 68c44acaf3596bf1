"""The GUI task suite: every template x seeded parameters; whole app/template families held out for OOD (drawing
names, numbers and titles from a disjoint pool), a hash split over near-duplicate groups for IID."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from agentgym.envs.gui.tasks import TEMPLATES, Template
from agentgym.envs.gui.tasks.world import HELD_OUT, MAIN
from agentgym.tasks import SplitRule, Task, TaskSuite

SUITE_NAME = "gui-phone-v0"
SUITE_VERSION = "v0"
TASKS_PER_TEMPLATE = 8
SPLIT_RULE = SplitRule(
    ood_test_families=frozenset({"contacts/edit_phone", "calendar/event_time", "clock/set_timer", "multi/share_number"}),
    ood_dev_families=frozenset({"notes/edit_note", "settings/font_size"}), iid_test_percent=15, iid_dev_percent=10)
MANIFEST = Path(__file__).with_name("manifests") / f"{SUITE_NAME}.json"
BUDGET_SLACK = 3   # popups and scrolls the plan does not list


def budget(template: Template, params: dict[str, Any]) -> int:
    """The step budget: about twice the oracle's length (its plan plus a few dismissals and scrolls)."""
    plan = template.plan(params, template.initial_state(params, pools_of(template)))
    return 2 * (len(plan) + BUDGET_SLACK)


def pools_of(template: Template):
    """Held-out families draw from the held-out pool, everything else from the main one."""
    held_out = SPLIT_RULE.ood_test_families | SPLIT_RULE.ood_dev_families
    return HELD_OUT if template.family in held_out else MAIN


def _build(per_template: int) -> TaskSuite:
    tasks: list[Task] = []
    for family, template in sorted(TEMPLATES.items()):
        rng = random.Random(f"{SUITE_VERSION}:{family}")
        seen: set[str] = set()
        attempts = 0
        while len(seen) < per_template and attempts < per_template * 20:
            attempts += 1
            params = {**template.sample(rng, pools_of(template)), "seed": rng.randrange(1 << 30)}
            goal = template.goal(params)
            if goal in seen:
                continue
            seen.add(goal)
            tasks.append(Task(kind="gui", family=family, template=template.name, params=params,
                              data={"goal": goal, "budget": budget(template, params), "info": template.info},
                              group=template.group(params), difficulty=template.difficulty))
    return TaskSuite(SUITE_NAME, SUITE_VERSION, tasks, SPLIT_RULE, pinned_path=MANIFEST)


_LOCK = threading.Lock()
_SUITES: dict[int, TaskSuite] = {}


def load_suite(per_template: int = TASKS_PER_TEMPLATE) -> TaskSuite:
    """The suite (built once per process and size; thread-safe)."""
    with _LOCK:
        if per_template not in _SUITES:
            _SUITES[per_template] = _build(per_template)
        return _SUITES[per_template]


def suite_for(*, tasks_per_template: int | None = None, **_options: Any) -> TaskSuite:
    """The suite ``PhoneEnv(tasks_per_template=...)`` serves, with no browser: the registry's loader and the env's."""
    return load_suite(tasks_per_template or TASKS_PER_TEMPLATE)
