"""Pieces shared by templates: parameter samplers, state edits that add the task's own rows without clashing
with distractors, the expected-state edits of a correct solution, and common oracle plan fragments."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from agentgym.envs.gui.device.store import CATEGORIES
from agentgym.envs.gui.tasks.base import DONE, Step, new_id, open_app, tap
from agentgym.envs.gui.tasks.world import Pools, clock_time, date_in_november

# --- parameters (each draws from `rng` in a fixed order: the pinned suite manifest depends on it) ------------


def person_params(rng: random.Random, pools: Pools) -> dict[str, Any]:
    """A person and a phone number, keyed by the name."""
    name = pools.person(rng)
    return {"name": name, "phone": pools.phone(rng), "key": name}


def event_params(rng: random.Random, pools: Pools) -> dict[str, Any]:
    """A calendar event's title, date and time, keyed by the title."""
    title = rng.choice(pools.events)
    return {"title": title, "date": date_in_november(rng), "time": clock_time(rng), "key": title}


def expense_params(rng: random.Random, pools: Pools) -> dict[str, Any]:
    """An expense's name, amount and category, keyed by the name."""
    name = rng.choice(pools.expenses)
    return {"name": name, "amount": round(rng.randrange(200, 20000) / 100, 2), "category": rng.choice(CATEGORIES),
            "key": name}


# --- the initial state ------------------------------------------------------------------------------------


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


def put_unique(state: dict[str, Any], table: str, key: str, row: dict[str, Any]) -> dict[str, Any]:
    """Add the task's own `row`, first dropping distractors that share its `key` (it is then the only one)."""
    drop_named(state, table, key, row[key])
    return add_row(state, table, row)


def put_person(state: dict[str, Any], params: Mapping[str, Any]) -> None:
    """The task's person as the only contact of that name, with no conversation yet."""
    drop_named(state, "contacts", "name", params["name"])
    state["messages"] = [m for m in state["messages"] if m["with"] != params["name"]]
    add_row(state, "contacts", {"name": params["name"], "phone": params["phone"], "email": ""})


# --- the expected state -------------------------------------------------------------------------------------


def with_row(state: dict[str, Any], table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """`state` with `row` added, as a correct creation leaves it (ids are not compared)."""
    state[table].append({"id": 0, **row})
    return state


def with_sent(state: dict[str, Any], to: str, text: str) -> dict[str, Any]:
    """`state` with the text message `text` sent to `to`."""
    return with_row(state, "messages", {"with": to, "text": text, "out": True})


def without(state: dict[str, Any], table: str, key: str, value: Any) -> dict[str, Any]:
    """`state` without the rows of `table` whose `key` is `value`, as a correct deletion leaves it."""
    state[table] = [r for r in state[table] if r[key] != value]
    return state


# --- oracle plans -------------------------------------------------------------------------------------------


def delete_from_detail(app_name: str, row_rid: str, text: str, delete_rid: str) -> list[Step]:
    """Open the app, open the row showing `text`, press Delete, confirm the dialog."""
    return [open_app(app_name), tap(row_rid, text=text), tap(delete_rid), tap("dialog/positive"), DONE]


# --- answers ------------------------------------------------------------------------------------------------


def money(amount: float) -> list[str]:
    """Accepted spellings of an amount: 12.5 -> ['12.50', '12.5', '$12.50']."""
    out = [f"{amount:.2f}", f"{amount:g}", f"${amount:.2f}"]
    if amount == int(amount):
        out.append(str(int(amount)))
    return out
