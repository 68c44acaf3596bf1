"""The shop's seeded catalog and goals: a category tree, typed attributes, options and prices, and WebShop-style
instructions built from a target product's attributes, options and a price bound.

Everything is derived from a fixed seed, so the generator knows the truth of every goal and the reward is
exact. Each leaf category (product type) owns its attribute vocabulary, so held-out subtrees also have
unseen attribute words.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# top category -> product type -> (attributes, {option dimension: values}, (min price, max price))
CATEGORY_TREE: dict[str, dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]], tuple[float, float]]]] = {
    "beauty": {
        "shampoo": (("sulfate free", "paraben free", "for dry hair", "natural ingredients", "color safe", "vegan"),
                    {"size": ("8 fl oz", "12 fl oz", "16 fl oz"), "scent": ("lavender", "coconut", "mint")}, (6, 30)),
        "face moisturizer": (("oil free", "fragrance free", "with spf 30", "hyaluronic acid", "non comedogenic",
                              "for sensitive skin"), {"size": ("1.7 oz", "3.4 oz"), "skin type": ("dry", "oily", "normal")},
                             (9, 45)),
        "lipstick": (("long lasting", "matte finish", "cruelty free", "moisturizing", "waterproof", "creamy"),
                     {"color": ("ruby red", "nude pink", "berry", "coral")}, (5, 25)),
    },
    "grocery": {
        "coffee beans": (("whole bean", "dark roast", "organic", "fair trade", "single origin", "low acid"),
                         {"size": ("12 oz", "2 lb", "5 lb"), "flavor": ("original", "hazelnut", "vanilla")}, (8, 40)),
        "snack bars": (("gluten free", "high protein", "low sugar", "keto friendly", "non gmo", "plant based"),
                       {"flavor": ("chocolate chip", "peanut butter", "almond"), "size": ("12 count", "24 count")},
                       (10, 35)),
        "herbal tea": (("caffeine free", "organic", "loose leaf", "calming", "decaf", "antioxidant rich"),
                       {"flavor": ("chamomile", "peppermint", "ginger"), "size": ("20 bags", "50 bags")}, (4, 20)),
    },
    "electronics": {
        "wireless headphones": (("noise cancelling", "bluetooth 5.3", "over ear", "foldable", "long battery life",
                                 "with microphone"), {"color": ("black", "white", "navy blue")}, (25, 200)),
        "phone case": (("shockproof", "slim fit", "wireless charging compatible", "clear back", "with kickstand",
                        "anti scratch"), {"color": ("black", "clear", "pink", "green"),
                                          "model": ("iphone 15", "iphone 14", "galaxy s24")}, (8, 35)),
        "usb c cable": (("fast charging", "braided nylon", "data sync", "right angle", "durable", "6 ft long"),
                        {"length": ("3 ft", "6 ft", "10 ft"), "color": ("black", "white")}, (6, 22)),
    },
    "fashion": {
        "t-shirt": (("cotton", "slim fit", "crew neck", "moisture wicking", "short sleeve", "machine washable"),
                    {"color": ("black", "white", "heather grey", "navy"), "size": ("small", "medium", "large", "x-large")},
                    (8, 30)),
        "running shoes": (("lightweight", "breathable", "non slip", "arch support", "memory foam", "wide toe box"),
                          {"color": ("black", "grey", "blue"), "size": ("8", "9", "10", "11")}, (35, 120)),
        "backpack": (("water resistant", "laptop compartment", "anti theft", "usb charging port", "padded straps",
                      "large capacity"), {"color": ("black", "grey", "olive")}, (20, 80)),
    },
    "home": {
        "bed sheets": (("deep pocket", "microfiber", "wrinkle free", "cooling", "hypoallergenic", "egyptian cotton"),
                       {"size": ("twin", "queen", "king"), "color": ("white", "grey", "sage")}, (20, 90)),
        "desk lamp": (("dimmable", "led", "eye caring", "touch control", "adjustable arm", "energy efficient"),
                      {"color": ("black", "white", "silver")}, (15, 60)),
        "throw pillow": (("soft", "machine washable", "decorative", "hidden zipper", "velvet", "square"),
                         {"color": ("mustard", "teal", "cream"), "size": ("18 x 18 inch", "20 x 20 inch")}, (10, 40)),
    },
    "garden": {  # held out whole (OOD test)
        "garden hose": (("expandable", "kink free", "heavy duty", "leak proof", "lightweight", "with spray nozzle"),
                        {"length": ("25 ft", "50 ft", "100 ft")}, (18, 70)),
        "planter pot": (("with drainage hole", "ceramic", "indoor outdoor", "self watering", "modern", "frost proof"),
                        {"size": ("6 inch", "8 inch", "10 inch"), "color": ("terracotta", "white", "charcoal")}, (10, 50)),
    },
    "sports": {  # held out whole (OOD dev)
        "yoga mat": (("non slip", "extra thick", "eco friendly", "with carrying strap", "sweat resistant", "tpe"),
                     {"color": ("purple", "black", "teal"), "thickness": ("1/4 inch", "1/2 inch")}, (15, 60)),
        "water bottle": (("insulated", "leak proof", "bpa free", "stainless steel", "wide mouth", "with straw lid"),
                         {"size": ("24 oz", "32 oz", "40 oz"), "color": ("black", "white", "lilac")}, (12, 45)),
    },
}
BRANDS = ("Acorn", "Brightway", "Cobalt", "Dune", "Evergreen", "Fable", "Granite", "Harbor", "Indigo", "Juniper",
          "Kestrel", "Lumen", "Maple", "Nimbus", "Orchid", "Pioneer", "Quill", "Ridge", "Summit", "Tidal")
SERIES = ("Nova", "Prime", "Flex", "Aero", "Core", "Pulse", "Vita", "Zen", "Terra", "Luxe")
PRODUCTS_PER_TYPE = 30
GOALS_PER_TYPE = 20
CATALOG_SEED = 20240501


@dataclass(frozen=True)
class Product:
    """One item of the catalog."""

    asin: str
    category: str          # top category
    product_type: str      # leaf category
    title: str
    brand: str
    attributes: tuple[str, ...]
    options: dict[str, tuple[str, ...]] = field(hash=False)
    price: float = 0.0
    description: str = ""
    features: tuple[str, ...] = ()
    reviews: tuple[str, ...] = ()


@dataclass(frozen=True)
class Goal:
    """What a shopper wants: the target's type, some of its attributes, chosen options and a price bound."""

    asin: str
    category: str
    product_type: str
    attributes: tuple[str, ...]
    options: dict[str, str] = field(hash=False)
    price_upper: float = 0.0
    instruction: str = ""


