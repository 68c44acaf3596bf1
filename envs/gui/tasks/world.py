"""Seeded device data: disjoint name / number / title pools (training vs held-out families) and the background
state every task starts from (a long contact list, conversations, a call log, events, notes, expenses, alarms)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from agentgym.envs.gui.device.store import CATEGORIES, empty_state

_FIRST = ["Ava", "Liam", "Noah", "Emma", "Olivia", "Mason", "Sophia", "Lucas", "Mia", "Ethan", "Isla", "Leo",
          "Chloe", "Owen", "Grace", "Henry", "Zoe", "Caleb", "Ruby", "Julian", "Nora", "Miles", "Hazel", "Felix",
          "Ivy", "Jasper", "Clara", "Silas", "Alice", "Theo", "Elena", "Hugo", "Maya", "Oscar", "Lila", "Arthur",
          "Naomi", "Victor", "Stella", "Rafael"]
_LAST = ["Chen", "Patel", "Garcia", "Kim", "Novak", "Okafor", "Silva", "Rossi", "Schmidt", "Dubois", "Tanaka",
         "Larsen", "Moreau", "Ivanova", "Haddad", "Nguyen", "Costa", "Fischer", "Jensen", "Murphy", "Singh", "Weber",
         "Alvarez", "Kowalski", "Sato", "Becker", "Ortiz", "Lindqvist", "Byrne", "Yilmaz", "Fontaine", "Reyes"]
_EVENTS = ["Dentist appointment", "Team standup", "Yoga class", "Parent meeting", "Budget review", "Car service",
           "Book club", "Piano lesson", "Flight to Lisbon", "Vet visit", "Haircut", "Project kickoff", "Tax deadline",
           "Gym session", "Lunch with Sam", "Design review", "Museum tour", "Soccer practice", "Farmers market",
           "Quarterly planning", "Doctor checkup", "Movie night", "Coffee chat", "Garden club"]
_NOTES = ["Grocery list", "Packing list", "Gift ideas", "Workout plan", "Reading list", "Meeting notes",
          "Recipe draft", "Trip ideas", "Home repairs", "Podcast picks", "Birthday plans", "Garden plan",
          "Study schedule", "Wishlist", "Movie list", "Chore chart", "Bike maintenance", "Learning goals"]
_WORDS = ["milk", "eggs", "passport", "charger", "tomatoes", "rice", "sunscreen", "batteries", "notebook",
          "coffee", "lemons", "tape", "candles", "socks", "basil", "flour", "olive oil", "stamps", "apples", "tea"]
_EXPENSES = ["Groceries", "Taxi ride", "Electric bill", "Concert tickets", "Bus pass", "New shoes", "Internet bill",
             "Dinner out", "Coffee beans", "Train ticket", "Phone bill", "Bookstore", "Pharmacy", "Parking",
             "Water bill", "Lunch", "Hardware store", "Gym membership"]
_TEXTS = ["Running 10 minutes late", "See you at the station", "Can you call me back?", "Thanks for dinner!",
          "The meeting moved to 3pm", "Did you get my email?", "Happy birthday!", "On my way", "Lunch tomorrow?",
          "I left the keys with Sam", "Let's meet at the park", "Remember to bring the charger",
          "The package arrived", "Call me when you land", "Great game yesterday", "Pick up some bread please"]
_ARTICLES = [("Local library extends hours", ["The city library will open until 22:00 on weekdays starting in March.",
                                               "The reading room on the second floor gets 40 new seats."]),
             ("River festival returns", ["The river festival runs for 3 days this summer.",
                                         "Tickets cost 12 dollars and children under 10 enter free."]),
             ("New bike lanes downtown", ["The council approved 18 kilometres of protected bike lanes.",
                                          "Construction starts in April and ends in October."]),
             ("Museum opens science wing", ["The science wing has 7 interactive rooms.",
                                            "Entry on Sundays is free for students."]),
             ("Weather: a mild week ahead", ["Highs of 21 degrees are expected on Thursday.",
                                             "Light rain is likely on Saturday morning."])]


@dataclass(frozen=True)
class Pools:
    """The names, area code, and titles one family draws its task parameters from."""

    name: str
    first: tuple[str, ...]
    last: tuple[str, ...]
    area: str
    events: tuple[str, ...]
    notes: tuple[str, ...]
    expenses: tuple[str, ...]

    def person(self, rng: random.Random) -> str:
        return f"{rng.choice(self.first)} {rng.choice(self.last)}"

    def phone(self, rng: random.Random) -> str:
        return f"{self.area}-555-{rng.randrange(100, 10000):04d}"


def _half(items: list[str], part: int) -> tuple[str, ...]:
    return tuple(items[part::2])


# Training and IID families draw from MAIN; held-out OOD families from HELD_OUT: no name, number prefix or title shared.
MAIN = Pools("main", _half(_FIRST, 0), _half(_LAST, 0), "415", _half(_EVENTS, 0), _half(_NOTES, 0), _half(_EXPENSES, 0))
HELD_OUT = Pools("held_out", _half(_FIRST, 1), _half(_LAST, 1), "628", _half(_EVENTS, 1), _half(_NOTES, 1),
                 _half(_EXPENSES, 1))
BACKGROUND = Pools("background", MAIN.first + HELD_OUT.first, MAIN.last + HELD_OUT.last, "212",
                   tuple(_EVENTS), tuple(_NOTES), tuple(_EXPENSES))


def date_in_november(rng: random.Random) -> str:
    return f"2026-11-{rng.randrange(23, 31):02d}" if rng.random() < 0.5 else f"2026-12-{rng.randrange(1, 29):02d}"


def clock_time(rng: random.Random) -> str:
    return f"{rng.randrange(7, 21):02d}:{rng.choice(['00', '15', '30', '45'])}"


def background(rng: random.Random, pools: Pools = BACKGROUND) -> dict[str, Any]:
    """A lived-in device: ~24 contacts, conversations, calls, events, notes, expenses, alarms and bookmarks."""
    del pools  # distractors always come from the shared background pool (212 numbers)
    bg = BACKGROUND
    state = empty_state()
    next_id = iter(range(1, 100_000))
    names: list[str] = []
    while len(names) < rng.randrange(20, 28):
        name = bg.person(rng)
        if name not in names:
            names.append(name)
    for name in names:
        first = name.split()[0].lower()
        state["contacts"].append({"id": next(next_id), "name": name, "phone": bg.phone(rng),
                                  "email": f"{first}.{name.split()[1].lower()}@mail.example" if rng.random() < 0.6 else ""})
    for name in rng.sample(names, 5):
        for _ in range(rng.randrange(1, 4)):
            state["messages"].append({"id": next(next_id), "with": name, "text": rng.choice(_TEXTS), "out": rng.random() < 0.5})
    for _ in range(rng.randrange(6, 10)):
        c = rng.choice(state["contacts"])
        state["calls"].append({"id": next(next_id), "name": c["name"], "number": c["phone"],
                               "kind": rng.choice(["Incoming", "Outgoing", "Missed"]), "time": f"Yesterday {clock_time(rng)}"})
    for title in rng.sample(bg.events, 8):
        state["events"].append({"id": next(next_id), "title": title, "date": date_in_november(rng), "time": clock_time(rng)})
    for title in rng.sample(bg.notes, 6):
        state["notes"].append({"id": next(next_id), "title": title, "body": ", ".join(rng.sample(_WORDS, 4))})
    for name in rng.sample(bg.expenses, 8):
        state["expenses"].append({"id": next(next_id), "name": name, "amount": round(rng.randrange(300, 15000) / 100, 2),
                                  "category": rng.choice(CATEGORIES)})
    for t in sorted({clock_time(rng) for _ in range(3)}):
        state["alarms"].append({"id": next(next_id), "time": t, "on": rng.random() < 0.5})
    for i, (title, body) in enumerate(_ARTICLES):
        state["pages"].append({"id": next(next_id), "title": title, "url": f"news.example/{i + 1}", "body": body})
    state["settings"].update(wifi=rng.random() < 0.7, bluetooth=rng.random() < 0.4, dark_theme=rng.random() < 0.3)
    apps = ["contacts", "messages", "phone", "calendar", "notes", "expenses", "clock"]
    state["meta"]["popups"] = {app: rng.choice(["permission", "rate"]) for app in rng.sample(apps, 2)}
    return state
