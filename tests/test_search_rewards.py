"""Search answer scoring against hand-computed values: SQuAD normalisation, EM, HotpotQA F1, sub-EM."""

from __future__ import annotations

import pytest

from agentgym.envs.search.rewards import SUB_EM_MAX_WORDS, exact_match, f1_score, normalize_answer, score_answer, sub_exact_match


@pytest.mark.parametrize("raw, norm", [
    ("The Eiffel  Tower!", "eiffel tower"),
    ("  an Apple, a pear ", "apple pear"),
    ("1,234,567", "1234567"),
    ("True", "yes"),
    ("FALSE.", "no"),
    ("Thé Café", "thé café"),
    ("", ""),
])
def test_normalisation_is_squad_plus_bool_mapping(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match_takes_any_alias_and_ignores_case_articles_punctuation():
    golds = ["Varen Holt", "Varen Aldo Holt"]
    assert exact_match("the varen holt.", golds) == 1.0
    assert exact_match("Varen Aldo Holt", golds) == 1.0
    assert exact_match("Varen", golds) == 0.0
    assert exact_match("1234567", ["1,234,567"]) == 1.0


def test_f1_is_token_overlap_and_zero_for_mismatched_yes_no():
    # pred "varen holt smith" vs gold "varen holt": precision 2/3, recall 1 -> F1 0.8
    assert f1_score("Varen Holt Smith", ["Varen Holt"]) == pytest.approx(0.8)
    assert f1_score("yes", ["no"]) == 0.0
    assert f1_score("yes it is", ["yes"]) == 0.0  # HotpotQA: yes/no must match exactly
    assert f1_score("yes", ["yes"]) == 1.0
    assert f1_score("true", ["yes"]) == 1.0
    assert f1_score("", ["Varen Holt"]) == 0.0
    assert f1_score("Holt", ["Varen Holt", "Holt"]) == 1.0  # best alias wins


def test_sub_em_needs_whole_words_and_a_short_answer():
    assert sub_exact_match("It was Varen Holt.", ["Varen Holt"]) == 1.0
    assert sub_exact_match("Varen Holtz", ["Varen Holt"]) == 0.0
    listing = " ".join(f"name{i}" for i in range(SUB_EM_MAX_WORDS)) + " Varen Holt"
    assert sub_exact_match(listing, ["Varen Holt"]) == 0.0  # listing candidates does not pay


def test_score_answer_components():
    s = score_answer("Holt", ["Varen Holt"])
    assert s.components() == {"em": 0.0, "f1": pytest.approx(2 / 3), "sub_em": 0.0}
