"""The search task suite: three generated worlds (train, OOD test, OOD dev), their indexes, and the splits.

OOD held-out = a different world seed (entirely different entities and passages) that also asks the path
templates never used in training (``Template.held_out``). IID held-out = questions over the training
world whose answer or bridge entities are held out: entities are hashed into buckets, a question goes to
test (dev) when one of its held entities is in the test (dev) bucket, a training question touches no
held-out entity at all, and a held-out question none of whose answer/bridge entities any training question
touches (questions that break either rule are not generated).

Worlds, BM25 indexes and questions are built on first use into the agentgym cache and loaded from there
afterwards (passages as Search-R1 ``corpus.jsonl``, indexes memory-mapped).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentgym.cache import cache_dir
from agentgym.errors import DatasetError
from agentgym.envs.search.questions import TEMPLATES, TEMPLATE_BY_NAME, BM25_CHECK_K, Question, generate_questions
from agentgym.envs.search.render import Corpus, render_world
from agentgym.envs.search.retrieval import Bm25Index, DenseIndex, Mode, Retriever
from agentgym.envs.search.world import generate_world
from agentgym.jsonutil import canonical_json, sha256_hex
from agentgym.tasks import SplitRule, Task, TaskSuite

SUITE_NAME = "search-v0"
GENERATOR_VERSION = "v0"  # bump when worlds, passages or questions change (the manifest test says when)
MANIFEST = Path(__file__).with_name("manifests") / f"{SUITE_NAME}.json"


@dataclass(frozen=True)
class SearchConfig:
    """How big the worlds are and how many questions each template contributes; the default is pinned."""

    passages: int = 20_000          # training world and OOD test world
    dev_passages: int = 5_000       # OOD dev world
    train_seed: int = 11
    test_seed: int = 23
    dev_seed: int = 37
    per_template: int = 160         # questions per template drawn on the training world (before the IID split)
    ood_per_template: int = 24      # questions per template on each OOD world

    @classmethod
    def small(cls) -> SearchConfig:
        """About 3k passages per world, built in about a second: for tests, smoke runs and examples."""
        return cls(passages=3000, dev_passages=1500, per_template=40, ood_per_template=12)

    @property
    def is_default(self) -> bool:
        return self == SearchConfig()

    @property
    def version(self) -> str:
        """The suite version: the generator version, plus a config hash for non-default configs."""
        if self.is_default:
            return GENERATOR_VERSION
        return f"{GENERATOR_VERSION}-{sha256_hex(canonical_json(asdict(self)))[:8]}"

    def worlds(self) -> dict[int, int]:
        """world seed -> passage count."""
        return {self.train_seed: self.passages, self.test_seed: self.passages, self.dev_seed: self.dev_passages}


def entity_bucket(world: int, entity: str) -> int:
    """A stable bucket in [0, 100) for an entity of a world (the IID split key)."""
    return int(sha256_hex(f"{world}/{entity}")[:8], 16) % 100


@dataclass(frozen=True)
class WorldSplitRule(SplitRule):
    """OOD by world seed; IID by held-out answer/bridge entities (see the module docstring)."""

    ood_test_world: int = -1
    ood_dev_world: int = -1

    def assign(self, task: Task) -> tuple[str, str | None]:
        world = task.params["world"]
        if world == self.ood_test_world:
            return "test", "ood"
        if world == self.ood_dev_world:
            return "dev", "ood"
        buckets = [entity_bucket(world, e) for e in task.params["held"]]
        if any(b < self.iid_test_percent for b in buckets):
            return "test", "iid"
        if any(b < self.iid_test_percent + self.iid_dev_percent for b in buckets):
            return "dev", "iid"
        return "train", None

    def admits(self, task: Task) -> bool:
        """False for a training-world question that is not held out but touches a held-out entity."""
        if self.assign(task)[0] != "train":
            return True
        cut = self.iid_test_percent + self.iid_dev_percent
        return all(entity_bucket(task.params["world"], e) >= cut for e in task.params["path"])


@dataclass
class SearchWorld:
    """One world at run time: its passages (in index order), BM25 index and, on demand, dense index."""

    seed: int
    root: Path
    ids: list[str]
    titles: list[str]
    texts: list[str]
    bm25: Bm25Index
    sections: bool = True  # titles "Name (career)" are sections of article "Name" (generated worlds); else by title
    _dense: DenseIndex | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.position = {d: i for i, d in enumerate(self.ids)}
        self._articles: dict[str, list[int]] = {}
        for i in range(len(self.titles)):  # "Name", "Name (career)", "Name (personal life)": one article
            self._articles.setdefault(self._article_key(i), []).append(i)

    def _article_key(self, i: int) -> str:
        return self.titles[i].split(" (")[0] if self.sections else self.titles[i]

    def article(self, i: int) -> list[int]:
        """Positions of the passages of the article that passage `i` belongs to, main passage first."""
        return sorted(self._articles[self._article_key(i)], key=lambda j: (len(self.titles[j]), j))

    def contents(self, i: int) -> str:
        return f"{self.titles[i]}\n{self.texts[i]}"

    def dense(self) -> DenseIndex:
        """The dense index (embeddings are computed and cached on first use: minutes on a laptop CPU)."""
        with self._lock:
            if self._dense is None:
                self._dense = DenseIndex([self.contents(i) for i in range(len(self.ids))], self.root / "dense")
            return self._dense

    def retriever(self, mode: Mode = "bm25") -> Retriever:
        return Retriever(self.bm25, self.dense() if mode != "bm25" else None, mode)


@dataclass
class SearchData:
    """The suite plus its worlds, keyed by seed (a user dataset: no config, one world)."""

    config: SearchConfig | None
    suite: TaskSuite
    worlds: dict[int, SearchWorld]


def _write_json(path: Path, value: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(value, fh, ensure_ascii=False)
    os.replace(tmp, path)


def _world_dir(seed: int, passages: int) -> Path:
    return cache_dir("search", GENERATOR_VERSION, f"world-{seed}-{passages}")


def _save_corpus(corpus: Corpus, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix="corpus.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for p in corpus.passages:
            fh.write(json.dumps({"id": p.id, "contents": p.contents, "title": p.title, "entity": p.entity,
                                 "section": p.section}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _load_world(seed: int, root: Path) -> SearchWorld:
    ids, titles, texts = [], [], []
    with open(root / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            ids.append(row["id"])
            titles.append(row["title"])
            texts.append(row["contents"].split("\n", 1)[1])
    return SearchWorld(seed, root, ids, titles, texts, Bm25Index.load(root / "bm25"))


def _task(q: Question, world: int) -> Task:
    held = q.path if not q.sequential else [e for e in q.path if e not in q.question_entities]
    template = TEMPLATE_BY_NAME[q.template]
    return Task(kind="search", family=q.family, template=q.template,
                params={"world": world, "path": list(q.path), "held": held, "phrasing": q.phrasing},
                data={"question": q.text, "answer": q.answer, "aliases": q.aliases, "answer_type": q.answer_type,
                      "hops": [asdict(h) for h in q.hops], "question_entities": q.question_entities},
                difficulty=f"{template.hops}-hop")


def _task_from_json(row: dict[str, Any]) -> Task:
    return Task(kind="search", family=row["family"], template=row["template"], params=row["params"],
                data=row["data"], difficulty=row["difficulty"])


def _build(config: SearchConfig, rule: WorldSplitRule) -> list[Task]:
    """Generate worlds, indexes and questions; return the admitted tasks (and write every artefact)."""
    tasks: list[Task] = []
    for seed, passages in config.worlds().items():
        root = _world_dir(seed, passages)
        world = generate_world(seed, passages)
        corpus = render_world(world)
        if not (root / "corpus.jsonl").exists():
            _save_corpus(corpus, root / "corpus.jsonl")
        index = Bm25Index.build([p.contents for p in corpus.passages], root / "bm25")

        def top(texts: list[str], index: Bm25Index = index, corpus: Corpus = corpus) -> list[set[str]]:
            return [{corpus.passages[h.index].id for h in hits} for hits in index.search(texts, BM25_CHECK_K)]

        train = seed == config.train_seed
        templates = [t for t in TEMPLATES if not (train and t.held_out)]
        rng = random.Random(seed * 1_000_003 + 7)
        count = config.per_template if train else config.ood_per_template
        made = [t for t in (_task(q, seed) for q in generate_questions(world, corpus, rng, count, templates, top))
                if rule.admits(t)]
        if train:  # IID held-out questions keep only answer/bridge entities that no training question touches
            seen = {e for t in made if rule.assign(t)[0] == "train" for e in t.params["path"]}
            made = [t for t in made if rule.assign(t)[0] == "train" or not seen & set(t.params["held"])]
        tasks.extend(made)
    return tasks


_LOCK = threading.Lock()
_DATA: dict[tuple[str, SearchConfig], SearchData] = {}
_DATASETS: dict[tuple[str, str], SearchData] = {}


def load_search(config: SearchConfig | None = None) -> SearchData:
    """The suite and worlds of `config` (default: the pinned one), built once per process and cache; thread-safe."""
    config = config or SearchConfig()
    root = cache_dir("search", GENERATOR_VERSION)
    key = (str(root), config)
    with _LOCK:
        if key not in _DATA:
            rule = WorldSplitRule(iid_test_percent=5, iid_dev_percent=5, ood_test_world=config.test_seed,
                                  ood_dev_world=config.dev_seed)
            suite_file = cache_dir("search", GENERATOR_VERSION, f"suite-{config.version}") / "tasks.json"
            worlds_ready = all((_world_dir(s, n) / "bm25" / "done.json").exists()
                               and (_world_dir(s, n) / "corpus.jsonl").exists() for s, n in config.worlds().items())
            if suite_file.exists() and worlds_ready:
                tasks = [_task_from_json(r) for r in json.loads(suite_file.read_text(encoding="utf-8"))]
            else:
                tasks = _build(config, rule)
                _write_json(suite_file, [{"family": t.family, "template": t.template, "params": dict(t.params),
                                          "data": dict(t.data), "difficulty": t.difficulty} for t in tasks])
            suite = TaskSuite(SUITE_NAME, config.version, tasks, rule)
            worlds = {s: _load_world(s, _world_dir(s, n)) for s, n in config.worlds().items()}
            _DATA[key] = SearchData(config, suite, worlds)
        return _DATA[key]


def load_dataset_search(dataset: str, path: str | Path | None) -> SearchData:
    """A user dataset ("searchr1") at `path` (``datasets.py``), built once per process per dataset and path."""
    from agentgym.envs.search.datasets import load_dataset

    if path is None:
        raise DatasetError(f"dataset {dataset!r} needs path=DIR pointing at the corpus and question files on disk")
    key = (dataset, str(Path(path).resolve()))
    with _LOCK:
        if key not in _DATASETS:
            _DATASETS[key] = load_dataset(dataset, path)
        return _DATASETS[key]


def check_source(dataset: str, path: str | Path | None, config: Any) -> None:
    """Refuse options that contradict each other (files for the generated worlds, sizes for a dataset)."""
    if dataset == "generated" and path is not None:
        raise DatasetError("path= needs dataset=searchr1 (the generated worlds need no files)")
    if dataset != "generated" and config is not None:
        raise DatasetError("config= sizes the generated worlds; a dataset's size is its files")


def search_data(dataset: str = "generated", path: str | Path | None = None,
                config: SearchConfig | Mapping[str, Any] | None = None) -> SearchData:
    """The worlds and suite of a search env's options: generated worlds of `config`, or a dataset at `path`."""
    if dataset == "generated":
        return load_search(SearchConfig(**config) if isinstance(config, Mapping) else config)
    return load_dataset_search(dataset, path)


def suite_for(*, dataset: str = "generated", path: str | Path | None = None,
              config: SearchConfig | Mapping[str, Any] | None = None, **_options: Any) -> TaskSuite:
    """The suite ``SearchEnv(dataset=..., path=..., config=...)`` serves: the registry's loader."""
    check_source(dataset, path, config)
    return search_data(dataset, path, config).suite
