"""Calendar, Notes and Expenses templates: create and delete events, notes and expenses, edit a note (long
press and editor), and answer questions from the data (an event's time, a note's items, a category total)."""

from __future__ import annotations

from agentgym.envs.gui.device.store import CATEGORIES
from agentgym.envs.gui.tasks.base import DONE, Step, Template, open_app, tap, type_into
from agentgym.envs.gui.tasks.helpers import (delete_from_detail, drop_named, event_params, expense_params, money,
                                             put_unique, with_row, without)
from agentgym.envs.gui.tasks.world import _WORDS


class CreateEvent(Template):
    app, name, touches, difficulty = "calendar", "create_event", frozenset({"events"}), "medium"

    def sample(self, rng, pools):
        return event_params(rng, pools)

    def setup(self, state, params, rng):
        drop_named(state, "events", "title", params["title"])

    def goal(self, p):
        return f'Create a calendar event "{p["title"]}" on {p["date"]} at {p["time"]}.'

    def expected(self, initial, p):
        return with_row(super().expected(initial, p), "events", {"title": p["title"], "date": p["date"], "time": p["time"]})

    def plan(self, p, initial):
        return [open_app("Calendar"), tap("calendar/fab"), type_into("calendar/title_field", p["title"]),
                type_into("calendar/date_field", p["date"]), type_into("calendar/time_field", p["time"]),
                tap("calendar/save"), DONE]


class _WithEvent(Template):
    def sample(self, rng, pools):
        return event_params(rng, pools)

    def setup(self, state, params, rng):
        put_unique(state, "events", "title", {"title": params["title"], "date": params["date"], "time": params["time"]})


class DeleteEvent(_WithEvent):
    app, name, touches = "calendar", "delete_event", frozenset({"events"})

    def goal(self, p):
        return f'Delete the calendar event "{p["title"]}" on {p["date"]}.'

    def expected(self, initial, p):
        return without(super().expected(initial, p), "events", "title", p["title"])

    def plan(self, p, initial):
        return delete_from_detail("Calendar", "calendar/event_title", p["title"], "calendar/delete")


class EventTimeQuestion(_WithEvent):
    app, name, info = "calendar", "event_time", True

    def goal(self, p):
        return f'At what time does "{p["title"]}" start on {p["date"]}? Answer as HH:MM.'

    def answers(self, p, initial):
        return [p["time"]]

    def plan(self, p, initial):
        return [open_app("Calendar"), tap("calendar/event_title", text=p["title"]), Step("answer", value=p["time"])]


def _note_body(rng) -> str:
    return ", ".join(rng.sample(_WORDS, 3))


class CreateNote(Template):
    app, name, touches = "notes", "create_note", frozenset({"notes"})

    def sample(self, rng, pools):
        title = rng.choice(pools.notes)
        return {"title": title, "body": _note_body(rng), "key": title}

    def setup(self, state, params, rng):
        drop_named(state, "notes", "title", params["title"])

    def goal(self, p):
        return f'Create a note titled "{p["title"]}" with the text "{p["body"]}".'

    def expected(self, initial, p):
        return with_row(super().expected(initial, p), "notes", {"title": p["title"], "body": p["body"]})

    def plan(self, p, initial):
        return [open_app("Notes"), tap("notes/fab"), type_into("notes/title_field", p["title"]),
                type_into("notes/body_field", p["body"]), tap("notes/save"), DONE]


class _WithNote(Template):
    def sample(self, rng, pools):
        title = rng.choice(pools.notes)
        return {"title": title, "body": _note_body(rng), "new_body": _note_body(rng), "key": title}

    def setup(self, state, params, rng):
        put_unique(state, "notes", "title", {"title": params["title"], "body": params["body"]})


class DeleteNote(_WithNote):
    app, name, touches, difficulty = "notes", "delete_note", frozenset({"notes"}), "medium"

    def goal(self, p):
        return f'Delete the note "{p["title"]}".'

    def expected(self, initial, p):
        return without(super().expected(initial, p), "notes", "title", p["title"])

    def plan(self, p, initial):  # Android style: long-press the row, confirm
        return [open_app("Notes"), Step("long", {"resource_id": "notes/row_title", "text": p["title"]}),
                tap("dialog/positive"), DONE]


