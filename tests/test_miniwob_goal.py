"""MiniWoB++ goals on a real page: the task's own instruction text, never a Python dict of its answer fields."""

from __future__ import annotations

import agentgym
from agentgym.envs.web.miniwob import goal_text


def test_goal_text_takes_the_utterance_of_a_structured_goal():
    structured = {"utterance": "Forward Ann's email to Bo.", "fields": {"by": "Ann", "to": "Bo"}}
    assert goal_text(structured) == "Forward Ann's email to Bo."
    assert goal_text("Click the button.") == "Click the button."


async def test_a_task_with_structured_goal_shows_its_instruction_as_text():
    # email-inbox-forward-nl answers core.getUtterance() with {utterance, fields} (its answer key, structured)
    async with agentgym.make("agentgym/web-miniwob-v0", split="test", tasks=["email-inbox-forward-nl"]) as env:
        obs, _ = await env.areset(seed=0)
        raw = await env.page.evaluate("() => core.getUtterance()")
        query = await env.page.evaluate(
            "() => document.getElementById('query').textContent.replace(/\\s+/g, ' ').trim()")
    assert isinstance(raw, dict) and set(raw) == {"utterance", "fields"}  # the page really gives a dict
    assert env.goal == raw["utterance"] == query
    first_user = next(m for m in obs["messages"] if m["role"] == "user")
    content = first_user["content"] if isinstance(first_user["content"], str) else \
        " ".join(p.get("text", "") for p in first_user["content"])
    assert f"Goal: {query}\n" in content
    assert "'utterance'" not in content and "'fields'" not in content
