"""A closed-book baseline: answer at once, without searching, from answer priors learned on the train split.

It measures what the question text alone gives away. Open questions get the most frequent training
answer of their template (or family); yes/no questions the majority training answer; "X or Y?"
comparisons the first option. On the OOD world (new entities) it should sit at chance: 1/2 on binary
questions and about 0 elsewhere. A policy is any object with ``name`` and ``async act(observation, tools)``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from agentgym.messages import message_text
from agentgym.tasks import TaskSuite

_OPTIONS = re.compile(r",\s*(.+?)\s+or\s+(.+?)\?\s*$")


def chance_level(task_data: Mapping[str, Any], question: str) -> float:
    """The success probability of a uniform guess among the answers the question itself offers (0 if open)."""
    if task_data["answer_type"] == "yes/no" or _OPTIONS.search(question):
        return 0.5
    return 0.0


class ClosedBookPolicy:
    """Answers the question immediately from training-split answer priors (see the module docstring)."""

    name = "closed-book"

    def __init__(self, suite: TaskSuite):
        self._suite = suite
        by_template: dict[str, Counter[str]] = {}
        by_family: dict[str, Counter[str]] = {}
        for t in suite.tasks("train"):
            by_template.setdefault(t.template, Counter())[t.data["answer"]] += 1
            by_family.setdefault(t.family, Counter())[t.data["answer"]] += 1
        self.by_template = {k: v.most_common(1)[0][0] for k, v in by_template.items()}
        self.by_family = {k: v.most_common(1)[0][0] for k, v in by_family.items()}

    def guess(self, task_id: str, question: str) -> str:
        """The closed-book answer to a question of task `task_id` (only its template/family is looked up)."""
        task = self._suite.get(task_id)
        options = _OPTIONS.search(question)
        if options and task.data["answer_type"] != "yes/no":
            return options.group(1)
        return self.by_template.get(task.template) or self.by_family.get(task.family) or "unknown"

    async def act(self, observation: Any, tools: Sequence[Mapping[str, Any]]) -> str:
        question = next((message_text(m)[len("Question: "):] for m in reversed(observation.messages)
                         if m.get("role") == "user" and message_text(m).startswith("Question: ")), "")
        return f"<answer>{self.guess(observation.task_id, question)}</answer>"
