"""QA answer scoring: SQuAD normalisation, exact match, token F1 with HotpotQA's yes/no rule, and sub-EM.

As in Search-R1 (``qa_em.py``) and HotpotQA (``hotpot_evaluate_v1.py``): lower-case, drop punctuation
and the articles a/an/the, squash whitespace; several gold aliases -> the best score over them. ASearcher's
mapping turns "true"/"false" into "yes"/"no". Sub-EM (a gold alias inside the prediction) is easy to game
by listing candidates, so it only counts for answers of at most ``SUB_EM_MAX_WORDS`` words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from agentgym import answer_match

SUB_EM_MAX_WORDS = 12
_SPECIAL = {"yes", "no", "noanswer"}


def normalize_answer(text: str) -> str:
    """SQuAD normalisation plus ASearcher's true/false -> yes/no mapping."""
    return answer_match.normalize_answer(text, yes_no=True)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold (an empty prediction never does), else 0.0."""
    return answer_match.exact_match(prediction, golds, yes_no=True)


def sub_exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if a normalised gold occurs in the normalised prediction (whole words), for short predictions only."""
    pred = normalize_answer(prediction)
    if len(pred.split()) > SUB_EM_MAX_WORDS:
        return 0.0
    padded = f" {pred} "
    return float(any(normalize_answer(g) and f" {normalize_answer(g)} " in padded for g in golds))


def _f1(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred), normalize_answer(gold)
    if (p in _SPECIAL or g in _SPECIAL) and p != g:  # HotpotQA: yes/no/noanswer must match exactly
        return 0.0
    common = Counter(p.split()) & Counter(g.split())
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p.split()), same / len(g.split())
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """Token-level F1 against the best gold (HotpotQA rule for yes/no)."""
    return max((_f1(prediction, g) for g in golds), default=0.0)


@dataclass(frozen=True)
class AnswerScore:
    """The scores of one answer; ``em`` is the reward, the rest are reported components."""

    em: float
    f1: float
    sub_em: float

    def components(self) -> dict[str, float]:
        return {"em": self.em, "f1": self.f1, "sub_em": self.sub_em}


def score_answer(prediction: str, golds: Sequence[str]) -> AnswerScore:
    """EM, F1 and sub-EM of a prediction against gold aliases."""
    return AnswerScore(exact_match(prediction, golds), f1_score(prediction, golds), sub_exact_match(prediction, golds))
