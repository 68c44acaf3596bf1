"""What the search agent reads: the system prompt, the question, and search results in Search-R1's layout."""

from __future__ import annotations

from collections.abc import Sequence

SYSTEM_PROMPT = """You answer questions about a fictional world by searching its encyclopedia. Your own knowledge of the real world does not apply: every fact must come from the passages you read.
Tools:
- search(query, k): the top-k passages (k from 1 to {max_k}, default {topk}), shown as `Doc i(Title: ...) [doc_id] text`.
- open_page(doc_id): the whole article a passage belongs to.
- answer(text): your final answer; this ends the episode.
Without native tool calls, write <search>query</search>, <access>doc_id</access> or <answer>final answer</answer>; you may think in <think>...</think> first. Results come back inside <information>...</information>.
Questions may need several searches: find the intermediate entity first, then search for it. Answer with the shortest exact phrase: a name, a number, or yes/no.
You have {max_turns} turns."""

INVALID_ACTION_HINT = ("My previous action is invalid. If I want to search, I should put the query between <search> and "
                       "</search>. If I want to give the final answer, I should put the answer between <answer> and "
                       "</answer>. Let me try again.")


def question_prompt(question: str) -> str:
    """The first user message of an episode."""
    return f"Question: {question}"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 3)].rstrip() + "..."


def format_results(docs: Sequence[tuple[str, str, str]], *, passage_chars: int, budget_chars: int) -> tuple[str, dict[str, str]]:
    """Search-R1's ``Doc i(Title: t) text`` lines (with the doc id) within a character budget.

    Returns the text and, per shown doc id, the part of its text that was shown.
    """
    lines: list[str] = []
    shown: dict[str, str] = {}
    used = 0
    for i, (doc_id, title, text) in enumerate(docs, start=1):
        line = f"Doc {i}(Title: {title}) [{doc_id}] {clip(text, passage_chars)}"
        if used + len(line) > budget_chars:
            line = clip(line, budget_chars - used)
            if len(line) < 40:
                break
        lines.append(line)
        shown[doc_id] = line
        used += len(line) + 1
    return "\n".join(lines), shown


def format_page(passages: Sequence[tuple[str, str, str]], *, budget_chars: int) -> str:
    """An article: each of its passages as ``[doc_id] Title`` then the text, within a character budget."""
    body = "\n\n".join(f"[{doc_id}] {title}\n{text}" for doc_id, title, text in passages)
    return clip(body, budget_chars)
