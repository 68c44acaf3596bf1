"""User search data on disk (a Search-R1 / wiki-18 corpus plus NQ/HotpotQA-style questions): same tools and reward.

Nothing is downloaded: the user points at a folder holding
  - one corpus file, JSON lines of ``{"id", "contents": "title\\ntext"}`` (Search-R1's ``wiki-18.jsonl``),
    named ``corpus*`` or ``wiki*`` with ``.jsonl`` or ``.jsonl.gz``; its BM25 index is built once into the
    agentgym cache, keyed by the file's resolved path, size and mtime, and memory-mapped afterwards;
  - question files (every other ``.json``/``.jsonl`` file, optionally gzipped; a JSON list or JSON lines):
    ``question`` plus ``golden_answers`` (a list) or ``answer`` (a string or a list); optional ``id``
    (or ``_id``), ``split``, ``data_source`` (the family), ``level`` (the difficulty).
Splits are the dataset's own: an entry's ``split`` field, else a split word in its file's name, else ``test``;
a question repeated with the same answers counts once, in its earliest split (train, then dev, then test).
Each loader validates what it reads and raises one ``DatasetError`` naming the file, the line/entry and the field.

The oracle (no gold passages are known) searches the question text with the default k, searches it again
with k=10 when no shown passage contains a gold answer, then answers the first gold answer, whether or not it
was seen: its 1.0 checks the pipeline end to end, not that the corpus holds the answer.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from agentgym.cache import cache_dir
from agentgym.datafiles import DATA_SUFFIXES, SPLIT_WORDS, file_split, read_entries, warn_near_duplicates
from agentgym.envs.search.oracle import DEEP_K, _call
from agentgym.envs.search.prompting import SYSTEM_PROMPT
from agentgym.envs.search.retrieval import Bm25Index
from agentgym.envs.search.suite import SearchData, SearchWorld
from agentgym.envs.search.rewards import normalize_answer
from agentgym.errors import DatasetError
from agentgym.jsonutil import sha256_hex
from agentgym.messages import Action
from agentgym.tasks import SplitRule, Task, TaskSuite

DATASETS = ("searchr1",)
INDEX_VERSION = "v1"  # bump when tokenisation or the index layout changes
WORLD = 0             # the one world (corpus) of a dataset suite
CORPUS_PREFIXES = ("corpus", "wiki")
SPLIT_RANK = {"train": 0, "dev": 1, "test": 2}
DATASET_SYSTEM_PROMPT = SYSTEM_PROMPT.replace(
    SYSTEM_PROMPT.split("\n", 1)[0],
    "You answer questions by searching an encyclopedia corpus. Base every fact on the passages you read.")


# --- the corpus ----------------------------------------------------------------------------------

def _is_corpus(file: Path) -> bool:
    name = file.name.lower()
    return name.startswith(CORPUS_PREFIXES) and name.endswith((".jsonl", ".jsonl.gz"))


def find_files(root: str | Path) -> tuple[Path, list[Path]]:
    """(the corpus file, the question files) of a dataset folder."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory (expected a folder with corpus.jsonl or wiki-18.jsonl "
                           "and question files such as test.jsonl)")
    files = sorted(p for p in root.iterdir() if p.is_file())
    corpora = [p for p in files if _is_corpus(p)]
    if len(corpora) != 1:
        found = ", ".join(p.name for p in corpora) if corpora else "none"
        raise DatasetError(f"{root}: expected exactly one corpus file (corpus.jsonl, wiki-18.jsonl, optionally .gz), "
                           f"found {found}")
    questions = [p for p in files if p != corpora[0] and p.name.lower().endswith(DATA_SUFFIXES)]
    if not questions:
        raise DatasetError(f"{root}: no question file (expected e.g. train.jsonl, dev.jsonl, test.jsonl)")
    return corpora[0], questions


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with (gzip.open(path, "rt", encoding="utf-8") if path.name.lower().endswith(".gz")
              else open(path, encoding="utf-8")) as fh:
            yield from enumerate(fh, 1)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc})") from None


def read_corpus(path: Path) -> tuple[list[str], list[str], list[str]]:
    """(ids, titles, texts) of a Search-R1 corpus, validated; a title's surrounding quotes are dropped."""
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for n, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}: line {n}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected an object, got {type(row).__name__}")
        doc_id = row.get("id")
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool) or not str(doc_id).strip():
            raise DatasetError(f"{where}: " + ("missing field 'id'" if doc_id is None
                                               else "field 'id' must be a non-empty string or an integer"))
        contents = row.get("contents")
        if not isinstance(contents, str) or not contents.strip():
            raise DatasetError(f"{where}: " + ("missing field 'contents'" if contents is None
                                               else "field 'contents' must be a non-empty string"))
        doc_id = str(doc_id).strip()
        if doc_id in seen:
            raise DatasetError(f"{where}: duplicate id {doc_id!r}")
        seen.add(doc_id)
        title, _, text = contents.partition("\n")
        ids.append(doc_id)
        titles.append(title.strip().strip('"'))
        texts.append(text.strip() or title.strip())
    if not ids:
        raise DatasetError(f"{path}: the corpus has no passages")
    return ids, titles, texts


def index_dir(corpus: Path) -> Path:
    """Where the BM25 index of a corpus file lives: keyed by its resolved path, size and modification time."""
    st = corpus.stat()
    key = sha256_hex(f"{corpus.resolve()}|{st.st_size}|{st.st_mtime_ns}")[:16]
    return cache_dir("search", "corpus", INDEX_VERSION, key)


