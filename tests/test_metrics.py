"""The official HotpotQA metrics on hand-checked cases (expected values worked out by hand)."""

import pytest

from fireact.tasks.metrics import (
    exact_match,
    f1,
    mmlu_correct,
    normalize_answer,
    strategyqa_correct,
)

TWO_THIRDS = 2 / 3  # p = 1, r = 1/2  or  p = 1/2, r = 1


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Beatles", "beatles"),
        ("  Paris\n\t", "paris"),
        ("1,800 to 7,000 ft", "1800 to 7000 ft"),
        ("U.S.", "us"),
        ("Mr. O'Neil", "mr oneil"),
        ("an apple a day", "apple day"),
        ("anastasia", "anastasia"),
        ("Theatre", "theatre"),
        ("the the the", ""),
        ("", ""),
        ("A", ""),
        ("Hello,world", "helloworld"),
        ("“Hello”", "“hello”"),  # curly quotes are not ASCII punctuation
        ("café—bar", "café—bar"),  # nor is the em dash
        ("Ünïcödé", "ünïcödé"),
        ("a-ha", "aha"),
        ("(a) b", "b"),
    ],
)
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


@pytest.mark.parametrize(
    ("prediction", "gold", "em", "f1_value"),
    [
        ("Richard Nixon", "Richard Nixon", True, 1.0),
        ("richard nixon!", "Richard Nixon", True, 1.0),
        ("The Beatles", "Beatles", True, 1.0),
        ("Nixon", "Richard Nixon", False, TWO_THIRDS),
        ("1,800 ft", "1,800 to 7,000 ft", False, TWO_THIRDS),
        ("New York New York", "New York", False, TWO_THIRDS),  # repeated tokens count once each
        ("The answer is an Orange", "orange", False, 0.5),  # p = 1/3, r = 1
        ("Paris, France", "Paris", False, TWO_THIRDS),
        ("yes", "Yes.", True, 1.0),
        ("no", "No", True, 1.0),
        ("yes", "no", False, 0.0),
        ("yes it is", "yes", False, 0.0),  # gold is yes and they differ: F1 = 0 despite overlap
        ("no", "no way", False, 0.0),  # prediction is no and they differ
        ("no answer", "noanswer", False, 0.0),
        ("noanswer", "noanswer", True, 1.0),
        ("", "", True, 0.0),  # equal after normalisation, but no tokens to overlap
        ("", "Paris", False, 0.0),
        ("Paris", "", False, 0.0),
        ("A", "a", True, 0.0),  # both normalise to the empty string
        ("an apple a day", "apple day", True, 1.0),
        ("théâtre", "Théâtre", True, 1.0),
        ("café—bar", "café bar", False, 0.0),
        ("“Hello”", "hello", False, 0.0),
        ("İstanbul", "istanbul", False, 0.0),  # 'İ'.lower() is 'i' + combining dot
        ("Hello,world", "hello world", False, 0.0),
        ("U.S.", "US", True, 1.0),
        ("Mr. O'Neil", "mr oneil", True, 1.0),
        ("anastasia", "an astasia", False, 0.0),
        ("1,800 to 7,000 ft", "1,800 to 7,000 ft", True, 1.0),
        ("Beyond the Clouds", "beyond clouds", True, 1.0),
        (
            "James Worthy and Danny Green",
            "James Worthy",
            False,
            0.5714285714285715,
        ),  # p = 2/5, r = 1
        ("torpedoes", "torpedo", False, 0.0),
        ("Seth MacFarlane, creator", "Seth MacFarlane", False, 0.8),  # p = 2/3, r = 1
    ],
)
def test_exact_match_and_f1(prediction, gold, em, f1_value):
    assert exact_match(prediction, gold) is em
    assert f1(prediction, gold) == f1_value


@pytest.mark.parametrize(
    ("prediction", "gold", "correct"),
    [
        ("yes", True, True),
        ("Yes, because ...", True, True),
        ("yes", False, False),
        ("No.", False, True),
        ("no", True, False),
        (" yes", True, False),  # no normalisation besides lower-case
        ("nope", False, True),  # a prefix rule, as in the paper
        ("", False, False),
    ],
)
def test_strategyqa_prefix_rule(prediction, gold, correct):
    assert strategyqa_correct(prediction, gold) is correct


@pytest.mark.parametrize(
    ("prediction", "gold", "correct"),
    [
        ("B", "B", True),
        ("b", "B", True),
        ("B. 1", "B", True),
        ("A", "B", False),
        ("(B)", "B", False),
        ("", "C", False),
    ],
)
def test_mmlu_prefix_rule(prediction, gold, correct):
    assert mmlu_correct(prediction, gold) is correct


@pytest.mark.parametrize(
    ("prediction", "gold", "correct"),
    [("No", "no", True), ("yes", "no", False), ("Yes.", "yes", True), ("no", "False", True)],
)
def test_strategyqa_scorer_reads_text_golds_by_meaning(prediction, gold, correct):
    from fireact.tasks.base import score_strategyqa

    assert score_strategyqa(prediction, gold).em is correct
