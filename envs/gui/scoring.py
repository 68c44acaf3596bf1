"""GUI rewards: success is the committed device data equal to the expected data (so a right value in the wrong
field, or an extra deletion, fails), plus a normalised answer match for information tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentgym.answer_match import exact_match
from agentgym.envs.gui.tasks.base import Template, differing
from agentgym.tool_env import Outcome


def score(template: Template, params: Mapping[str, Any], initial: Mapping[str, Any], final: Mapping[str, Any],
          answer: str | None, feasible_claim: bool) -> Outcome:
    """Outcome of an episode that ended with ``status`` (answer None) or ``answer``."""
    expected = template.expected(initial, params)
    changed = differing(final, expected)
    components = {"state_match": float(not changed),
                  "goal_met": float(template.goal_met(final, initial, params)),
                  "other_apps_intact": float(not (changed - template.touches))}
    success = feasible_claim and not changed
    if template.info:
        correct = exact_match(answer or "", template.answers(params, initial), yes_no=True) if answer is not None else 0.0
        components["answer_match"] = correct
        success = success and correct == 1.0
    return Outcome(1.0 if success else 0.0, success, components)