def load_corpus(corpus: Path) -> tuple[list[str], list[str], list[str], Bm25Index, Path]:
    """The passages of a corpus file and its BM25 index (built on first use, memory-mapped afterwards)."""
    ids, titles, texts = read_corpus(corpus)
    root = index_dir(corpus)
    index = Bm25Index.build([f"{t}\n{x}" for t, x in zip(titles, texts)], root / "bm25")
    if index.size != len(ids):
        raise DatasetError(f"{corpus}: its cached index at {root} has {index.size} passages, the file {len(ids)}; "
                           "delete the cached index")
    return ids, titles, texts, index, root


# --- the questions -------------------------------------------------------------------------------

def _golds(item: Mapping[str, Any], where: str) -> list[str]:
    name = "golden_answers" if "golden_answers" in item else "answer"
    if name not in item:
        raise DatasetError(f"{where}: missing field 'golden_answers' (or 'answer')")
    value = item[name]
    golds = [value] if isinstance(value, str) and name == "answer" else value
    if not isinstance(golds, list) or not golds or not all(isinstance(g, str) and g.strip() for g in golds):
        kind = "a non-empty string or a list of them" if name == "answer" else "a non-empty list of non-empty strings"
        raise DatasetError(f"{where}: field '{name}' must be {kind}")
    return list(dict.fromkeys(g.strip() for g in golds))


def _family(item: Mapping[str, Any], file: Path, dataset: str) -> str:
    if isinstance(item.get("data_source"), str) and item["data_source"].strip():
        return item["data_source"].strip()
    stem = file.name.lower().split(".")[0]
    words = [w for w in re.split(r"[^a-z0-9]+", stem) if w and w.rstrip("0123456789") not in SPLIT_WORDS]
    return "_".join(words) or dataset


def question_task(item: Any, where: str, family: str) -> Task:
    """A validated question entry as a task over the dataset's corpus."""
    if not isinstance(item, dict):
        raise DatasetError(f"{where}: expected an object, got {type(item).__name__}")
    question = item.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DatasetError(f"{where}: " + ("missing field 'question'" if question is None
                                           else "field 'question' must be a non-empty string"))
    golds = _golds(item, where)
    qid = item.get("id", item.get("_id"))
    if qid is not None and (not isinstance(qid, (str, int)) or isinstance(qid, bool) or not str(qid).strip()):
        name = "id" if "id" in item else "_id"
        raise DatasetError(f"{where}: field '{name}' must be a non-empty string or an integer")
    question = " ".join(question.split())
    level = item.get("level")
    return Task(kind="search", family=family, template=str(qid) if qid is not None else "question",
                params={"world": WORLD, "question": question, "answers": golds},
                data={"question": question, "answer": golds[0], "aliases": golds,
                      "id": str(qid) if qid is not None else None},
                difficulty=level if isinstance(level, str) else None)


def load_questions(files: Sequence[Path], dataset: str, root: Path) -> TaskSuite:
    """The questions of all question files, in the dataset's own splits."""
    tasks: dict[str, Task] = {}
    splits: dict[str, str] = {}
    seen: dict[tuple[str, ...], str] = {}  # (question, answers) -> task id
    for file in files:
        default = file_split(file) or "test"
        for where, item in read_entries(file):
            if isinstance(item, dict) and "split" in item and item["split"] not in SPLIT_WORDS:
                raise DatasetError(f"{where}: field 'split' must be one of {sorted(SPLIT_WORDS)}, "
                                   f"got {item['split']!r}")
            split = item.get("split", default) if isinstance(item, dict) else default
            task = question_task(item, where, _family(item, file, dataset) if isinstance(item, dict) else dataset)
            key, split = (task.data["question"], *task.data["aliases"]), SPLIT_WORDS[split]
            if key not in seen:
                seen[key], tasks[task.id], splits[task.id] = task.id, task, split
            elif SPLIT_RANK[split] < SPLIT_RANK[splits[seen[key]]]:  # a repeat counts once, in its earliest split,
                splits[seen[key]] = split                               # so held-out splits never hold training items
    if not tasks:
        raise DatasetError(f"{root}: the {dataset} dataset has no questions")
    suite = TaskSuite(f"search-{dataset}", "user", tasks.values(), SplitRule(), fixed_splits=splits)
    warn_near_duplicates(suite, root, normalize=normalize_answer)
    return suite


def load_dataset(dataset: str, path: str | Path) -> SearchData:
    """The corpus (one world) and question suite of a ``searchr1`` dataset folder."""
    if dataset not in DATASETS:
        raise DatasetError(f"unknown search dataset {dataset!r}; expected 'generated' or one of {sorted(DATASETS)}")
    corpus, files = find_files(path)
    suite = load_questions(files, dataset, Path(path))  # questions first: their errors are cheap to find
    ids, titles, texts, index, root = load_corpus(corpus)
    world = SearchWorld(WORLD, root, ids, titles, texts, index, sections=False)
    return SearchData(None, suite, {WORLD: world})


# --- the oracle ----------------------------------------------------------------------------------

def oracle_action(task_data: Mapping[str, Any], history: Sequence[Mapping[str, Any]], topk: int,
                  max_query_chars: int = 1000) -> Action:
    """Search the question (k=topk, then k=10 unless a gold answer was shown), then answer the first gold."""
    searches = [h for h in history if h.get("tool") == "search"]
    golds = [f" {normalize_answer(g)} " for g in task_data["aliases"]]
    seen = any(g.strip() and g in f" {normalize_answer(text)} " for h in searches for text in h["shown"].values()
               for g in golds)
    query = task_data["question"][:max_query_chars]
    if not searches:
        return _call("search", query=query, k=topk)
    if len(searches) == 1 and not seen and topk < DEEP_K:
        return _call("search", query=query, k=DEEP_K)
    return _call("answer", text=task_data["answer"])

