"""Tasks that cross apps: share a contact's number by text, save an unknown caller as a contact, and put an
event's time into a message."""

from __future__ import annotations

from agentgym.envs.gui.tasks.base import BACK, DONE, Template, open_app, tap, type_into
from agentgym.envs.gui.tasks.helpers import add_row, drop_named, put_person, put_unique, with_row, with_sent
from agentgym.envs.gui.tasks.world import clock_time, date_in_november


class ShareContactNumber(Template):
    app, name, touches, difficulty = "multi", "share_number", frozenset({"messages"}), "hard"

    def sample(self, rng, pools):
        a, b = pools.person(rng), pools.person(rng)
        while b == a:
            b = pools.person(rng)
        return {"name": a, "phone": pools.phone(rng), "to": b, "to_phone": pools.phone(rng), "key": f"{a}>{b}"}

    def setup(self, state, params, rng):
        put_person(state, params)
        put_person(state, {"name": params["to"], "phone": params["to_phone"]})

    def goal(self, p):
        return f"Text {p['to']} the phone number of {p['name']} (the number only)."

    def expected(self, initial, p):
        return with_sent(super().expected(initial, p), p["to"], p["phone"])

    def plan(self, p, initial):
        return [open_app("Contacts"), tap("contacts/row_title", text=p["name"]), open_app("Messages"), tap("messages/fab"),
                type_into("messages/to_field", p["to"]), type_into("messages/compose", p["phone"]), tap("messages/send"), DONE]


class SaveCaller(Template):
    app, name, touches, difficulty = "multi", "save_caller", frozenset({"contacts"}), "hard"

    def sample(self, rng, pools):
        name = pools.person(rng)
        return {"name": name, "number": pools.phone(rng), "key": name}

    def setup(self, state, params, rng):
        drop_named(state, "contacts", "name", params["name"])
        add_row(state, "calls", {"name": "", "number": params["number"], "kind": "Incoming", "time": "Today 09:02"}, first=True)

    def group(self, p):
        return self.family   # goals differ in one slot only: near-duplicates, keep the family together

    def goal(self, p):
        return f"The last call came from a number not in your contacts. Save that number as a new contact named {p['name']}."

    def expected(self, initial, p):
        return with_row(super().expected(initial, p), "contacts", {"name": p["name"], "phone": p["number"], "email": ""})

    def plan(self, p, initial):
        return [open_app("Phone"), tap("phone/call_row_title", text=p["number"]), tap("phone/add_contact"),
                type_into("contacts/name_field", p["name"]), tap("contacts/save"), DONE]


class TextEventTime(Template):
    app, name, touches, difficulty = "multi", "text_event_time", frozenset({"messages"}), "hard"

    def sample(self, rng, pools):
        name = pools.person(rng)
        title = rng.choice(pools.events)
        return {"name": name, "phone": pools.phone(rng), "title": title, "date": date_in_november(rng),
                "time": clock_time(rng), "key": f"{name}:{title}"}

    def setup(self, state, params, rng):
        put_person(state, params)
        put_unique(state, "events", "title", {"title": params["title"], "date": params["date"], "time": params["time"]})

    def goal(self, p):
        return f'Look up when "{p["title"]}" starts in Calendar and text {p["name"]} just that time (HH:MM).'

    def expected(self, initial, p):
        return with_sent(super().expected(initial, p), p["name"], p["time"])

    def plan(self, p, initial):
        return [open_app("Calendar"), tap("calendar/event_title", text=p["title"]), BACK, open_app("Messages"),
                tap("messages/fab"), type_into("messages/to_field", p["name"]), type_into("messages/compose", p["time"]),
                tap("messages/send"), DONE]


TEMPLATES = [ShareContactNumber(), SaveCaller(), TextEventTime()]
