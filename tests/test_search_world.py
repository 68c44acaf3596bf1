"""The generated world and its questions: determinism, unique names, distractors, the anti-shortcut
checks (re-verified independently of the generator), the OOD/IID splits and the pinned manifest."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from agentgym.envs.search.questions import BM25_CHECK_K, TEMPLATES
from agentgym.envs.search.render import render_world
from agentgym.envs.search.suite import MANIFEST, SearchConfig, entity_bucket, load_search
from agentgym.envs.search.world import generate_world
from agentgym.tasks import near_duplicates


@pytest.fixture(scope="module")
def small():
    return load_search(SearchConfig.small())


@pytest.fixture(scope="module")
def default():
    return load_search()


def test_world_is_a_pure_function_of_its_seed_and_sized_as_asked():
    a, b = render_world(generate_world(5, 2000)), render_world(generate_world(5, 2000))
    assert [p.contents for p in a.passages] == [p.contents for p in b.passages]
    assert [p.contents for p in render_world(generate_world(6, 2000)).passages] != [p.contents for p in a.passages]
    big = render_world(generate_world(5, 20_000))
    assert 18_000 <= len(big.passages) <= 22_000
    assert all(p.contents.split("\n")[0] == p.title for p in big.passages)


def test_every_surface_form_names_one_entity_and_near_identical_distractors_exist():
    world = generate_world(7, 5000)
    forms = Counter(f.lower() for e in world.entities.values() for f in world.surface_forms(e.id))
    assert max(forms.values()) == 1
    surnames = sorted({e.name.split()[-1] for e in world.of_kind("person")})
    by_shape: dict[tuple[int, str], list[str]] = {}
    for s in surnames:  # one-vowel variants: same length, same consonant skeleton
        by_shape.setdefault((len(s), re.sub("[aeiou]", "_", s.lower())), []).append(s)
    variants = sum(len(v) - 1 for v in by_shape.values())
    assert variants >= 0.05 * len(surnames), variants
    roots = Counter(e.name.split()[0] for e in world.of_kind("org"))
    assert sum(1 for n in roots.values() if n > 1) >= 5  # organisations sharing a root ("X Press", "X Bank")


def _answers_by_text(passages: list, names: list[str]) -> set[int]:
    pattern = re.compile("|".join(rf"\b{re.escape(n)}\b" for n in names))
    return {i for i, p in enumerate(passages) if pattern.search(p)}


def test_anti_shortcut_checks_hold_on_every_multi_hop_question(small):
    suite = small.suite
    checked = 0
    for seed, world in small.worlds.items():
        texts = [world.contents(i) for i in range(len(world.ids))]
        graph = generate_world(seed, small.config.worlds()[seed])
        tasks = [t for t in suite.tasks() if t.params["world"] == seed]
        for t in tasks:
            hops = t.data["hops"]
            docs = [h["doc_id"] for h in hops]
            assert len(set(docs)) == len(docs), t.data["question"]  # each hop needs another passage
            for h in hops:  # each hop's fact is readable in its gold passage
                assert h["target"] in texts[world.position[h["doc_id"]]], (t.data["question"], h)
        sequential = [t for t in tasks if t.family not in ("single_hop",) and t.template not in
                      ("cmp_born_first", "cmp_founded_earlier", "cmp_founded_before")]
        tops = world.bm25.search([t.data["question"] for t in sequential], BM25_CHECK_K)
        for t, top in zip(sequential, tops):
            n_answer = 2 if t.template == "cmp_same_birth_country" else 1
            answer_docs = {h["doc_id"] for h in t.data["hops"][-n_answer:]}
            assert not answer_docs & {world.ids[h.index] for h in top}, t.data["question"]
            q_names = [f for e in t.data["question_entities"] for f in graph.surface_forms(e)]
            if t.data["answer_type"] == "yes/no":
                answer_names = [f for e in t.params["path"][-2:] for f in graph.surface_forms(e)]
            else:
                answer_names = t.data["aliases"]
            about_question = _answers_by_text(texts, q_names)
            both = about_question & _answers_by_text(texts, answer_names)
            assert not both, (t.data["question"], t.data["answer"], [texts[i] for i in list(both)[:1]])
            checked += 1
    assert checked >= 200


def test_gold_answers_follow_the_graph(small):
    graph = {s: generate_world(s, n) for s, n in small.config.worlds().items()}
    for t in small.suite.tasks():
        w = graph[t.params["world"]]
        path = t.params["path"]
        if t.family != "comparison" and t.data["answer_type"] in ("person", "city", "country", "org"):
            assert t.data["answer"] == w.entities[path[-1]].name
            assert t.data["aliases"] == w.surface_forms(path[-1])
        if t.template == "cmp_born_first":
            x, y = (w.entities[e] for e in path)
            assert t.data["answer"] == min((x, y), key=lambda e: e.attrs["birth_year"]).name
        if t.template == "in_maternal_grandfather":
            assert path[2] == w.entities[w.entities[path[0]].attrs["mother"]].attrs["father"]


def test_splits_ood_worlds_held_out_templates_and_held_out_entities(default):
    suite, cfg = default.suite, default.config
    train, dev, test = (suite.tasks(s) for s in ("train", "dev", "test"))
    assert len(train) >= 1500 and len(test) >= 500 and len(dev) >= 300
    ids = [{t.id for t in s} for s in (train, dev, test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert {t.params["world"] for t in train} == {cfg.train_seed}
    assert {t.params["world"] for t in suite.tasks("test", "ood")} == {cfg.test_seed}
    assert {t.params["world"] for t in suite.tasks("dev", "ood")} == {cfg.dev_seed}
    held_out = {t.name for t in TEMPLATES if t.held_out}
    assert held_out and not held_out & {t.template for t in train}
    assert held_out <= {t.template for t in suite.tasks("test", "ood")}
    assert {t.template for t in suite.tasks("test", "ood")} == {t.name for t in TEMPLATES}
    seen = {e for t in train for e in t.params["path"]}
    iid_test = suite.tasks("test", "iid")
    assert len(iid_test) >= 100
    for t in suite.tasks("test", "iid") + suite.tasks("dev", "iid"):  # answer/bridge entities unseen in training
        assert not seen & set(t.params["held"])
        assert any(entity_bucket(t.params["world"], e) < 10 for e in t.params["held"])
    answers = {t.data["answer"] for t in iid_test if t.data["answer_type"] not in ("yes/no", "number")}
    assert answers and not answers & {t.data["answer"] for t in train}


def test_near_duplicate_questions_never_share_an_answer_across_train_and_held_out(default):
    """Templated questions about two different entities are lexically close by design ("... the director of The
    Northern Lighthouse?" vs "... of The Northern Monsoon?", Jaccard 0.85). A pair leaks only if it asks about the
    same entity path or has the same answer, so every pair at word 3-gram Jaccard >= 0.7 must differ in both."""
    suite = default.suite
    train = suite.tasks("train")
    flagged = 0
    for split in ("dev", "test"):
        held = suite.tasks(split)
        pairs = near_duplicates([t.data["question"] for t in train], [t.data["question"] for t in held], threshold=0.7)
        flagged += len(pairs)
        leaks = [(train[i].data["question"], held[j].data["question"]) for i, j, _ in pairs
                 if train[i].data["answer"] == held[j].data["answer"]
                 or (train[i].template == held[j].template and train[i].params["path"] == held[j].params["path"])]
        assert leaks == [], leaks[:3]
    assert flagged > 0  # the check ran on lexically close pairs (the templated skeletons)


def test_binary_questions_are_balanced(default):
    tasks = default.suite.tasks()
    yes_no = [t.data["answer"] for t in tasks if t.data["answer_type"] == "yes/no"]
    assert len(yes_no) >= 200 and 0.4 <= yes_no.count("yes") / len(yes_no) <= 0.6
    firsts = [t.data["question"].split(", ", 1)[1].startswith(t.data["answer"])
              for t in tasks if t.template in ("cmp_born_first", "cmp_founded_earlier")]
    assert len(firsts) >= 200 and 0.4 <= sum(firsts) / len(firsts) <= 0.6


def test_pinned_manifest_is_unchanged(default):
    pinned = json.loads(MANIFEST.read_text())
    now = default.suite.pinned()
    for split in ("train", "dev", "test"):
        assert now["splits"][split]["checksum"] == pinned["splits"][split]["checksum"], (
            f"the {split} manifest of search-v0 changed: a generator change must bump GENERATOR_VERSION")
    assert now["splits"]["test"]["task_ids"] == pinned["splits"]["test"]["task_ids"]