class EditNote(_WithNote):
    app, name, touches, difficulty = "notes", "edit_note", frozenset({"notes"}), "medium"

    def goal(self, p):
        return f'Replace the text of the note "{p["title"]}" with "{p["new_body"]}".'

    def expected(self, initial, p):
        state = super().expected(initial, p)
        next(n for n in state["notes"] if n["title"] == p["title"])["body"] = p["new_body"]
        return state

    def plan(self, p, initial):
        return [open_app("Notes"), tap("notes/row_title", text=p["title"]), tap("notes/edit"),
                type_into("notes/body_field", p["new_body"]), tap("notes/save"), DONE]


class NoteQuestion(_WithNote):
    app, name, info = "notes", "note_items", True

    def goal(self, p):
        return f'What does the note "{p["title"]}" say? Answer with its text.'

    def answers(self, p, initial):
        return [p["body"]]

    def plan(self, p, initial):
        return [open_app("Notes"), tap("notes/row_title", text=p["title"]), Step("answer", value=p["body"])]


class AddExpense(Template):
    app, name, touches, difficulty = "expenses", "add_expense", frozenset({"expenses"}), "medium"

    def sample(self, rng, pools):
        return expense_params(rng, pools)

    def setup(self, state, params, rng):
        drop_named(state, "expenses", "name", params["name"])

    def goal(self, p):
        return f'Log an expense "{p["name"]}" of {p["amount"]:.2f} in the {p["category"]} category.'

    def expected(self, initial, p):
        return with_row(super().expected(initial, p), "expenses",
                        {"name": p["name"], "amount": p["amount"], "category": p["category"]})

    def plan(self, p, initial):
        return [open_app("Expenses"), tap("expenses/fab"), type_into("expenses/name_field", p["name"]),
                type_into("expenses/amount_field", f"{p['amount']:.2f}"), tap(f"expenses/category_{p['category'].lower()}"),
                tap("expenses/save"), DONE]


class DeleteExpense(Template):
    app, name, touches = "expenses", "delete_expense", frozenset({"expenses"})

    def sample(self, rng, pools):
        return expense_params(rng, pools)

    def setup(self, state, params, rng):
        put_unique(state, "expenses", "name", {"name": params["name"], "amount": params["amount"],
                                               "category": params["category"]})

    def goal(self, p):
        return f'Delete the expense "{p["name"]}" ({p["amount"]:.2f}).'

    def expected(self, initial, p):
        return without(super().expected(initial, p), "expenses", "name", p["name"])

    def plan(self, p, initial):
        return delete_from_detail("Expenses", "expenses/row_title", p["name"], "expenses/delete")


class CategoryTotalQuestion(Template):
    app, name, info, difficulty = "expenses", "category_total", True, "hard"

    def sample(self, rng, pools):
        return {"category": rng.choice(CATEGORIES), "name": rng.choice(pools.expenses),
                "amount": round(rng.randrange(200, 20000) / 100, 2)}

    def setup(self, state, params, rng):
        put_unique(state, "expenses", "name", {"name": params["name"], "amount": params["amount"],
                                               "category": params["category"]})

    def group(self, p):
        return f"{self.family}:{p['category']}"

    def goal(self, p):
        return f"How much was spent in total on {p['category']} according to the Expenses app? Answer with the amount."

    def _total(self, initial, p) -> float:
        return round(sum(e["amount"] for e in initial["expenses"] if e["category"] == p["category"]), 2)

    def answers(self, p, initial):
        return money(self._total(initial, p))

    def plan(self, p, initial):
        return [open_app("Expenses"), Step("answer", value=f"{self._total(initial, p):.2f}")]


TEMPLATES = [CreateEvent(), DeleteEvent(), EventTimeQuestion(), CreateNote(), DeleteNote(), EditNote(), NoteQuestion(),
             AddExpense(), DeleteExpense(), CategoryTotalQuestion()]
