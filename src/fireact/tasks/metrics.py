"""The official HotpotQA answer metrics, defined once for the whole package.

`normalize_answer` is SQuAD's normalisation (lower-case, drop ASCII punctuation, drop the
words a/an/the, collapse whitespace); `exact_match` and `f1` follow the HotpotQA evaluation
script, including its rule that a yes/no/noanswer on either side scores F1 = 0 unless both
sides normalise to the same string. StrategyQA and MMLU use the paper's prefix rules.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPECIAL = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """SQuAD/HotpotQA normalisation of an answer string."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> bool:
    """True iff both strings normalise to the same text."""
    return normalize_answer(prediction) == normalize_answer(gold)


def f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised strings, with HotpotQA's yes/no/noanswer rule."""
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if (pred in _SPECIAL or ref in _SPECIAL) and pred != ref:
        return 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if same == 0:
        return 0.0
    precision = 1.0 * same / len(pred_tokens)
    recall = 1.0 * same / len(ref_tokens)
    return (2 * precision * recall) / (precision + recall)


def strategyqa_correct(prediction: str, gold: bool) -> bool:
    """StrategyQA: the lower-cased prediction starts with "yes" for True, "no" for False."""
    return prediction.lower().startswith("yes" if gold else "no")


def mmlu_correct(prediction: str, gold: str) -> bool:
    """MMLU: the lower-cased prediction starts with the lower-cased gold letter."""
    return prediction.lower().startswith(gold.lower())
