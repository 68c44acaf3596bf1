"""GUI task suite and rewards without a browser: the pinned manifest, clean splits with disjoint pools, budgets,
the app store's validation, and the reward-hacking guards (wrong field, collateral damage, wrong answers)."""

from __future__ import annotations

import json
import random

import pytest

from agentgym.envs.gui.device.store import OpError, PhoneStore
from agentgym.envs.gui.scoring import score
from agentgym.envs.gui.suite import MANIFEST, SPLIT_RULE, load_suite, pools_of
from agentgym.envs.gui.tasks import TEMPLATES
from agentgym.envs.gui.tasks.world import HELD_OUT, MAIN
from agentgym.tasks import near_duplicates


@pytest.fixture(scope="module")
def suite():
    return load_suite()


def test_pinned_manifest_is_unchanged(suite):
    pinned = json.loads(MANIFEST.read_text())
    now = suite.pinned()
    for split in ("train", "dev", "test"):
        assert now["splits"][split]["checksum"] == pinned["splits"][split]["checksum"], (
            f"the {split} manifest of gui-phone-v0 changed: a generator change must bump the suite version")
    assert now["splits"]["test"]["task_ids"] == pinned["splits"]["test"]["task_ids"]


def test_at_least_30_templates_over_8_apps_plus_browser(suite):
    assert len(TEMPLATES) >= 30
    apps = {t.app for t in TEMPLATES.values()}
    assert {"contacts", "messages", "phone", "calendar", "notes", "expenses", "clock", "settings", "browser"} <= apps
    assert {t.family for t in suite.tasks()} == set(TEMPLATES)


def test_splits_share_no_task_group_or_near_duplicate_and_ood_uses_disjoint_pools(suite):
    train, dev, test = (suite.tasks(s) for s in ("train", "dev", "test"))
    assert train and dev and test
    assert not {t.id for t in train} & {t.id for t in test + dev}
    assert not {t.group for t in train} & {t.group for t in test + dev}
    for held in (dev, test):
        assert near_duplicates([t.data["goal"] for t in train], [t.data["goal"] for t in held], threshold=0.7) == []
    ood = SPLIT_RULE.ood_test_families | SPLIT_RULE.ood_dev_families
    assert not ood & {t.family for t in train}
    assert {t.family for t in test if suite.axis_of(t.id) == "ood"} == SPLIT_RULE.ood_test_families
    assert not set(MAIN.first) & set(HELD_OUT.first) and not set(MAIN.last) & set(HELD_OUT.last)
    assert not set(MAIN.events) & set(HELD_OUT.events) and MAIN.area != HELD_OUT.area
    train_names = {t.params.get("name") for t in train} - {None}
    for t in test:
        if t.family in ood and "name" in t.params:
            assert t.params["name"] not in train_names and t.params["name"].split()[0] in HELD_OUT.first


def test_budgets_are_about_twice_the_oracle_plan(suite):
    for task in suite.tasks():
        template = TEMPLATES[task.family]
        plan = template.plan(dict(task.params), template.initial_state(dict(task.params), pools_of(template)))
        assert 2 * len(plan) <= task.data["budget"] <= 2 * len(plan) + 8


def test_initial_states_are_seeded_have_distractors_and_a_long_contact_list(suite):
    task = suite.tasks("test")[0]
    template = TEMPLATES[task.family]
    a = template.initial_state(dict(task.params), pools_of(template))
    b = template.initial_state(dict(task.params), pools_of(template))
    assert a == b
    assert len(a["contacts"]) >= 20 and len(a["events"]) >= 8 and a["meta"]["popups"]


def test_store_validates_edits_and_commits_nothing_on_refusal():
    store = PhoneStore(TEMPLATES["contacts/add_contact"].initial_state({"name": "X Y", "phone": "1", "seed": 1}, MAIN))
    before = json.dumps(store.state, sort_keys=True)
    for op, args in [("contact.add", {"name": "", "phone": "415"}), ("contact.add", {"name": "A", "phone": "call me"}),
                     ("event.add", {"title": "T", "date": "tomorrow", "time": "10:00"}),
                     ("expense.add", {"name": "N", "amount": "-3", "category": "Food"}),
                     ("expense.add", {"name": "N", "amount": "3", "category": "Gifts"}),
                     ("setting.set", {"key": "wifi", "value": "yes"}), ("contact.delete", {"id": 99999}), ("rm -rf", {})]:
        with pytest.raises(OpError):
            store.apply(op, args)
    assert json.dumps(store.state, sort_keys=True) == before


