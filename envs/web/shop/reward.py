"""WebShop's purchase reward, exact because the generator knows every product's type and attributes.

reward = r_type x (matched attributes + matched options + price ok) / (goal attributes + goal options + 1),
with fuzzy matching (``rapidfuzz.fuzz.token_set_ratio > 85``) as in WebShop's ``get_reward``. ``r_type`` is
1 for the goal's product type, 0.5 for another type of the same top category, 0.1 when the title still
contains the type noun, else 0 (WebShop approximates these with spaCy; the generator knows them).
"""

from __future__ import annotations

from collections.abc import Mapping

from agentgym.envs.web.shop.catalog import Goal, Product
from agentgym.extras import require

FUZZ_THRESHOLD = 85


def _fuzzy(a: str, b: str) -> bool:
    fuzz = require("rapidfuzz.fuzz", "web")
    return fuzz.token_set_ratio(a.lower(), b.lower()) > FUZZ_THRESHOLD


def type_reward(goal: Goal, product: Product) -> float:
    """r_type of buying `product` for `goal`."""
    if product.product_type == goal.product_type:
        return 1.0
    if product.category == goal.category:
        return 0.5
    return 0.1 if goal.product_type.split()[-1] in product.title.lower() else 0.0


def purchase_reward(goal: Goal, product: Product, chosen: Mapping[str, str]) -> tuple[float, dict[str, float]]:
    """(reward, components) for buying `product` with options `chosen`."""
    text = " ".join([product.title, product.description, *product.features]).lower()
    attr_hits = sum(1 for a in goal.attributes
                    if any(_fuzzy(a, pa) for pa in product.attributes) or a.lower() in text)
    option_hits = sum(1 for v in goal.options.values() if any(_fuzzy(v, c) for c in chosen.values()))
    price_ok = 1.0 if product.price <= goal.price_upper else 0.0
    r_type = type_reward(goal, product)
    n = len(goal.attributes) + len(goal.options)
    reward = r_type * (attr_hits + option_hits + price_ok) / (n + 1)
    components = {"r_type": r_type, "r_att": attr_hits / max(1, len(goal.attributes)),
                  "r_option": option_hits / max(1, len(goal.options)), "r_price": price_ok}
    return round(reward, 6), components
