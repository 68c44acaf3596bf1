"""Web suites without a browser: splits, pinned manifests, near-duplicates, the shop's catalog, app, search and
WebShop reward, and the network allow-list."""

from __future__ import annotations

import json

import pytest

from agentgym.envs.browser.network import NetworkPolicy
from agentgym.envs.web.miniwob import MANIFEST as MINIWOB_MANIFEST
from agentgym.envs.web.miniwob import OOD_DEV, OOD_TEST, SOLVERS, family_of, load_suite, task_names
from agentgym.envs.web.shop.app import ORIGIN, ShopApp
from agentgym.envs.web.shop.catalog import build_catalog
from agentgym.envs.web.shop.reward import purchase_reward
from agentgym.envs.web.shop.suite import MANIFEST as SHOP_MANIFEST
from agentgym.envs.web.shop.suite import load_world
from agentgym.tasks import near_duplicates


@pytest.mark.parametrize("suite, manifest", [(lambda: load_suite(), MINIWOB_MANIFEST),
                                             (lambda: load_world().suite, SHOP_MANIFEST)], ids=["miniwob", "shop"])
def test_pinned_manifest_is_unchanged_and_splits_share_no_task_or_group(suite, manifest):
    suite = suite()
    pinned = json.loads(manifest.read_text())
    now = suite.pinned()
    for split in ("train", "dev", "test"):
        assert now["splits"][split]["checksum"] == pinned["splits"][split]["checksum"], f"{split} changed: bump the version"
    assert now["splits"]["test"]["task_ids"] == pinned["splits"]["test"]["task_ids"]
    train, dev, test = (suite.tasks(s) for s in ("train", "dev", "test"))
    assert train and dev and test
    assert not ({t.id for t in train} & {t.id for t in test} or {t.id for t in train} & {t.id for t in dev})
    assert not {t.group for t in train} & ({t.group for t in test} | {t.group for t in dev})
    ood = {t.family for t in suite.tasks("test", "ood")}
    assert ood and not ood & {t.family for t in train}


def test_miniwob_suite_covers_the_package_and_keeps_similar_tasks_together():
    names = task_names()
    assert len(names) >= 125 and set(SOLVERS) <= set(names)
    assert family_of("click-tab-2-hard") == family_of("click-tab") == "click-tab"
    assert family_of("use-autocomplete-nodelay") == "use-autocomplete"
    assert family_of("email-inbox-forward-nl-turk") == "email-inbox"
    suite = load_suite()
    assert {t.family for t in suite.tasks("test", "ood")} == set(OOD_TEST)
    assert {t.family for t in suite.tasks("dev", "ood")} == set(OOD_DEV)
    # every task with a scripted solver is trained on and held out by seed (IID), never OOD
    assert not {family_of(n) for n in SOLVERS} & (OOD_TEST | OOD_DEV)
    assert {t.params["task"] for t in suite.tasks("test", "iid")} >= set(SOLVERS)
    # OOD families: no task name of a held-out family looks like a training task's name
    train_names = sorted({t.params["task"] for t in suite.tasks("train")})
    ood_names = sorted({t.params["task"] for t in suite.tasks("test", "ood")})
    norm = lambda s: s.replace("-", " ")  # noqa: E731
    assert near_duplicates(train_names, ood_names, threshold=0.7, n=2, normalize=norm) == []


def test_shop_instructions_have_no_near_duplicates_across_splits_and_goals_are_satisfiable():
    world = load_world()
    suite = world.suite
    train = [t.data["instruction"] for t in suite.tasks("train")]
    for split in ("dev", "test"):
        held = [t.data["instruction"] for t in suite.tasks(split)]
        assert near_duplicates(train, held, threshold=0.7) == []
    assert {t.family for t in suite.tasks("test", "ood")} == {"garden"}
    by_asin = {p.asin: p for p in world.products}
    for task in suite.tasks():
        goal = world.goals[task.id]
        target = by_asin[goal.asin]
        assert set(goal.attributes) <= set(target.attributes) and goal.price_upper >= target.price
        assert all(v in target.options[d] for d, v in goal.options.items())
        assert purchase_reward(goal, target, goal.options)[0] == 1.0


def test_catalog_is_deterministic_and_titles_are_unique():
    a, b = build_catalog(), build_catalog()
    assert [p.asin for p in a[0]] == [p.asin for p in b[0]] and [g.instruction for g in a[1]] == [g.instruction for g in b[1]]
    assert len({p.title for p in a[0]}) == len(a[0]) and len({p.asin for p in a[0]}) == len(a[0])
    assert build_catalog(seed=1)[0][0].asin != a[0][0].asin


def test_webshop_reward_formula_partial_credit():
    world = load_world()
    goal = next(g for g in world.goals.values() if len(g.attributes) == 2 and len(g.options) >= 1)
    by_asin = {p.asin: p for p in world.products}
    target = by_asin[goal.asin]
    n = len(goal.attributes) + len(goal.options)
    # wrong options: lose exactly the option credit
    reward, comps = purchase_reward(goal, target, {})
    assert reward == pytest.approx((n + 1 - len(goal.options)) / (n + 1)) and comps["r_option"] == 0.0
    # another type of another category: r_type 0 (or 0.1 when its title holds the type noun)
    other = next(p for p in world.products if p.category != goal.category)
    assert purchase_reward(goal, other, goal.options)[0] <= 0.1
    # same category, other type: r_type 0.5
    sibling = next(p for p in world.products if p.category == goal.category and p.product_type != goal.product_type)
    assert purchase_reward(goal, sibling, {})[1]["r_type"] == 0.5


def test_shop_app_search_pages_options_and_purchase():
    world = load_world()
    app = ShopApp(world.products, world.index)
    target = world.products[5]
    assert world.index.search(target.title)[0].asin == target.asin
    page = app("GET", f"{ORIGIN}/search?q=" + target.title.replace(" ", "+"), None).body
    assert f'data-asin="{target.asin}"' in page and "Total results" in page
    dim, value = next(iter(target.options.items()))
    item = app("GET", f"{ORIGIN}/item/{target.asin}?q=x&{dim}={value[0].replace(' ', '+')}", None).body
    assert "Buy Now" in item and "(selected)" in item and "Description" in item
    assert "Features" in app("GET", f"{ORIGIN}/item/{target.asin}/features?q=x", None).body
    assert app("GET", f"{ORIGIN}/nope", None).status == 404
    assert app.purchase is None
    app("GET", f"{ORIGIN}/buy/{target.asin}?{dim}={value[0].replace(' ', '+')}&color=not-an-option", None)
    assert app.purchase is not None and app.purchase.asin == target.asin and app.purchase.options == {dim: value[0]}


@pytest.mark.parametrize("url, allowed", [
    ("http://shop.local/search?q=x", True), ("HTTP://SHOP.LOCAL/", True), ("about:blank", True),
    ("file:///srv/tasks/a.html", True), ("file:///srv/tasks/../secrets", False), ("file:///srv/tasks2/a", False),
    ("http://shop.local.evil.com/", False), ("https://shop.local/", False), ("http://example.com/", False),
    ("javascript:alert(1)", False), ("data:text/html,<b>x</b>", False), ("chrome://settings", False),
    ("file://evil.com/srv/tasks/a.html", False), ("http://127.0.0.1:8080/", False), ("", False)])
def test_network_policy_allows_only_the_task_origins(url, allowed):
    policy = NetworkPolicy(origins=("http://shop.local",), file_roots=("/srv/tasks",))
    assert policy.allows(url) is allowed
    if not allowed:
        assert "goto refused" in policy.refusal(url)
