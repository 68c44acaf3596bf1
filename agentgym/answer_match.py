"""Answer matching shared by every env that grades a short answer: SQuAD normalisation and exact match.

As in SQuAD, Search-R1 and HotpotQA: lower-case, drop punctuation and the articles a/an/the, squash
whitespace; several gold aliases -> a match with any of them. ``yes_no=True`` adds ASearcher's mapping of
"true"/"false" to "yes"/"no". An answer that normalises to nothing never matches (so "" or "the" earns nothing).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

__all__ = ["exact_match", "normalize_answer"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = frozenset(string.punctuation)
_BOOL = {"true": "yes", "false": "no"}


def normalize_answer(text: str, *, yes_no: bool = False) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces (true/false -> yes/no if asked)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = " ".join(_ARTICLES.sub(" ", text).split())
    return _BOOL.get(text, text) if yes_no else text


def exact_match(prediction: str, golds: Sequence[str], *, yes_no: bool = False) -> float:
    """1.0 when the normalised prediction is non-empty and equals a normalised gold answer, else 0.0."""
    pred = normalize_answer(prediction, yes_no=yes_no)
    return float(bool(pred) and any(pred == normalize_answer(gold, yes_no=yes_no) for gold in golds))
