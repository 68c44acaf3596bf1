"""Small state edits shared by templates: adding the task's own rows without clashing with distractors."""

from __future__ import annotations

from typing import Any

from agentgym.envs.gui.tasks.base import new_id


def drop_named(state: dict[str, Any], table: str, key: str, value: str) -> None:
    """Remove distractor rows whose `key` equals `value` (so the task's entity is unique)."""
    state[table] = [r for r in state[table] if str(r[key]).lower() != str(value).lower()]


def add_row(state: dict[str, Any], table: str, row: dict[str, Any], first: bool = False) -> dict[str, Any]:
    """Insert a row with a fresh id (at the top for newest-first tables)."""
    row = {"id": new_id(state), **row}
    if first:
        state[table].insert(0, row)
    else:
        state[table].append(row)
    return row


def money(amount: float) -> list[str]:
    """Accepted spellings of an amount: 12.5 -> ['12.50', '12.5', '$12.50']."""
    out = [f"{amount:.2f}", f"{amount:g}", f"${amount:.2f}"]
    if amount == int(amount):
        out.append(str(int(amount)))
    return out
