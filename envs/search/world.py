"""A seeded knowledge graph of a fictional world: people, places, organisations, works and awards.

Everything is derived from one integer seed, so a world is rebuilt bit-for-bit anywhere. Names are
pseudo-words (no overlap with pretraining knowledge); a share of them are near-identical variants of
another entity's name (distractors) that still differ after stemming, and every display name and alias
is unique across the whole world, so a question that names an entity names exactly one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

ONSETS = ("b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "kl", "l", "m", "n", "p", "pr", "r",
          "s", "st", "t", "tr", "v", "w", "z", "th", "sh", "qu")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou", "y", "ei")
CODAS = ("", "", "n", "r", "l", "s", "th", "m", "nd", "rk", "x", "v", "lt")
FEMALE_ENDINGS = ("a", "ine", "elle", "ia", "ette", "ora")
MALE_ENDINGS = ("o", "an", "ric", "us", "en", "ald")
CITY_SUFFIXES = ("ford", "mere", "haven", "burg", "dale", "port", "ton", "wick", "field", "stad", "moor", "crest")
COUNTRY_SUFFIXES = ("ia", "land", "ora", "istan", "eria", "onia")
ORG_TYPES = {  # suffix -> what the organisation is
    "Industries": "manufacturing company", "Holdings": "holding company", "Press": "publishing house",
    "Studios": "film studio", "Bank": "bank", "Institute": "research institute", "Records": "record label",
    "Foundation": "charitable foundation", "Works": "engineering firm", "Laboratories": "laboratory",
    "Motors": "car maker", "Airways": "airline", "Trading Company": "trading company", "University": "university",
}
FILM_ADJECTIVES = ("Silent", "Crimson", "Hollow", "Last", "Distant", "Broken", "Golden", "Hidden", "Burning",
                   "Quiet", "Frozen", "Wandering", "Bitter", "Pale", "Endless", "Lonely", "Northern", "Forgotten",
                   "Restless", "Velvet", "Iron", "Glass", "Scarlet", "Winter", "Summer", "Sleeping", "Dark",
                   "Bright", "Savage", "Gentle", "Secret", "Wild", "Narrow", "Empty", "Fallen", "Little")
FILM_NOUNS = ("River", "Harbor", "Garden", "Mirror", "Empire", "Orchard", "Lantern", "Voyage", "Tide", "Kingdom",
              "Letter", "Promise", "Signal", "Frontier", "Shadow", "Bridge", "Station", "Island", "Fortress",
              "Carnival", "Meadow", "Tower", "Desert", "Compass", "Season", "Crown", "Horizon", "Canyon", "Machine",
              "Parade", "Lighthouse", "Archive", "Passage", "Monsoon", "Outpost", "Cathedral", "Ballad", "Hunter")
GENRES = ("drama", "comedy", "thriller", "documentary", "western", "science fiction", "war", "musical",
          "crime", "romance", "horror", "adventure")
OCCUPATIONS = ("painter", "engineer", "novelist", "physician", "architect", "composer", "economist", "chemist",
               "journalist", "sculptor", "diplomat", "historian", "mathematician", "photographer", "poet",
               "lawyer", "banker", "astronomer", "actor", "playwright")
FIELDS = ("Literature", "Physics", "Architecture", "Music", "Medicine", "Cinema", "Engineering", "Painting",
          "Economics", "Journalism", "Poetry", "Chemistry")
LANGUAGES = ("Velan", "Ostric", "Marun", "Tessic", "Oldric", "Kaveli", "Sunari", "Dremish")

# How a target passage count splits over entity kinds (a person renders to 2-3 passages).
SHARE = {"person": 0.30, "org": 0.12, "film": 0.12, "city": 0.0125, "country": 0.0012, "award": 0.0015}


@dataclass
class Entity:
    """A node of the graph: kind, display name, aliases (other surface forms) and typed attributes/relations."""

    id: str
    kind: str
    name: str
    aliases: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    """The knowledge graph of one seed; passages are rendered from it by ``render.render_world``."""

    seed: int
    entities: dict[str, Entity]

    def of_kind(self, kind: str) -> list[Entity]:
        """Entities of one kind, in id order."""
        return [e for e in self.entities.values() if e.kind == kind]

    def surface_forms(self, entity_id: str) -> list[str]:
        """The name then the aliases of an entity."""
        e = self.entities[entity_id]
        return [e.name, *e.aliases]


class _Names:
    """Unique pseudo-word names; every surface form is registered so no two entities share one."""

    def __init__(self, rng: random.Random, stem: Any):
        self.rng = rng
        self.stem = stem
        self.taken: set[str] = set()
        self.taken_stems: set[tuple[str, ...]] = set()

    def _key(self, name: str) -> tuple[str, ...]:
        return tuple(self.stem(w.lower()) for w in name.replace("-", " ").split())

    def free(self, *names: str) -> bool:
        return all(n.lower() not in self.taken and self._key(n) not in self.taken_stems for n in names)

    def take(self, *names: str) -> None:
        for n in names:
            self.taken.add(n.lower())
            self.taken_stems.add(self._key(n))

    def word(self, syllables: int) -> str:
        r = self.rng
        parts = [r.choice(ONSETS) + r.choice(VOWELS) + r.choice(CODAS) for _ in range(syllables)]
        return "".join(parts).capitalize()

    def variant(self, word: str) -> str:
        """A near-identical spelling: one vowel changed (the stemmed form must still differ)."""
        r = self.rng
        positions = [i for i, ch in enumerate(word) if ch.lower() in "aeiou"]
        if not positions:
            return word + r.choice("aeiou")
        i = r.choice(positions)
        repl = r.choice([v for v in "aeiou" if v != word[i].lower()])
        out = word[:i] + (repl.upper() if word[i].isupper() else repl) + word[i + 1:]
        return out


def _first_name(names: _Names, gender: str) -> str:
    endings = FEMALE_ENDINGS if gender == "f" else MALE_ENDINGS
    return names.word(names.rng.choice((1, 1, 2))) + names.rng.choice(endings)


def _scale(passages: int) -> dict[str, int]:
    return {
        "person": max(60, round(passages * SHARE["person"])),
        "org": max(20, round(passages * SHARE["org"])),
        "film": max(20, round(passages * SHARE["film"])),
        "city": max(24, round(passages * SHARE["city"])),
        "country": max(5, round(passages * SHARE["country"])),
        "award": max(6, round(passages * SHARE["award"])),
    }


def generate_world(seed: int, passages: int = 20_000, distractor_rate: float = 0.15) -> World:
    """Build the graph of `seed`, sized so that rendering yields about `passages` passages."""
    from Stemmer import Stemmer  # PyStemmer: the same stemmer the BM25 index uses

    stemmer = Stemmer("english")
    rng = random.Random(seed)
    names = _Names(rng, stemmer.stemWord)
    n = _scale(passages)
    ents: dict[str, Entity] = {}

    def add(kind: str, name: str, aliases: list[str] | None = None, **attrs: Any) -> Entity:
        e = Entity(f"e{len(ents):06d}", kind, name, list(aliases or []), dict(attrs))
        ents[e.id] = e
        return e

    def fresh(make: Any, tries: int = 200) -> str:
        for _ in range(tries):
            cand = make()
            if names.free(cand):
                names.take(cand)
                return cand
        raise RuntimeError("name space exhausted; use fewer passages or more syllables")

    # --- countries and cities -------------------------------------------------------------------
    countries = [add("country", fresh(lambda: names.word(2) + rng.choice(COUNTRY_SUFFIXES)),
                     language=rng.choice(LANGUAGES), founded=rng.randint(1700, 1950)) for _ in range(n["country"])]
    cities: list[Entity] = []
    for i in range(n["city"]):
        country = countries[i % len(countries)] if i < len(countries) else rng.choice(countries)
        name = fresh(lambda: names.word(rng.choice((1, 2))) + rng.choice(CITY_SUFFIXES))
        aliases: list[str] = []
        if rng.random() < 0.2:
            old = fresh(lambda: names.word(2))
            aliases.append(old)
        cities.append(add("city", name, aliases, country=country.id, population=rng.randint(8_000, 4_000_000),
                          founded=rng.randint(1100, 1900)))
    for country in countries:
        own = [c for c in cities if c.attrs["country"] == country.id]
        country.attrs["capital"] = rng.choice(own).id

    # --- people in three generations (grandparents, parents, children) --------------------------
    surnames: list[str] = []

    def surname() -> str:
        if surnames and rng.random() < distractor_rate:
            for _ in range(20):
                cand = names.variant(rng.choice(surnames))
                if names.free(cand):
                    names.take(cand)
                    surnames.append(cand)
                    return cand
        cand = fresh(lambda: names.word(rng.choice((1, 2, 2))))
        surnames.append(cand)
        return cand

    people: list[Entity] = []

    def person(gen: int, born: int, last: str | None = None, father: str | None = None,
               mother: str | None = None) -> Entity:
        gender = rng.choice("fm")
        for _ in range(200):
            first = _first_name(names, gender)
            last_name = last or surname()
            middle = _first_name(names, gender)
            full, formal = f"{first} {last_name}", f"{first} {middle} {last_name}"
            # near-identical first names with the same surname are distractors too
            if names.free(full, formal):
                names.take(full, formal)
                break
        else:
            raise RuntimeError("person name space exhausted")
        city = rng.choice(cities)
        if mother is not None and rng.random() < 0.3:
            city = ents[ents[mother].attrs["born_in"]]
        p = add("person", full, [formal], gender=gender, generation=gen, birth_year=born, born_in=city.id,
                father=father, mother=mother, spouse=None, occupation=rng.choice(OCCUPATIONS), employer=None,
                awards=[], died=born + rng.randint(45, 95) if rng.random() < 0.7 else None)
        people.append(p)
        return p

    total = n["person"]
    gen0 = [person(0, rng.randint(1850, 1885)) for _ in range(max(10, total // 4))]

    def marry(pool: list[Entity]) -> list[tuple[Entity, Entity]]:
        women = [p for p in pool if p.attrs["gender"] == "f"]
        men = [p for p in pool if p.attrs["gender"] == "m"]
        rng.shuffle(women)
        rng.shuffle(men)
        couples = []
        for w, m in zip(women, men):
            if w.attrs["mother"] is not None and w.attrs["mother"] == m.attrs["mother"]:
                continue  # siblings never marry
            if rng.random() < 0.85:
                w.attrs["spouse"], m.attrs["spouse"] = m.id, w.id
                couples.append((m, w))
        return couples

    def children(couples: list[tuple[Entity, Entity]], count: int, gen: int) -> list[Entity]:
        out: list[Entity] = []
        while len(out) < count and couples:
            father, mother = rng.choice(couples)
            born = max(father.attrs["birth_year"], mother.attrs["birth_year"]) + rng.randint(20, 38)
            out.append(person(gen, born, ents[father.id].name.split()[-1], father.id, mother.id))
        return out

    gen1 = children(marry(gen0), round(total * 0.35), 1)
    gen2 = children(marry(gen1), total - len(gen0) - len(gen1), 2)
    adults = gen1 + gen2

    # --- organisations ---------------------------------------------------------------------------
    roots: list[str] = []
    orgs: list[Entity] = []
    for _ in range(n["org"]):
        suffix = rng.choice(tuple(ORG_TYPES))
        for _attempt in range(200):
            if roots and rng.random() < distractor_rate:
                root = rng.choice(roots)  # same root, another kind of organisation: a distractor
            else:
                root = names.word(rng.choice((2, 2, 3)))
            name = f"{root} {suffix}"
            if names.free(name):
                break
        else:
            raise RuntimeError("organisation name space exhausted")
        names.take(name)
        roots.append(root)
        founder = rng.choice(adults)
        orgs.append(add("org", name, [], type=ORG_TYPES[suffix], founder=founder.id,
                        founded=founder.attrs["birth_year"] + rng.randint(24, 50), hq=rng.choice(cities).id))
    for p in adults:
        if rng.random() < 0.6:
            p.attrs["employer"] = rng.choice(orgs).id

    # --- films -----------------------------------------------------------------------------------
    directors = rng.sample(adults, max(5, len(adults) // 6))

    def film_title() -> str:
        style = rng.random()
        if style < 0.45:
            return f"The {rng.choice(FILM_ADJECTIVES)} {rng.choice(FILM_NOUNS)}"
        if style < 0.75:
            return f"{rng.choice(FILM_NOUNS)} of {names.word(2)}"
        return f"{rng.choice(FILM_ADJECTIVES)} {names.word(2)}"

    for _ in range(n["film"]):
        director = rng.choice(directors)
        add("film", fresh(film_title), [], director=director.id, genre=rng.choice(GENRES),
            year=director.attrs["birth_year"] + rng.randint(25, 55))

    # --- awards: one winner per (award, year) ----------------------------------------------------
    awards = []
    for _ in range(n["award"]):
        field_ = rng.choice(FIELDS)
        name = fresh(lambda: f"{names.word(2)} Prize for {field_}")
        awards.append(add("award", name, [], field=field_, presenter=rng.choice(orgs).id,
                          since=rng.randint(1890, 1930)))
    won: set[tuple[str, int]] = set()
    for p in rng.sample(adults, len(adults) // 3):
        for _ in range(rng.choice((1, 1, 2))):
            award = rng.choice(awards)
            year = p.attrs["birth_year"] + rng.randint(30, 60)
            if year < award.attrs["since"] or (award.id, year) in won or any(y == year for _, y in p.attrs["awards"]):
                continue
            won.add((award.id, year))
            p.attrs["awards"].append((award.id, year))
    return World(seed, ents)
