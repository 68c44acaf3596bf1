"""Contacts templates: add, edit, delete a contact; look up a phone number or an email."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, ClassVar

from agentgym.envs.gui.device.store import digits
from agentgym.envs.gui.tasks.base import DONE, Step, Template, open_app, tap, type_into
from agentgym.envs.gui.tasks.helpers import (delete_from_detail, drop_named, person_params, put_unique, with_row,
                                             without)
from agentgym.envs.gui.tasks.world import Pools


def _contact(state: dict[str, Any], params: Mapping[str, Any]) -> None:
    put_unique(state, "contacts", "name", {"name": params["name"], "phone": params["phone"],
                                           "email": params.get("email", "")})


def _find(state: Mapping[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in state["contacts"] if c["name"] == name)


def _open_contact(name: str) -> list[Step]:
    return [open_app("Contacts"), tap("contacts/row_title", text=name)]


class AddContact(Template):
    app, name, touches = "contacts", "add_contact", frozenset({"contacts"})

    def sample(self, rng: random.Random, pools: Pools) -> dict[str, Any]:
        return person_params(rng, pools)

    def setup(self, state, params, rng):
        drop_named(state, "contacts", "name", params["name"])

    def goal(self, p):
        return f"Create a new contact named {p['name']} with the phone number {p['phone']}."

    def expected(self, initial, p):
        return with_row(super().expected(initial, p), "contacts", {"name": p["name"], "phone": p["phone"], "email": ""})

    def plan(self, p, initial):
        return [open_app("Contacts"), tap("contacts/fab"), type_into("contacts/name_field", p["name"]),
                type_into("contacts/phone_field", p["phone"]), tap("contacts/save"), DONE]


class _EditContactField(Template):
    """Open the task's contact, Edit, type one field, Save: the contact's ``field`` becomes ``params[value_key]``."""

    field: ClassVar[str] = ""
    value_key: ClassVar[str] = ""

    def expected(self, initial, p):
        state = super().expected(initial, p)
        _find(state, p["name"])[self.field] = p[self.value_key]
        return state

    def plan(self, p, initial):
        return [*_open_contact(p["name"]), tap("contacts/edit"),
                type_into(f"contacts/{self.field}_field", p[self.value_key]), tap("contacts/save"), DONE]


class EditContactPhone(_EditContactField):
    app, name, touches, difficulty = "contacts", "edit_phone", frozenset({"contacts"}), "medium"
    field, value_key = "phone", "new_phone"

    def sample(self, rng, pools):
        name = pools.person(rng)
        return {"name": name, "phone": pools.phone(rng), "new_phone": pools.phone(rng), "key": name}

    def setup(self, state, params, rng):
        _contact(state, params)

    def goal(self, p):
        return f"Change the phone number of the contact {p['name']} to {p['new_phone']}."


class AddContactEmail(_EditContactField):
    app, name, touches, difficulty = "contacts", "add_email", frozenset({"contacts"}), "medium"
    field, value_key = "email", "email"

    def sample(self, rng, pools):
        name = pools.person(rng)
        return {"name": name, "phone": pools.phone(rng), "email": f"{name.split()[0].lower()}{rng.randrange(10, 99)}@work.example",
                "key": name}

    def setup(self, state, params, rng):
        _contact(state, {**params, "email": ""})

    def goal(self, p):
        return f"Add the email address {p['email']} to the contact {p['name']}."


class DeleteContact(Template):
    app, name, touches = "contacts", "delete_contact", frozenset({"contacts"})

    def sample(self, rng, pools):
        return person_params(rng, pools)

    def setup(self, state, params, rng):
        _contact(state, params)

    def goal(self, p):
        return f"Delete the contact {p['name']} from Contacts."

    def expected(self, initial, p):
        return without(super().expected(initial, p), "contacts", "name", p["name"])

    def plan(self, p, initial):
        return delete_from_detail("Contacts", "contacts/row_title", p["name"], "contacts/delete")


class ContactPhoneQuestion(Template):
    app, name, info = "contacts", "phone_lookup", True

    def sample(self, rng, pools):
        return person_params(rng, pools)

    def setup(self, state, params, rng):
        _contact(state, params)

    def goal(self, p):
        return f"What is the phone number of {p['name']}? Answer with the number."

    def answers(self, p, initial):
        return [p["phone"], digits(p["phone"])]

    def plan(self, p, initial):
        return [*_open_contact(p["name"]), Step("answer", value=p["phone"])]


TEMPLATES = [AddContact(), EditContactPhone(), AddContactEmail(), DeleteContact(), ContactPhoneQuestion()]
