"""The per-episode app store of PhoneOS: every app's data as plain JSON, mutated only by validated operations.

The page sends committed edits (``contact.add``, ``message.send`` ...) to ``/api/op``; success checks read
``PhoneStore.state`` directly, as AndroidWorld reads the apps' databases over adb.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

CATEGORIES = ("Food", "Transport", "Shopping", "Bills", "Other")
SETTINGS_DEFAULT: dict[str, Any] = {"wifi": True, "airplane": False, "bluetooth": False, "dark_theme": False,
                                    "font_size": "Default", "developer": False, "usb_debugging": False,
                                    "stay_awake": False}
TABLES = ("contacts", "messages", "calls", "events", "notes", "expenses", "timers", "alarms", "pages")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class OpError(ValueError):
    """An edit the app refuses (shown to the user as a toast; nothing is committed)."""


def digits(phone: str) -> str:
    """The digits of a phone number (how numbers are compared, as AndroidWorld's clean_phone_number)."""
    return re.sub(r"\D", "", str(phone))


def empty_state() -> dict[str, Any]:
    """A device with no data, default settings and a frozen status bar."""
    state: dict[str, Any] = {t: [] for t in TABLES}
    state["settings"] = dict(SETTINGS_DEFAULT)
    state["meta"] = {"clock": "09:41", "battery": 87, "model": "Pixel 7 (PhoneOS)", "build": "PQ3A.190801.002",
                     "popups": {}}
    return state


class PhoneStore:
    """One episode's app data; ``apply(op, args)`` is the only way the page changes it."""

    def __init__(self, state: Mapping[str, Any]):
        self.state: dict[str, Any] = copy.deepcopy(dict(state))
        self._next = 1 + max((row["id"] for t in TABLES for row in self.state[t]), default=0)
        self.log: list[tuple[str, dict[str, Any]]] = []

    def _id(self) -> int:
        self._next += 1
        return self._next - 1

    def apply(self, op: str, args: Mapping[str, Any]) -> None:
        """Validate and commit one edit; raises OpError (nothing changed) when the app would refuse it."""
        handler = _OPS.get(op)
        if handler is None:
            raise OpError(f"unknown operation {op!r}")
        handler(self, {k: v for k, v in dict(args).items() if v is not None})
        self.log.append((op, dict(args)))

    def contact_named(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.state["contacts"] if c["name"].lower() == name.strip().lower()), None)

    def contact_by_number(self, number: str) -> dict[str, Any] | None:
        d = digits(number)
        return next((c for c in self.state["contacts"] if d and digits(c["phone"]) == d), None)


def _text(args: Mapping[str, Any], key: str, what: str, required: bool = True, limit: int = 2000) -> str:
    value = str(args.get(key, "")).strip()
    if required and not value:
        raise OpError(f"{what} is required")
    if len(value) > limit:
        raise OpError(f"{what} is too long")
    return value


def _row(store: PhoneStore, table: str, args: Mapping[str, Any]) -> dict[str, Any]:
    try:
        rid = int(args.get("id"))
    except (TypeError, ValueError):
        raise OpError("no such item") from None
    row = next((r for r in store.state[table] if r["id"] == rid), None)
    if row is None:
        raise OpError("no such item")
    return row


def _contact_fields(store: PhoneStore, args: Mapping[str, Any]) -> dict[str, str]:
    name, phone = _text(args, "name", "Name", limit=80), _text(args, "phone", "Phone", required=False, limit=40)
    if phone and not re.fullmatch(r"[\d +()\-]{3,}", phone):
        raise OpError("Phone number is not valid")
    return {"name": name, "phone": phone, "email": _text(args, "email", "Email", required=False, limit=120)}


def _contact_add(store: PhoneStore, args: Mapping[str, Any]) -> None:
    store.state["contacts"].append({"id": store._id(), **_contact_fields(store, args)})


def _contact_update(store: PhoneStore, args: Mapping[str, Any]) -> None:
    row = _row(store, "contacts", args)
    row.update(_contact_fields(store, args))


def _delete(table: str) -> Callable[[PhoneStore, Mapping[str, Any]], None]:
    def run(store: PhoneStore, args: Mapping[str, Any]) -> None:
        row = _row(store, table, args)
        store.state[table].remove(row)
    return run


