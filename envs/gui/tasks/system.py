"""Clock, Settings and Browser templates: timers and alarms, toggles on nested settings pages, developer
options behind seven taps on the build number, the font size, and a question answered from a web page."""

from __future__ import annotations

from agentgym.envs.gui.tasks.base import BACK, DONE, Step, Template, open_app, tap, type_into
from agentgym.envs.gui.tasks.helpers import add_row
from agentgym.envs.gui.tasks.world import _ARTICLES

_LABELS = ["Pasta", "Tea", "Laundry", "Oven", "Nap", "Plank", "Eggs", "Bread", "Call mom", "Parking", "Study", "Rice"]


class SetTimer(Template):
    app, name, touches = "clock", "set_timer", frozenset({"timers"})

    def sample(self, rng, pools):
        label = rng.choice(_LABELS)
        return {"minutes": rng.randrange(1, 90), "label": label, "key": label}

    def goal(self, p):
        return f'Start a {p["minutes"]}-minute timer labelled "{p["label"]}".'

    def expected(self, initial, p):
        state = super().expected(initial, p)
        state["timers"].append({"id": 0, "minutes": p["minutes"], "label": p["label"]})
        return state

    def plan(self, p, initial):
        return [open_app("Clock"), tap("clock/tab_timer"), type_into("clock/minutes_field", str(p["minutes"])),
                type_into("clock/label_field", p["label"]), tap("clock/start"), DONE]


class AddAlarm(Template):
    app, name, touches = "clock", "add_alarm", frozenset({"alarms"})

    def sample(self, rng, pools):
        time = f"{rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}"
        return {"time": time, "key": time}

    def setup(self, state, params, rng):
        state["alarms"] = [a for a in state["alarms"] if a["time"] != params["time"]]

    def goal(self, p):
        return f"Set an alarm for {p['time']}."

    def expected(self, initial, p):
        state = super().expected(initial, p)
        state["alarms"].append({"id": 0, "time": p["time"], "on": True})
        return state

    def plan(self, p, initial):
        return [open_app("Clock"), tap("clock/fab"), type_into("clock/time_field", p["time"]), tap("clock/save"), DONE]


class DisableAlarm(Template):
    app, name, touches = "clock", "disable_alarm", frozenset({"alarms"})

    def sample(self, rng, pools):
        time = f"{rng.randrange(4, 11):02d}:{rng.choice(['05', '10', '20', '25', '35', '40', '50', '55'])}"
        return {"time": time, "key": time}

    def setup(self, state, params, rng):
        state["alarms"] = [a for a in state["alarms"] if a["time"] != params["time"]]
        add_row(state, "alarms", {"time": params["time"], "on": True})

    def goal(self, p):
        return f"Turn off the {p['time']} alarm (keep it in the list)."

    def expected(self, initial, p):
        state = super().expected(initial, p)
        next(a for a in state["alarms"] if a["time"] == p["time"])["on"] = False
        return state

    def plan(self, p, initial):
        return [open_app("Clock"), tap(content_description=f"Alarm {p['time']}"), DONE]


_TOGGLES = {"wifi": ("network", "Wi-Fi"), "airplane": ("network", "Airplane mode"), "bluetooth": ("devices", "Bluetooth"),
            "dark_theme": ("display", "Dark theme")}


class ToggleSetting(Template):
    app, name, touches = "settings", "toggle", frozenset({"settings"})

    def sample(self, rng, pools):
        key = rng.choice(sorted(_TOGGLES))
        return {"setting": key, "on": rng.random() < 0.5}

    def group(self, p):
        return f"{self.family}:{p['setting']}:{p['on']}"

    def setup(self, state, params, rng):
        state["settings"][params["setting"]] = not params["on"]

    def goal(self, p):
        return f"Turn {'on' if p['on'] else 'off'} {_TOGGLES[p['setting']][1]}."

    def expected(self, initial, p):
        state = super().expected(initial, p)
        state["settings"][p["setting"]] = p["on"]
        return state

    def plan(self, p, initial):
        page, _ = _TOGGLES[p["setting"]]
        return [open_app("Settings"), tap(f"settings/{page}"), tap(f"settings/switch_{p['setting']}"), DONE]


class FontSize(Template):
    app, name, touches = "settings", "font_size", frozenset({"settings"})

    def sample(self, rng, pools):
        return {"size": rng.choice(["Small", "Large"]), "variant": rng.randrange(1000)}

    def group(self, p):
        return self.family

    def goal(self, p):
        return f"Set the display font size to {p['size']}."

    def expected(self, initial, p):
        state = super().expected(initial, p)
        state["settings"]["font_size"] = p["size"]
        return state

    def plan(self, p, initial):
        return [open_app("Settings"), tap("settings/display"), tap(f"settings/font_{p['size'].lower()}"), DONE]


class UsbDebugging(Template):
    app, name, touches, difficulty = "settings", "usb_debugging", frozenset({"settings"}), "hard"

    def sample(self, rng, pools):
        return {"stay_awake": rng.random() < 0.5, "variant": rng.randrange(1000)}

    def group(self, p):
        return self.family

    def setup(self, state, params, rng):
        state["settings"]["stay_awake"] = params["stay_awake"]

    def goal(self, p):
        return "Enable USB debugging in Developer options (developer options are not enabled yet)."

    def expected(self, initial, p):
        state = super().expected(initial, p)
        state["settings"].update(developer=True, usb_debugging=True)
        return state

    def plan(self, p, initial):
        return [open_app("Settings"), tap("settings/about"), *[tap("settings/build")] * 7, BACK, tap("settings/system"),
                tap("settings/developer"), tap("settings/switch_usb_debugging"), DONE]


_FACTS = [(0, "until what time will the library open on weekdays", "22:00"), (0, "how many new seats does the reading room get", "40"),
          (1, "how many days does the festival run", "3"), (1, "how much does a ticket cost in dollars", "12"),
          (2, "how many kilometres of bike lanes were approved", "18"), (2, "in which month does construction end", "October"),
          (3, "how many interactive rooms does the science wing have", "7"), (3, "on which day is entry free for students", "Sunday"),
          (4, "what high temperature is expected on Thursday in degrees", "21"), (4, "on which day is light rain likely", "Saturday")]


class ArticleQuestion(Template):
    app, name, info = "browser", "article_fact", True

    def sample(self, rng, pools):
        return {"fact": rng.randrange(len(_FACTS))}

    def group(self, p):
        return f"{self.family}:{p['fact']}"

    def goal(self, p):
        article, question, _ = _FACTS[p["fact"]]
        return f'Open the bookmarked article "{_ARTICLES[article][0]}" in the Browser app: {question}?'

    def answers(self, p, initial):
        return [_FACTS[p["fact"]][2]]

    def plan(self, p, initial):
        article, _, answer = _FACTS[p["fact"]]
        return [open_app("Browser"), tap("browser/bookmark_title", text=_ARTICLES[article][0]), Step("answer", value=answer)]


TEMPLATES = [SetTimer(), AddAlarm(), DisableAlarm(), ToggleSetting(), FontSize(), UsbDebugging(), ArticleQuestion()]
