"""Messages and Phone templates: send a text (existing or new conversation), read the last message, dial a
number, call back, and find the last missed caller."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentgym.envs.gui.tasks.base import DONE, Step, Template, open_app, tap, type_into
from agentgym.envs.gui.tasks.helpers import add_row, person_params, put_person, with_sent
from agentgym.envs.gui.tasks.world import _TEXTS

_OUTGOING = ["I will be there at {t}", "Please bring the {w} tomorrow", "Meeting confirmed for {t}",
             "Can we move lunch to {t}?", "Do not forget the {w}", "I bought the {w} already"]
_THINGS = ["tickets", "laptop", "umbrella", "keys", "charger", "receipts", "camera", "map"]


def _text(rng) -> str:
    return rng.choice(_OUTGOING).format(t=f"{rng.randrange(1, 12)}:{rng.choice(['00', '30'])}", w=rng.choice(_THINGS))


def _thread_params(rng, pools, new_key: str, stock_key: str) -> dict[str, Any]:
    """A person and two texts of a conversation: a generated one under `new_key`, a stock one under `stock_key`."""
    name = pools.person(rng)
    return {"name": name, "phone": pools.phone(rng), new_key: _text(rng), "key": name, stock_key: rng.choice(_TEXTS)}


def _missed_call(state: dict[str, Any], params: Mapping[str, Any], time: str) -> None:
    """The task's person, and a missed call from them as the newest entry of the call log."""
    put_person(state, params)
    add_row(state, "calls", {"name": params["name"], "number": params["phone"], "kind": "Missed", "time": time}, first=True)


class SendMessageExisting(Template):
    app, name, touches = "messages", "reply_thread", frozenset({"messages"})

    def sample(self, rng, pools):
        return _thread_params(rng, pools, "text", "seed_text")

    def setup(self, state, params, rng):
        put_person(state, params)
        add_row(state, "messages", {"with": params["name"], "text": params["seed_text"], "out": False})

    def goal(self, p):
        return f'Reply to {p["name"]} in Messages with the text "{p["text"]}".'

    def expected(self, initial, p):
        return with_sent(super().expected(initial, p), p["name"], p["text"])

    def plan(self, p, initial):
        return [open_app("Messages"), tap("messages/thread_title", text=p["name"]),
                type_into("messages/compose", p["text"]), tap("messages/send"), DONE]


class SendMessageNew(Template):
    app, name, touches, difficulty = "messages", "new_conversation", frozenset({"messages"}), "medium"

    def sample(self, rng, pools):
        name = pools.person(rng)
        return {"name": name, "phone": pools.phone(rng), "text": _text(rng), "key": name}

    def setup(self, state, params, rng):
        put_person(state, params)

    def goal(self, p):
        return f'Start a new conversation with {p["name"]} and send "{p["text"]}".'

    def expected(self, initial, p):
        return with_sent(super().expected(initial, p), p["name"], p["text"])

    def plan(self, p, initial):
        # Enter in the recipient field opens the conversation (input_text presses Enter, as AndroidWorld's does)
        return [open_app("Messages"), tap("messages/fab"), type_into("messages/to_field", p["name"]),
                type_into("messages/compose", p["text"]), tap("messages/send"), DONE]


class LastMessageQuestion(Template):
    app, name, info = "messages", "last_message", True

    def sample(self, rng, pools):
        return _thread_params(rng, pools, "last", "earlier")

    def setup(self, state, params, rng):
        put_person(state, params)
        add_row(state, "messages", {"with": params["name"], "text": params["earlier"], "out": True})
        add_row(state, "messages", {"with": params["name"], "text": params["last"], "out": False})

    def goal(self, p):
        return f"What was the last message {p['name']} sent you? Answer with the message text."

    def answers(self, p, initial):
        return [p["last"]]

    def plan(self, p, initial):
        return [open_app("Messages"), tap("messages/thread_title", text=p["name"]), Step("answer", value=p["last"])]


def _outgoing(state: dict[str, Any], number: str) -> dict[str, Any]:
    contact = next((c for c in state["contacts"] if c["phone"] == number), None)
    return {"id": 0, "name": contact["name"] if contact else "", "number": number, "kind": "Outgoing",
            "time": state["meta"]["clock"]}


class DialNumber(Template):
    app, name, touches = "phone", "dial_number", frozenset({"calls"})

    def sample(self, rng, pools):
        number = pools.phone(rng)
        return {"number": number, "key": number}

    def group(self, p):
        return self.family   # goals differ in one slot only: near-duplicates, keep the family together

    def goal(self, p):
        return f"Use the Phone app's keypad to call {p['number']}."

    def expected(self, initial, p):
        state = super().expected(initial, p)
        state["calls"].insert(0, _outgoing(state, p["number"]))
        return state

    def plan(self, p, initial):
        return [open_app("Phone"), tap("phone/tab_keypad"), type_into("phone/digits", p["number"]), tap("phone/call"), DONE]


class CallBackLast(Template):
    app, name, touches, difficulty = "phone", "call_back", frozenset({"calls"}), "medium"

    def sample(self, rng, pools):
        return person_params(rng, pools)

    def setup(self, state, params, rng):
        _missed_call(state, params, "Today 08:12")

    def goal(self, p):
        return "Call back the person whose call you missed most recently."

    def group(self, p):
        return self.family   # one goal text for every task of this family: keep them on one side of the split

    def expected(self, initial, p):
        state = super().expected(initial, p)
        state["calls"].insert(0, _outgoing(state, p["phone"]))
        return state

    def plan(self, p, initial):
        return [open_app("Phone"), tap("phone/call_row_title", text=p["name"]), tap("phone/call_back"), DONE]


class MissedCallerQuestion(Template):
    app, name, info = "phone", "missed_caller", True

    def sample(self, rng, pools):
        return person_params(rng, pools)

    def setup(self, state, params, rng):
        _missed_call(state, params, "Today 07:55")
        other = next(c for c in state["contacts"] if c["name"] != params["name"])
        add_row(state, "calls", {"name": other["name"], "number": other["phone"], "kind": "Outgoing", "time": "Today 08:30"},
                first=True)

    def goal(self, p):
        return "Who is the most recent missed call from? Answer with the caller's name."

    def group(self, p):
        return self.family

    def answers(self, p, initial):
        return [p["name"]]

    def plan(self, p, initial):
        return [open_app("Phone"), Step("answer", value=p["name"])]


TEMPLATES = [SendMessageExisting(), SendMessageNew(), LastMessageQuestion(), DialNumber(), CallBackLast(),
             MissedCallerQuestion()]
