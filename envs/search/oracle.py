"""The reference solver: walk the gold path with real searches, reading each hop's fact before moving on.

For each hop it searches with that hop's query; the hop counts as done only when the gold passage came
back *and* the text the agent was shown contains the hop's target (the bridge entity or value). If not,
it searches deeper (k=10), then opens the gold passage's page. It answers only after every hop's fact
was actually seen in an observation, and gives up ("unknown") if a hop stays unreadable. So the oracle's
success rate measures that the gold path is findable and readable through the env's own tools.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from agentgym.messages import Action

DEEP_K = 10


def _call(name: str, **arguments: Any) -> Action:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"oracle_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]}


def hop_progress(hops: Sequence[Mapping[str, str]], history: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(hops whose fact has been read, observations since the last hop was read)."""
    done, since = 0, 0
    for entry in history:
        shown: Mapping[str, str] = entry.get("shown", {})
        advanced = False
        while done < len(hops) and hops[done]["target"] in shown.get(hops[done]["doc_id"], ""):
            done += 1
            advanced = True
        since = 0 if advanced else since + 1
    return done, since


def oracle_action(task_data: Mapping[str, Any], history: Sequence[Mapping[str, Any]], topk: int) -> Action:
    """The next action of the gold-path walk (see the module docstring)."""
    hops = task_data["hops"]
    done, since = hop_progress(hops, history)
    if done == len(hops):
        return _call("answer", text=task_data["answer"])
    hop = hops[done]
    if since == 0:
        return _call("search", query=hop["query"], k=topk)
    if since == 1:
        return _call("search", query=hop["query"], k=DEEP_K)
    if since == 2:
        return _call("open_page", doc_id=hop["doc_id"])
    return _call("answer", text="unknown")
