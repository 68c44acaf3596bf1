"""Questions generated from graph paths, with gold hops and the anti-shortcut checks that filter them.

Types (the task family): single_hop; bridge and compositional (2 hops); inference (kinship composition,
e.g. "maternal grandfather"); comparison (including balanced yes/no); chain (3-4 hops). Each question
carries its gold hops: the passage that states each step's fact, the text to read there, and a query that
finds it. A sequential question is kept only if (1) every hop lands on a different passage, (2) no
passage mentions both a question entity and the answer, and (3) BM25 top-k on the raw question does not
contain the answer's passage. Answers are unique because relations are functions of their subject and
every surface form names exactly one entity (``world.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agentgym.envs.search.render import Corpus, fmt_int
from agentgym.envs.search.world import Entity, World

BM25_CHECK_K = 10


@dataclass(frozen=True)
class Hop:
    """One step of the gold path: the passage stating the fact, the text to read there, and a query that finds it."""

    doc_id: str
    target: str
    query: str


@dataclass
class Question:
    """A generated question with its gold answer (and aliases), the entity path and the gold hops."""

    template: str
    family: str
    text: str
    answer: str
    aliases: list[str]
    answer_type: str
    question_entities: list[str]
    path: list[str]                  # every entity on the gold path, question entities first
    hops: list[Hop]
    answer_entities: list[str] = field(default_factory=list)
    sequential: bool = True          # the anti-shortcut checks apply (comparisons of two facts are exempt)
    phrasing: int = 0
    answer_hops: int = 1             # how many final hops state the answer's facts

    @property
    def answer_docs(self) -> list[str]:
        """The passages that state the answer (the last ``answer_hops`` hops)."""
        return [h.doc_id for h in self.hops[-self.answer_hops:]]

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return self.template, tuple(self.path)


@dataclass(frozen=True)
class Template:
    """A path template: its question type (family), hop count, and whether it is held out of training."""

    name: str
    family: str
    hops: int
    make: Callable[[World, Corpus, random.Random], Question | None]
    held_out: bool = False


# --- hop builders (each knows the query that finds its passage) ---------------------------------------

def _name(w: World, eid: str) -> str:
    return w.entities[eid].name


def hop_born_in(w: World, c: Corpus, p: str) -> Hop:
    return Hop(c.facts[(p, "born_in")], _name(w, w.entities[p].attrs["born_in"]), f"{_name(w, p)} born")


def hop_birth_year(w: World, c: Corpus, p: str) -> Hop:
    return Hop(c.facts[(p, "birth_year")], str(w.entities[p].attrs["birth_year"]), f"{_name(w, p)} born")


def hop_parent(w: World, c: Corpus, p: str, rel: str) -> Hop:
    return Hop(c.facts[(p, rel)], _name(w, w.entities[p].attrs[rel]), f"{_name(w, p)} {rel}")


def hop_spouse(w: World, c: Corpus, p: str) -> Hop:
    return Hop(c.facts[(p, "spouse")], _name(w, w.entities[p].attrs["spouse"]), f"{_name(w, p)} personal life married")


def hop_employer(w: World, c: Corpus, p: str) -> Hop:
    return Hop(c.facts[(p, "employer")], _name(w, w.entities[p].attrs["employer"]), f"{_name(w, p)} career worked")


def hop_founder(w: World, c: Corpus, o: str) -> Hop:
    return Hop(c.facts[(o, "founder")], _name(w, w.entities[o].attrs["founder"]), f"{_name(w, o)} founded by")


def hop_founded(w: World, c: Corpus, o: str) -> Hop:
    return Hop(c.facts[(o, "founded")], str(w.entities[o].attrs["founded"]), f"{_name(w, o)} founded")


def hop_hq(w: World, c: Corpus, o: str) -> Hop:
    return Hop(c.facts[(o, "hq")], _name(w, w.entities[o].attrs["hq"]), f"{_name(w, o)} headquarters")


def hop_director(w: World, c: Corpus, f: str) -> Hop:
    return Hop(c.facts[(f, "director")], _name(w, w.entities[f].attrs["director"]), f"{_name(w, f)} film directed by")


def hop_country(w: World, c: Corpus, city: str) -> Hop:
    return Hop(c.facts[(city, "country")], _name(w, w.entities[city].attrs["country"]), f"{_name(w, city)} city")


def hop_capital(w: World, c: Corpus, k: str) -> Hop:
    return Hop(c.facts[(k, "capital")], _name(w, w.entities[k].attrs["capital"]), f"{_name(w, k)} capital")


def hop_population(w: World, c: Corpus, city: str) -> Hop:
    return Hop(c.facts[(city, "population")], fmt_int(w.entities[city].attrs["population"]),
               f"{_name(w, city)} population")


def hop_award(w: World, c: Corpus, award: str, year: int, winner: str) -> Hop:
    return Hop(c.facts[(winner, "awards")], _name(w, winner), f"{_name(w, award)} {year}")


# --- answers --------------------------------------------------------------------------------------

def answer_forms(w: World, eid: str) -> tuple[str, list[str], str]:
    """(answer, aliases, answer type) for an entity answer."""
    e = w.entities[eid]
    return e.name, [e.name, *e.aliases], e.kind


def number_forms(n: int) -> tuple[str, list[str], str]:
    return fmt_int(n), [fmt_int(n), str(n)], "number"


def number_forms_year(year: int) -> tuple[str, list[str], str]:
    return str(year), [str(year)], "number"


def _pick(rng: random.Random, pool: Sequence[Entity], ok: Callable[[Entity], bool], tries: int = 50) -> Entity | None:
    for _ in range(tries):
        e = rng.choice(pool)
        if ok(e):
            return e
    return None


def _q(template: str, family: str, phrasings: Sequence[str], rng: random.Random, answer: tuple[str, list[str], str],
       qents: list[str], path: list[str], hops: list[Hop], answer_entities: list[str] | None = None,
       sequential: bool = True, answer_hops: int = 1, **fmt: object) -> Question:
    phr = rng.randrange(len(phrasings))
    text, aliases, kind = answer
    return Question(template, family, phrasings[phr].format(**fmt), text, aliases, kind, qents, path, hops,
                    answer_entities if answer_entities is not None else ([path[-1]] if kind != "number" else []),
                    sequential, phr, answer_hops)


# --- the templates --------------------------------------------------------------------------------

class _Pools:
    """Per-world entity pools used by the templates (built once per world)."""

    def __init__(self, w: World):
        self.people = w.of_kind("person")
        self.orgs = w.of_kind("org")
        self.films = w.of_kind("film")
        self.cities = w.of_kind("city")
        self.wins = [(p, a, y) for p in self.people for a, y in p.attrs["awards"]]


_POOLS: dict[int, _Pools] = {}


def _pools(w: World) -> _Pools:
    key = id(w)
    if key not in _POOLS:
        _POOLS.clear()
        _POOLS[key] = _Pools(w)
    return _POOLS[key]


def sh_birthplace(w: World, c: Corpus, rng: random.Random) -> Question | None:
    p = rng.choice(_pools(w).people)
    city = p.attrs["born_in"]
    return _q("sh_birthplace", "single_hop", ("Where was {p} born?", "In which city was {p} born?"), rng,
              answer_forms(w, city), [p.id], [p.id, city], [hop_born_in(w, c, p.id)], sequential=False, p=p.name)


def sh_founder(w: World, c: Corpus, rng: random.Random) -> Question | None:
    o = rng.choice(_pools(w).orgs)
    f = o.attrs["founder"]
    return _q("sh_founder", "single_hop", ("Who founded {o}?", "Who was the founder of {o}?"), rng,
              answer_forms(w, f), [o.id], [o.id, f], [hop_founder(w, c, o.id)], sequential=False, o=o.name)


def sh_director(w: World, c: Corpus, rng: random.Random) -> Question | None:
    f = rng.choice(_pools(w).films)
    d = f.attrs["director"]
    return _q("sh_director", "single_hop", ("Who directed the film {f}?", "Who was the director of the film {f}?"),
              rng, answer_forms(w, d), [f.id], [f.id, d], [hop_director(w, c, f.id)], sequential=False, f=f.name)


def sh_population(w: World, c: Corpus, rng: random.Random) -> Question | None:
    city = rng.choice(_pools(w).cities)
    return _q("sh_population", "single_hop", ("What is the population of {c}?", "How many people live in {c}?"), rng,
              number_forms(city.attrs["population"]), [city.id], [city.id], [hop_population(w, c, city.id)],
              sequential=False, c=city.name)


def sh_award_winner(w: World, c: Corpus, rng: random.Random) -> Question | None:
    wins = _pools(w).wins
    if not wins:
        return None
    p, a, y = rng.choice(wins)
    return _q("sh_award_winner", "single_hop", ("Who won the {a} in {y}?", "Who received the {a} in {y}?"), rng,
              answer_forms(w, p.id), [a], [a, p.id], [hop_award(w, c, a, y, p.id)], sequential=False,
              a=_name(w, a), y=y)


def br_founder_birthplace(w: World, c: Corpus, rng: random.Random) -> Question | None:
    o = rng.choice(_pools(w).orgs)
    f = o.attrs["founder"]
    city = w.entities[f].attrs["born_in"]
    return _q("br_founder_birthplace", "bridge",
              ("In which city was the founder of {o} born?", "Where was the person who founded {o} born?"), rng,
              answer_forms(w, city), [o.id], [o.id, f, city], [hop_founder(w, c, o.id), hop_born_in(w, c, f)],
              o=o.name)


def br_award_winner_birthplace(w: World, c: Corpus, rng: random.Random) -> Question | None:
    wins = _pools(w).wins
    if not wins:
        return None
    p, a, y = rng.choice(wins)
    city = p.attrs["born_in"]
    return _q("br_award_winner_birthplace", "bridge",
              ("Where was the winner of the {y} {a} born?", "In which city was the person who won the {a} in {y} born?"),
              rng, answer_forms(w, city), [a], [a, p.id, city], [hop_award(w, c, a, y, p.id), hop_born_in(w, c, p.id)],
              a=_name(w, a), y=y)


def br_employer_founder(w: World, c: Corpus, rng: random.Random) -> Question | None:
    p = _pick(rng, _pools(w).people, lambda p: p.attrs["employer"] is not None)
    if p is None:
        return None
    org = p.attrs["employer"]
    f = w.entities[org].attrs["founder"]
    if f == p.id:
        return None
    return _q("br_employer_founder", "bridge",
              ("Who founded the organisation that employed {p}?", "Who is the founder of {p}'s employer?"),
              rng, answer_forms(w, f), [p.id], [p.id, org, f], [hop_employer(w, c, p.id), hop_founder(w, c, org)],
              p=p.name)


def br_director_birth_year(w: World, c: Corpus, rng: random.Random) -> Question | None:
    f = rng.choice(_pools(w).films)
    d = f.attrs["director"]
    return _q("br_director_birth_year", "bridge",
              ("In which year was the director of {f} born?", "When was the person who directed {f} born?"),
              rng, number_forms_year(w.entities[d].attrs["birth_year"]), [f.id], [f.id, d],
              [hop_director(w, c, f.id), hop_birth_year(w, c, d)], f=f.name)


def co_director_spouse(w: World, c: Corpus, rng: random.Random) -> Question | None:
    f = _pick(rng, _pools(w).films, lambda f: w.entities[f.attrs["director"]].attrs["spouse"] is not None)
    if f is None:
        return None
    d = f.attrs["director"]
    s = w.entities[d].attrs["spouse"]
    return _q("co_director_spouse", "compositional",
              ("Who is the spouse of the director of {f}?", "Who was married to the person who directed {f}?"), rng,
              answer_forms(w, s), [f.id], [f.id, d, s], [hop_director(w, c, f.id), hop_spouse(w, c, d)], f=f.name)


def co_city_country_capital(w: World, c: Corpus, rng: random.Random) -> Question | None:
    city = rng.choice(_pools(w).cities)
    k = city.attrs["country"]
    cap = w.entities[k].attrs["capital"]
    if cap == city.id:
        return None
    return _q("co_city_country_capital", "compositional",
              ("What is the capital of the country where {c} is located?", "Which city is the capital of the country that {c} is in?"),
              rng, answer_forms(w, cap), [city.id], [city.id, k, cap], [hop_country(w, c, city.id), hop_capital(w, c, k)],
              c=city.name)


def co_org_hq_country(w: World, c: Corpus, rng: random.Random) -> Question | None:
    o = rng.choice(_pools(w).orgs)
    city = o.attrs["hq"]
    k = w.entities[city].attrs["country"]
    return _q("co_org_hq_country", "compositional",
              ("In which country is {o} headquartered?", "Which country are the headquarters of {o} in?"), rng,
              answer_forms(w, k), [o.id], [o.id, city, k], [hop_hq(w, c, o.id), hop_country(w, c, city)], o=o.name)


def _grandparent(w: World, c: Corpus, rng: random.Random, name: str, first: str, second: str,
                 phrasings: Sequence[str]) -> Question | None:
    p = _pick(rng, _pools(w).people, lambda p: p.attrs["generation"] == 2)
    if p is None:
        return None
    parent = p.attrs[first]
    g = w.entities[parent].attrs[second]
    if g is None:
        return None
    return _q(name, "inference", phrasings, rng, answer_forms(w, g), [p.id], [p.id, parent, g],
              [hop_parent(w, c, p.id, first), hop_parent(w, c, parent, second)], p=p.name)


def in_maternal_grandfather(w: World, c: Corpus, rng: random.Random) -> Question | None:
    return _grandparent(w, c, rng, "in_maternal_grandfather", "mother", "father",
                        ("Who is the maternal grandfather of {p}?", "Who was {p}'s maternal grandfather?"))


def in_paternal_grandmother(w: World, c: Corpus, rng: random.Random) -> Question | None:
    return _grandparent(w, c, rng, "in_paternal_grandmother", "father", "mother",
                        ("Who is the paternal grandmother of {p}?", "Who was {p}'s paternal grandmother?"))


def in_father_in_law(w: World, c: Corpus, rng: random.Random) -> Question | None:
    p = _pick(rng, _pools(w).people, lambda p: p.attrs["spouse"] is not None
              and w.entities[p.attrs["spouse"]].attrs["father"] is not None)
    if p is None:
        return None
    s = p.attrs["spouse"]
    f = w.entities[s].attrs["father"]
    return _q("in_father_in_law", "inference", ("Who is the father-in-law of {p}?", "Who was {p}'s father-in-law?"),
              rng, answer_forms(w, f), [p.id], [p.id, s, f], [hop_spouse(w, c, p.id), hop_parent(w, c, s, "father")],
              p=p.name)


def _two(rng: random.Random, pool: Sequence[Entity], key: Callable[[Entity], int]) -> tuple[Entity, Entity] | None:
    for _ in range(50):
        a, b = rng.sample(list(pool), 2)
        if key(a) != key(b):
            return a, b
    return None


def _first_position(rng: random.Random, a: Entity, b: Entity, key: Callable[[Entity], int]) -> tuple[Entity, Entity]:
    """Order the pair so that the earlier one is first or second with equal odds (no positional cue)."""
    early, late = (a, b) if key(a) < key(b) else (b, a)
    return (early, late) if rng.random() < 0.5 else (late, early)


def cmp_born_first(w: World, c: Corpus, rng: random.Random) -> Question | None:
    key = lambda e: e.attrs["birth_year"]  # noqa: E731
    pair = _two(rng, _pools(w).people, key)
    if pair is None:
        return None
    x, y = _first_position(rng, *pair, key)
    early = x if key(x) < key(y) else y
    return _q("cmp_born_first", "comparison", ("Who was born first, {x} or {y}?", "Who is older, {x} or {y}?"), rng,
              answer_forms(w, early.id), [x.id, y.id], [x.id, y.id], [hop_birth_year(w, c, x.id), hop_birth_year(w, c, y.id)],
              sequential=False, x=x.name, y=y.name)


def cmp_founded_earlier(w: World, c: Corpus, rng: random.Random) -> Question | None:
    key = lambda e: e.attrs["founded"]  # noqa: E731
    pair = _two(rng, _pools(w).orgs, key)
    if pair is None:
        return None
    x, y = _first_position(rng, *pair, key)
    early = x if key(x) < key(y) else y
    return _q("cmp_founded_earlier", "comparison",
              ("Which was founded earlier, {x} or {y}?", "Which is older, {x} or {y}?"), rng,
              answer_forms(w, early.id), [x.id, y.id], [x.id, y.id], [hop_founded(w, c, x.id), hop_founded(w, c, y.id)],
              sequential=False, x=x.name, y=y.name)


YES, NO = ("yes", ["yes"], "yes/no"), ("no", ["no"], "yes/no")


def cmp_founded_before(w: World, c: Corpus, rng: random.Random) -> Question | None:
    key = lambda e: e.attrs["founded"]  # noqa: E731
    pair = _two(rng, _pools(w).orgs, key)
    if pair is None:
        return None
    x, y = pair
    return _q("cmp_founded_before", "comparison", ("Was {x} founded before {y}?", "Is {x} older than {y}?"), rng,
              YES if key(x) < key(y) else NO, [x.id, y.id], [x.id, y.id],
              [hop_founded(w, c, x.id), hop_founded(w, c, y.id)], answer_entities=[], sequential=False,
              x=x.name, y=y.name)


def cmp_same_birth_country(w: World, c: Corpus, rng: random.Random) -> Question | None:
    people = _pools(w).people
    want_yes = rng.random() < 0.5  # balanced yes/no
    country = lambda p: w.entities[p.attrs["born_in"]].attrs["country"]  # noqa: E731
    for _ in range(100):
        x, y = rng.sample(people, 2)
        if x.attrs["born_in"] != y.attrs["born_in"] and (country(x) == country(y)) == want_yes:
            break
    else:
        return None
    cx, cy = x.attrs["born_in"], y.attrs["born_in"]
    return _q("cmp_same_birth_country", "comparison",
              ("Were {x} and {y} born in the same country?", "Do {x} and {y} come from the same country?"), rng,
              YES if want_yes else NO, [x.id, y.id], [x.id, y.id, cx, cy, country(x), country(y)],
              [hop_born_in(w, c, x.id), hop_born_in(w, c, y.id), hop_country(w, c, cx), hop_country(w, c, cy)],
              answer_entities=sorted({country(x), country(y)}), answer_hops=2, x=x.name, y=y.name)


def ch3_founder_birth_country(w: World, c: Corpus, rng: random.Random) -> Question | None:
    o = rng.choice(_pools(w).orgs)
    f = o.attrs["founder"]
    city = w.entities[f].attrs["born_in"]
    k = w.entities[city].attrs["country"]
    return _q("ch3_founder_birth_country", "chain",
              ("In which country was the founder of {o} born?", "What is the country of birth of the person who founded {o}?"),
              rng, answer_forms(w, k), [o.id], [o.id, f, city, k],
              [hop_founder(w, c, o.id), hop_born_in(w, c, f), hop_country(w, c, city)], o=o.name)


def ch3_director_mother_birthplace(w: World, c: Corpus, rng: random.Random) -> Question | None:
    f = _pick(rng, _pools(w).films, lambda f: w.entities[f.attrs["director"]].attrs["mother"] is not None)
    if f is None:
        return None
    d = f.attrs["director"]
    m = w.entities[d].attrs["mother"]
    city = w.entities[m].attrs["born_in"]
    return _q("ch3_director_mother_birthplace", "chain",
              ("Where was the mother of the director of {f} born?", "In which city was the mother of the person who directed {f} born?"),
              rng, answer_forms(w, city), [f.id], [f.id, d, m, city],
              [hop_director(w, c, f.id), hop_parent(w, c, d, "mother"), hop_born_in(w, c, m)], f=f.name)


def ch3_director_birthplace_population(w: World, c: Corpus, rng: random.Random) -> Question | None:
    f = rng.choice(_pools(w).films)
    d = f.attrs["director"]
    city = w.entities[d].attrs["born_in"]
    return _q("ch3_director_birthplace_population", "chain",
              ("What is the population of the birthplace of the director of {f}?",
               "How many people live in the city where the director of {f} was born?"),
              rng, number_forms(w.entities[city].attrs["population"]), [f.id], [f.id, d, city],
              [hop_director(w, c, f.id), hop_born_in(w, c, d), hop_population(w, c, city)], f=f.name)


def ch4_founder_mother_birth_country(w: World, c: Corpus, rng: random.Random) -> Question | None:
    o = _pick(rng, _pools(w).orgs, lambda o: w.entities[o.attrs["founder"]].attrs["mother"] is not None)
    if o is None:
        return None
    f = o.attrs["founder"]
    m = w.entities[f].attrs["mother"]
    city = w.entities[m].attrs["born_in"]
    k = w.entities[city].attrs["country"]
    return _q("ch4_founder_mother_birth_country", "chain",
              ("In which country was the mother of the founder of {o} born?",
               "What is the country of birth of the mother of the person who founded {o}?"),
              rng, answer_forms(w, k), [o.id], [o.id, f, m, city, k],
              [hop_founder(w, c, o.id), hop_parent(w, c, f, "mother"), hop_born_in(w, c, m), hop_country(w, c, city)],
              o=o.name)


TEMPLATES: tuple[Template, ...] = (
    Template("sh_birthplace", "single_hop", 1, sh_birthplace),
    Template("sh_founder", "single_hop", 1, sh_founder),
    Template("sh_director", "single_hop", 1, sh_director),
    Template("sh_population", "single_hop", 1, sh_population),
    Template("sh_award_winner", "single_hop", 1, sh_award_winner),
    Template("br_founder_birthplace", "bridge", 2, br_founder_birthplace),
    Template("br_award_winner_birthplace", "bridge", 2, br_award_winner_birthplace),
    Template("br_employer_founder", "bridge", 2, br_employer_founder),
    Template("br_director_birth_year", "bridge", 2, br_director_birth_year),
    Template("co_director_spouse", "compositional", 2, co_director_spouse),
    Template("co_city_country_capital", "compositional", 2, co_city_country_capital),
    Template("co_org_hq_country", "compositional", 2, co_org_hq_country, held_out=True),
    Template("in_maternal_grandfather", "inference", 2, in_maternal_grandfather),
    Template("in_paternal_grandmother", "inference", 2, in_paternal_grandmother, held_out=True),
    Template("in_father_in_law", "inference", 2, in_father_in_law),
    Template("cmp_born_first", "comparison", 2, cmp_born_first),
    Template("cmp_founded_earlier", "comparison", 2, cmp_founded_earlier),
    Template("cmp_founded_before", "comparison", 2, cmp_founded_before),
    Template("cmp_same_birth_country", "comparison", 4, cmp_same_birth_country),
    Template("ch3_founder_birth_country", "chain", 3, ch3_founder_birth_country),
    Template("ch3_director_mother_birthplace", "chain", 3, ch3_director_mother_birthplace),
    Template("ch3_director_birthplace_population", "chain", 3, ch3_director_birthplace_population),
    Template("ch4_founder_mother_birth_country", "chain", 4, ch4_founder_mother_birth_country, held_out=True),
)
TEMPLATE_BY_NAME = {t.name: t for t in TEMPLATES}


# --- anti-shortcut checks -------------------------------------------------------------------------

def mention_index(corpus: Corpus) -> dict[str, set[str]]:
    """entity id -> ids of the passages that mention it."""
    index: dict[str, set[str]] = {}
    for p in corpus.passages:
        for e in p.mentions:
            index.setdefault(e, set()).add(p.id)
    return index


def shortcut_problem(q: Question, corpus: Corpus, mentions: dict[str, set[str]]) -> str | None:
    """Why `q` can be answered without following its path (checks 1 and 2), or None."""
    docs = [h.doc_id for h in q.hops]
    if len(set(docs)) != len(docs):
        return "two hops share a passage"
    if not q.sequential:
        return None
    near = set().union(*(mentions.get(e, set()) for e in q.question_entities))
    for e in q.answer_entities:
        if near & mentions.get(e, set()):
            return "a passage mentions both a question entity and the answer"
    if q.answer_type == "number":
        if any(q.answer in corpus.get(d).text for d in near):
            return "a passage about a question entity states the answer number"
    return None


def generate_questions(world: World, corpus: Corpus, rng: random.Random, per_template: int,
                       templates: Sequence[Template], bm25_top: Callable[[list[str]], list[set[str]]]) -> list[Question]:
    """Up to `per_template` checked questions per template, distinct by (template, path)."""
    mentions = mention_index(corpus)
    out: list[Question] = []
    for t in templates:
        kept: dict[tuple, Question] = {}
        for _ in range(per_template * 8):
            if len(kept) >= per_template * 2:
                break
            q = t.make(world, corpus, rng)
            if q is None or q.key in kept or shortcut_problem(q, corpus, mentions):
                continue
            kept[q.key] = q
        cands = list(kept.values())
        seq = [q for q in cands if q.sequential]
        tops = bm25_top([q.text for q in seq]) if seq else []
        blocked = {id(q) for q, top in zip(seq, tops) if top & set(q.answer_docs)}
        out.extend([q for q in cands if id(q) not in blocked][:per_template])
    return out