def _message_send(store: PhoneStore, args: Mapping[str, Any]) -> None:
    to = _text(args, "to", "Recipient", limit=80)
    contact = store.contact_named(to) or store.contact_by_number(to)
    if contact is None and not re.fullmatch(r"[\d +()\-]{3,}", to):
        raise OpError(f"No contact named {to}")
    store.state["messages"].append({"id": store._id(), "with": contact["name"] if contact else to,
                                    "text": _text(args, "text", "Message"), "out": True})


def _call_place(store: PhoneStore, args: Mapping[str, Any]) -> None:
    number = _text(args, "number", "Number", limit=40)
    if not digits(number):
        raise OpError("Not a phone number")
    contact = store.contact_by_number(number)
    store.state["calls"].insert(0, {"id": store._id(), "name": contact["name"] if contact else "", "number": number,
                                    "kind": "Outgoing", "time": store.state["meta"]["clock"]})


def _event_add(store: PhoneStore, args: Mapping[str, Any]) -> None:
    title, date, time = _text(args, "title", "Title", limit=120), _text(args, "date", "Date"), _text(args, "time", "Time")
    if not _DATE.match(date):
        raise OpError("Date must look like 2026-11-24")
    if not _TIME.match(time):
        raise OpError("Time must look like 14:30")
    store.state["events"].append({"id": store._id(), "title": title, "date": date, "time": time})


def _note_fields(args: Mapping[str, Any]) -> dict[str, str]:
    return {"title": _text(args, "title", "Title", limit=120), "body": _text(args, "body", "Note", required=False)}


def _note_add(store: PhoneStore, args: Mapping[str, Any]) -> None:
    store.state["notes"].append({"id": store._id(), **_note_fields(args)})


def _note_update(store: PhoneStore, args: Mapping[str, Any]) -> None:
    _row(store, "notes", args).update(_note_fields(args))


def _expense_add(store: PhoneStore, args: Mapping[str, Any]) -> None:
    name = _text(args, "name", "Name", limit=80)
    try:
        amount = round(float(str(args.get("amount", "")).replace("$", "").strip()), 2)
    except ValueError:
        raise OpError("Amount must be a number") from None
    if not 0 < amount < 1e7:
        raise OpError("Amount must be positive")
    category = str(args.get("category", ""))
    if category not in CATEGORIES:
        raise OpError("Pick a category")
    store.state["expenses"].append({"id": store._id(), "name": name, "amount": amount, "category": category})


def _timer_start(store: PhoneStore, args: Mapping[str, Any]) -> None:
    try:
        minutes = int(str(args.get("minutes", "")).strip())
    except ValueError:
        raise OpError("Minutes must be a whole number") from None
    if not 1 <= minutes <= 999:
        raise OpError("Minutes must be between 1 and 999")
    store.state["timers"].append({"id": store._id(), "minutes": minutes,
                                  "label": _text(args, "label", "Label", required=False, limit=60)})


def _alarm_add(store: PhoneStore, args: Mapping[str, Any]) -> None:
    time = _text(args, "time", "Time")
    if not _TIME.match(time):
        raise OpError("Time must look like 07:30")
    store.state["alarms"].append({"id": store._id(), "time": time, "on": True})


def _alarm_set(store: PhoneStore, args: Mapping[str, Any]) -> None:
    _row(store, "alarms", args)["on"] = bool(args.get("on"))


def _setting_set(store: PhoneStore, args: Mapping[str, Any]) -> None:
    key, value = args.get("key"), args.get("value")
    settings = store.state["settings"]
    if key not in settings or type(value) is not type(settings[key]):
        raise OpError("unknown setting")
    if key == "font_size" and value not in ("Small", "Default", "Large"):
        raise OpError("unknown font size")
    settings[key] = value


_OPS: dict[str, Callable[[PhoneStore, Mapping[str, Any]], None]] = {
    "contact.add": _contact_add, "contact.update": _contact_update, "contact.delete": _delete("contacts"),
    "message.send": _message_send, "call.place": _call_place,
    "event.add": _event_add, "event.delete": _delete("events"),
    "note.add": _note_add, "note.update": _note_update, "note.delete": _delete("notes"),
    "expense.add": _expense_add, "expense.delete": _delete("expenses"),
    "timer.start": _timer_start, "alarm.add": _alarm_add, "alarm.set": _alarm_set, "setting.set": _setting_set,
}
