"""Render a world graph into Wikipedia-style passages ("Title" + text), recording which passage states which fact.

A person becomes up to three passages (the article, "(career)" and "(personal life)"), every other entity
one. Sentences come from paraphrase banks; later mentions use surnames and pronouns. Each passage records
the entities it mentions (for the anti-shortcut checks) and ``facts`` maps (entity, relation) to the
passage that states it (the gold passage of a hop).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agentgym.envs.search.world import World


@dataclass(frozen=True)
class Passage:
    """One retrievable unit: id, title, text, the entity it is about and the entities it mentions."""

    id: str
    title: str
    text: str
    entity: str
    section: str
    mentions: tuple[str, ...]

    @property
    def contents(self) -> str:
        """Search-R1 / wiki-18 layout: the title on the first line, then the text."""
        return f"{self.title}\n{self.text}"


@dataclass
class Corpus:
    """The passages of one world in index order, plus where each fact is stated."""

    seed: int
    passages: list[Passage]
    facts: dict[tuple[str, str], str]

    def __post_init__(self) -> None:
        self.by_id = {p.id: i for i, p in enumerate(self.passages)}

    def get(self, doc_id: str) -> Passage:
        return self.passages[self.by_id[doc_id]]


def fmt_int(n: int) -> str:
    return f"{n:,}"


class _Writer:
    """Collects sentences about one entity plus the entities they mention and the facts they state."""

    def __init__(self, rng: random.Random, world: World, entity: str, title: str, section: str):
        self.rng, self.world, self.entity, self.title, self.section = rng, world, entity, title, section
        self.sentences: list[str] = []
        self.mentions: set[str] = {entity}
        self.facts: list[str] = []

    def say(self, options: tuple[str, ...], mentions: tuple[str, ...] = (), fact: str | None = None, **kw: object) -> None:
        self.sentences.append(self.rng.choice(options).format(**kw))
        self.mentions.update(m for m in mentions if m)
        if fact:
            self.facts.append(fact)


def _pronouns(gender: str) -> dict[str, str]:
    return ({"he": "she", "He": "She", "his": "her", "His": "Her", "child": "daughter"} if gender == "f"
            else {"he": "he", "He": "He", "his": "his", "His": "His", "child": "son"})


def a_(word: str) -> str:
    """The word with its indefinite article."""
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _person(world: World, rng: random.Random, pid: str, founded: list, films: list) -> list[_Writer]:
    p = world.entities[pid]
    a = p.attrs
    pr = _pronouns(a["gender"])
    name, formal, last = p.name, p.aliases[0], p.name.split()[-1]
    E = world.entities
    intro = _Writer(rng, world, pid, name, "article")
    if a["died"]:
        intro.say(("{formal} ({b}–{d}) was {occ}.", "{formal} (born {b}, died {d}) was {occ}."),
                  formal=formal, b=a["birth_year"], d=a["died"], occ=a_(a["occupation"]), fact="birth_year")
    else:
        intro.say(("{formal} (born {b}) is {occ}.", "{formal}, born in {b}, is {occ}."),
                  formal=formal, b=a["birth_year"], occ=a_(a["occupation"]), fact="birth_year")
    city = E[a["born_in"]].name
    intro.say(("{He} was born in {city}.", "{last} was born in the city of {city}.", "{His} birthplace is {city}."),
              mentions=(a["born_in"],), fact="born_in", city=city, last=last, **pr)
    if a["father"]:
        f, m = E[a["father"]].name, E[a["mother"]].name
        intro.say(("{He} is the {child} of {f} and {m}.", "{His} father was {f} and {his} mother was {m}.",
                   "{His} mother was {m} and {his} father was {f}."),
                  mentions=(a["father"], a["mother"]), f=f, m=m, **pr)
        intro.facts += ["father", "mother"]
    career = _Writer(rng, world, pid, f"{name} (career)", "career")
    if a["employer"]:
        career.say(("{last} worked as {occ} at {org}.", "As {occ}, {last} was employed by {org}.",
                    "{last} spent most of {his} working life as {occ} with {org}."),
                   mentions=(a["employer"],), fact="employer", last=last, occ=a_(a["occupation"]),
                   org=E[a["employer"]].name, **pr)
    else:
        career.say(("{last} worked independently as {occ}.", "{last} never held a permanent post as {occ}."),
                   last=last, occ=a_(a["occupation"]), **pr)
    for o in sorted(founded, key=lambda e: e.attrs["founded"]):
        career.say(("In {y}, {he} founded {o}.", "{He} established {o} in {y}.", "{last} was the founder of {o}, set up in {y}."),
                   mentions=(o.id,), o=o.name, y=o.attrs["founded"], last=last, **pr)
    films = sorted(films, key=lambda e: e.attrs["year"])
    if films:
        career.say(("{He} directed {films}.", "{His} work as a film director includes {films}."),
                   mentions=tuple(f.id for f in films), films=_join([f"{f.name} ({f.attrs['year']})" for f in films]), **pr)
    for award, year in sorted(a["awards"], key=lambda t: t[1]):
        career.say(("In {y}, {he} received the {aw}.", "{last} won the {aw} in {y}.", "{He} was awarded the {aw} in {y}."),
                   mentions=(award,), aw=E[award].name, y=year, last=last, **pr)
    career.facts.append("awards")
    out = [intro, career]
    if a["spouse"]:
        personal = _Writer(rng, world, pid, f"{name} (personal life)", "personal")
        personal.say(("{last} married {s}.", "{His} spouse was {s}.", "{He} was married to {s}."),
                     mentions=(a["spouse"],), fact="spouse", s=E[a["spouse"]].name, last=last, **pr)
        personal.say(("The couple had a house by the sea.", "They lived quietly and rarely gave interviews.",
                      "Friends described the marriage as a long partnership.", "They travelled widely together."))
        if a["died"]:
            personal.say(("{He} died in {d}.", "{last} died in {d}."), d=a["died"], last=last, **pr)
        out.append(personal)
    return out


def _single(world: World, rng: random.Random, eid: str) -> _Writer:
    e = world.entities[eid]
    a = e.attrs
    E = world.entities
    w = _Writer(rng, world, eid, e.name, "article")
    if e.kind == "org":
        w.say(("{n} is {t} founded in {y} by {f}.", "{n} is {t} that {f} founded in {y}.",
               "Founded by {f} in {y}, {n} is {t}."),
              mentions=(a["founder"],), n=e.name, t=a_(a["type"]), y=a["founded"], f=E[a["founder"]].name)
        w.facts += ["founder", "founded"]
        w.say(("It is headquartered in {c}.", "Its headquarters are in {c}.", "The {tt} is based in {c}."),
              mentions=(a["hq"],), fact="hq", c=E[a["hq"]].name, tt=a["type"])
    elif e.kind == "film":
        w.say(("{n} is a {y} {g} film directed by {d}.", "{n} is {ga} film from {y}, directed by {d}.",
               "Directed by {d}, {n} is {ga} film released in {y}."),
              mentions=(a["director"],), n=e.name, y=a["year"], g=a["genre"], ga=a_(a["genre"]),
              d=E[a["director"]].name)
        w.facts += ["director", "year"]
        w.say(("It received mixed reviews on release.", "Critics praised its photography.",
               "It was a modest commercial success.", "It has since gained a cult following."))
    elif e.kind == "city":
        country = E[a["country"]]
        if country.attrs["capital"] == eid:
            w.say(("{n} is the capital of {c}.", "{n} is the capital city of {c}."), mentions=(a["country"],),
                  n=e.name, c=country.name)
        else:
            w.say(("{n} is a city in {c}.", "{n} is a town located in {c}.", "The city of {n} lies in {c}."),
                  mentions=(a["country"],), n=e.name, c=country.name)
        w.facts.append("country")
        w.say(("It has a population of {p}.", "At the last census its population was {p}.",
               "About {p} people live there."), fact="population", p=fmt_int(a["population"]))
        w.say(("It was founded in {y}.", "The settlement dates from {y}."), fact="founded", y=a["founded"])
        if e.aliases:
            w.say(("It was formerly known as {o}.", "Until the last century it was called {o}."), o=e.aliases[0])
    elif e.kind == "country":
        w.say(("{n} is a country whose capital is {c}.", "{n} is a sovereign state; its capital is {c}."),
              mentions=(a["capital"],), fact="capital", n=e.name, c=E[a["capital"]].name)
        w.say(("Its official language is {l}.", "Most of its people speak {l}."), l=a["language"])
        w.say(("It became independent in {y}.", "Its constitution dates from {y}."), y=a["founded"])
    elif e.kind == "award":
        w.say(("The {n} is an annual award presented by {o} since {y}.",
               "The {n} has been awarded every year by {o} since {y}."),
              mentions=(a["presenter"],), fact="presenter", n=e.name, o=E[a["presenter"]].name, y=a["since"])
        w.say(("It honours outstanding work in {f}.", "It recognises achievement in {f}."), f=a["field"].lower())
    return w


def render_world(world: World) -> Corpus:
    """All passages of a world, shuffled into a seeded order and numbered d000000, d000001, ..."""
    rng = random.Random(world.seed * 7919 + 17)
    founded: dict[str, list] = {}
    directed: dict[str, list] = {}
    for e in world.entities.values():
        if e.kind == "org":
            founded.setdefault(e.attrs["founder"], []).append(e)
        elif e.kind == "film":
            directed.setdefault(e.attrs["director"], []).append(e)
    writers: list[_Writer] = []
    for eid, e in world.entities.items():
        writers.extend(_person(world, rng, eid, founded.get(eid, []), directed.get(eid, []))
                       if e.kind == "person" else [_single(world, rng, eid)])
    rng.shuffle(writers)
    passages: list[Passage] = []
    facts: dict[tuple[str, str], str] = {}
    for i, w in enumerate(writers):
        pid = f"d{i:06d}"
        passages.append(Passage(pid, w.title, " ".join(w.sentences), w.entity, w.section, tuple(sorted(w.mentions))))
        for fact in w.facts:
            facts[(w.entity, fact)] = pid
    return Corpus(world.seed, passages, facts)