_TEMPLATES = (
    "i need {a} {t}{o}, and price lower than {p:.2f} dollars",
    "i am looking for {a} {t}{o}, and price lower than {p:.2f} dollars",
    "find me {a} {t}{o}, with a price under {p:.2f} dollars",
    "i want to buy {a} {t}{o}, and it should cost less than {p:.2f} dollars",
)


def _article(words: str) -> str:
    return ("an " if words[:1] in "aeiou" else "a ") + words


def build_catalog(seed: int = CATALOG_SEED) -> tuple[list[Product], list[Goal]]:
    """The whole catalog and its goals, deterministic in `seed`."""
    rng = random.Random(seed)
    products: list[Product] = []
    goals: list[Goal] = []
    used_titles: set[str] = set()
    for category, types in CATEGORY_TREE.items():
        for ptype, (attrs, options, (lo, hi)) in types.items():
            type_products: list[Product] = []
            for i in range(PRODUCTS_PER_TYPE):
                chosen = tuple(sorted(rng.sample(attrs, rng.randint(2, 4))))
                brand = rng.choice(BRANDS)
                series = f"{rng.choice(SERIES)} {rng.randint(10, 99)}"
                title = f"{brand} {series} {ptype.title()}, {', '.join(a.title() for a in chosen)}"
                if title in used_titles:
                    continue
                used_titles.add(title)
                opts = {dim: tuple(sorted(rng.sample(vals, rng.randint(min(2, len(vals)), len(vals)))))
                        for dim, vals in options.items()}
                asin = "B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))
                price = round(rng.uniform(lo, hi), 2)
                product = Product(
                    asin=asin, category=category, product_type=ptype, title=title, brand=brand, attributes=chosen,
                    options=opts, price=price,
                    description=f"The {brand} {series} {ptype} is {', '.join(chosen)}. Made for everyday use.",
                    features=tuple(f"{a.capitalize()}: designed to be {a}." for a in chosen),
                    reviews=(f"Great {ptype}, would buy again. {rng.randint(3, 5)} stars.",
                             f"Does what it says. {rng.randint(2, 5)} stars."))
                type_products.append(product)
            products.extend(type_products)
            for product in rng.sample(type_products, min(GOALS_PER_TYPE, len(type_products))):
                want = tuple(sorted(rng.sample(product.attributes, rng.randint(1, min(2, len(product.attributes))))))
                dims = sorted(product.options)
                picked = {d: rng.choice(product.options[d]) for d in rng.sample(dims, rng.randint(1, len(dims)))}
                upper = float(int(product.price * rng.uniform(1.1, 1.6)) + rng.choice((0, 10, 20)))
                opt_text = "".join(f"{', and' if k else ' with'} {d}: {v}" for k, (d, v) in enumerate(sorted(picked.items())))
                text = rng.choice(_TEMPLATES).format(a=_article(" and ".join(want)), t=ptype, o=opt_text, p=upper)
                goals.append(Goal(product.asin, category, ptype, want, dict(sorted(picked.items())), upper, text))
    return products, goals
