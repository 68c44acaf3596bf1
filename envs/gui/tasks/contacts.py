"""Contacts templates: add, edit, delete a contact; look up a phone number or an email."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from agentgym.envs.gui.device.store import digits
from agentgym.envs.gui.tasks.base import DONE, Step, Template, open_app, tap, type_into
from agentgym.envs.gui.tasks.helpers import add_row, drop_named
from agentgym.envs.gui.tasks.world import Pools


def _contact(state: dict[str, Any], params: Mapping[str, Any]) -> None:
    drop_named(state, "contacts", "name", params["name"])
    add_row(state, "contacts", {"name": params["name"], "phone": params["phone"], "email": params.get("email", "")})


def _find(state: Mapping[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in state["contacts"] if c["name"] == name)


def _open_contact(name: str) -> list[Step]:
    return [open_app("Contacts"), tap("contacts/row_title", text=name)]


class AddContact(Template):
    app, name, touches = "contacts", "add_contact", frozenset({"contacts"})

    def sample(self, rng: random.Random, pools: Pools) -> dict[str, Any]:
        name = pools.person(rng)
        return {"name": name, "phone": pools.phone(rng), "key": name}

    def setup(self, state, params, rng):
        drop_named(state, "contacts", "name", params["name"])

    def goal(self, p):
        return f"Create a new contact named {p['name']} with the phone number {p['phone']}."

    def expected(self, initial, p):
        state = super().expected(initial, p)
        state["contacts"].append({"id": 0, "name": p["name"], "phone": p["phone"], "email": ""})
        return state

    def plan(self, p, initial):
        return [open_app("Contacts"), tap("contacts/fab"), type_into("contacts/name_field", p["name"]),
                type_into("contacts/phone_field", p["phone"]), tap("contacts/save"), DONE]


class EditContactPhone(Template):
    app, name, touches, difficulty = "contacts", "edit_phone", frozenset({"contacts"}), "medium"

    def sample(self, rng, pools):
        name = pools.person(rng)
        return {"name": name, "phone": pools.phone(rng), "new_phone": pools.phone(rng), "key": name}

    def setup(self, state, params, rng):
        _contact(state, params)

    def goal(self, p):
        return f"Change the phone number of the contact {p['name']} to {p['new_phone']}."

    def expected(self, initial, p):
        state = super().expected(initial, p)
        _find(state, p["name"])["phone"] = p["new_phone"]
        return state

    def plan(self, p, initial):
        return [*_open_contact(p["name"]), tap("contacts/edit"), type_into("contacts/phone_field", p["new_phone"]),
                tap("contacts/save"), DONE]


class AddContactEmail(Template):
    app, name, touches, difficulty = "contacts", "add_email", frozenset({"contacts"}), "medium"

    def sample(self, rng, pools):
        name = pools.person(rng)
        return {"name": name, "phone": pools.phone(rng), "email": f"{name.split()[0].lower()}{rng.randrange(10, 99)}@work.example",
                "key": name}

    def setup(self, state, params, rng):
        _contact(state, {**params, "email": ""})

    def goal(self, p):
        return f"Add the email address {p['email']} to the contact {p['name']}."

    def expected(self, initial, p):
        state = super().expected(initial, p)
        _find(state, p["name"])["email"] = p["email"]
        return state

    def plan(self, p, initial):
        return [*_open_contact(p["name"]), tap("contacts/edit"), type_into("contacts/email_field", p["email"]),
                tap("contacts/save"), DONE]


class DeleteContact(Template):
    app, name, touches = "contacts", "delete_contact", frozenset({"contacts"})

    def sample(self, rng, pools):
        name = pools.person(rng)
        return {"name": name, "phone": pools.phone(rng), "key": name}

    def setup(self, state, params, rng):
        _contact(state, params)

    def goal(self, p):
        return f"Delete the contact {p['name']} from Contacts."

    def expected(self, initial, p):
        state = super().expected(initial, p)
        state["contacts"] = [c for c in state["contacts"] if c["name"] != p["name"]]
        return state

    def plan(self, p, initial):
        return [*_open_contact(p["name"]), tap("contacts/delete"), tap("dialog/positive"), DONE]


class ContactPhoneQuestion(Template):
    app, name, info = "contacts", "phone_lookup", True

    def sample(self, rng, pools):
        name = pools.person(rng)
        return {"name": name, "phone": pools.phone(rng), "key": name}

    def setup(self, state, params, rng):
        _contact(state, params)

    def goal(self, p):
        return f"What is the phone number of {p['name']}? Answer with the number."

    def answers(self, p, initial):
        return [p["phone"], digits(p["phone"])]

    def plan(self, p, initial):
        return [*_open_contact(p["name"]), Step("answer", value=p["phone"])]


TEMPLATES = [AddContact(), EditContactPhone(), AddContactEmail(), DeleteContact(), ContactPhoneQuestion()]