def _episode(family: str, seed: int = 0):
    template = TEMPLATES[family]
    params = {**template.sample(random.Random(seed), MAIN), "seed": seed}
    initial = template.initial_state(params, MAIN)
    return template, params, initial, PhoneStore(initial)


def test_right_text_in_the_wrong_field_does_not_score():
    template, p, initial, store = _episode("contacts/add_contact")
    store.apply("contact.add", {"name": p["phone"], "phone": "", "email": p["name"]})   # swapped fields
    assert score(template, p, initial, store.state, None, True).reward == 0.0
    template, p, initial, store = _episode("contacts/add_contact")
    store.apply("contact.add", {"name": p["name"], "phone": p["phone"]})
    assert score(template, p, initial, store.state, None, True).reward == 1.0
    assert score(template, p, initial, store.state, None, False).reward == 0.0     # claimed infeasible


def test_collateral_damage_does_not_score():
    template, p, initial, store = _episode("contacts/delete_contact")
    target = store.contact_named(p["name"])
    other = next(c for c in store.state["contacts"] if c is not target)
    store.apply("contact.delete", {"id": target["id"]})
    store.apply("contact.delete", {"id": other["id"]})                               # an extra deletion
    out = score(template, p, initial, store.state, None, True)
    assert out.reward == 0.0 and out.components["state_match"] == 0.0
    template, p, initial, store = _episode("settings/toggle")
    store.apply("setting.set", {"key": p["setting"], "value": p["on"]})
    store.apply("note.delete", {"id": store.state["notes"][0]["id"]})                # damage in another app
    out = score(template, p, initial, store.state, None, True)
    assert out.reward == 0.0 and out.components["goal_met"] == 1.0 and out.components["other_apps_intact"] == 0.0


def test_information_answers_are_normalised_and_must_not_change_data():
    template, p, initial, store = _episode("contacts/phone_lookup")
    assert score(template, p, initial, store.state, p["phone"].replace("-", ""), True).reward == 1.0
    assert score(template, p, initial, store.state, f" {p['phone']}. ", True).reward == 1.0
    assert score(template, p, initial, store.state, "415-555-0000", True).reward == 0.0
    assert score(template, p, initial, store.state, None, True).reward == 0.0        # status without an answer
    store.apply("contact.delete", {"id": store.contact_named(p["name"])["id"]})
    assert score(template, p, initial, store.state, p["phone"], True).reward == 0.0


def test_oracle_handles_popups_keyboard_and_scrolls_both_ways():
    from agentgym.envs.gui.actions import PhoneAction
    from agentgym.envs.gui.observation import ScreenObservation, UIElement
    from agentgym.envs.gui.oracle import OraclePlayer
    from agentgym.envs.gui.tasks.base import tap

    def el(rid, text=None, scrollable=False):
        return UIElement(text=text, content_description=None, class_name="android.widget.TextView",
                         bbox_pixels=(0, 0, 10, 10), is_scrollable=scrollable, resource_id=rid)

    player = OraclePlayer([tap("contacts/row_title", text="Zoe Kim")])
    listing = [el("contacts/list", scrollable=True), el("contacts/row_title", "Ava Chen")]
    dialog = ScreenObservation([*listing, el("dialog/panel"), el("dialog/positive"), el("dialog/negative")], False)
    assert player.next(dialog) == PhoneAction("click", index=4)                       # pop-ups are dismissed first
    assert player.next(ScreenObservation(listing, True)) == PhoneAction("navigate_back")  # the keyboard hides rows
    assert player.next(ScreenObservation(listing, False)) == PhoneAction("scroll", index=0, direction="down")
    assert player.next(ScreenObservation(listing, False)) == PhoneAction("scroll", index=0, direction="up")  # list end
    found = ScreenObservation([*listing, el("contacts/row_title", "Zoe Kim")], False)
    assert player.next(found) == PhoneAction("click", index=2) and player.next(found) is None
