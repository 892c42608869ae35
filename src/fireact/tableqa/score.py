"""Scoring a table-QA prediction: numbers by value, everything else by the official text rules.

Owns `score_tableqa` (the task's scorer: ``(prediction, gold) -> Score(em, f1)``) and the
unit-free normal form of a number (`parse_number`, `numbers_in`). The text rules are not
copied here: they are `fireact.tasks.metrics`, HotpotQA's official evaluation.

The rules, in order:

1. **Which mode.** The gold decides. A gold that is a JSON number, or a string holding exactly
   one number that comes first (after at most a currency sign or code), with only words or
   symbols after it, is *numeric*: ``"1234.5"``, ``"-12.30"``, ``"$1,234"``, ``"12.5%"``,
   ``"3 million"``, ``"2019"``, ``"7 teams"``. A bool gold is the text ``yes`` / ``no``. Every
   other gold is *text*: names, ``"yes"`` / ``"no"``, ``"Apollo 11"``, ``"1,800 to 7,000 ft"``.
2. **Text.** EM and F1 exactly as the official HotpotQA evaluation (lower-case, drop ASCII
   punctuation and the words a/an/the, collapse whitespace; token F1, and F1 = 0 when one side
   is yes/no/noanswer and the other differs).
3. **Unit-free normal form** of a number in the prediction or the gold: thousands separators
   are commas between groups of three digits (``1,234`` = ``1234``; ``1,2345`` and ``12,5``
   are two numbers, so a decimal comma is not read as one); a leading ``-`` or ``−`` is the
   sign; currency (``$``, ``US$``, ``€``, ``£``, ``¥``, ``USD``...), ``%`` / ``percent`` and
   unit words around the number are dropped, so ``12.5%`` = ``12.5`` and ``$1,234.5 million``
   = ``1234.5`` (a percentage is the number of percent: ``0.125`` is not ``12.5%``). A scale word
   right after the number (``thousand``, ``million``, ``billion``, ``trillion``, ``bn``) is
   remembered as the number's scale. Numbers written in words ("twelve") are not read.
4. **Numeric gold.** The prediction must contain exactly one number; zero or several (``"2019:
   1234.5"``, ``"between 10 and 12"``) is wrong. It matches the gold when, comparing the numbers
   as written, or the values with their scale words applied (``1.2 billion`` = ``1,200
   million``; the generated golds are in the unit the question names, so ``1200 million`` is
   right for a gold ``1200`` and ``1.2 billion`` is not):

   * they are equal, or within a relative tolerance of ``1e-4`` (``|p - g| <= 1e-4 * |g|``), or
   * the gold is written with ``d >= 1`` decimals (a rounded value) and the prediction rounded
     half-up to ``d`` decimals equals it: ``12.346`` and ``12.3456`` match ``12.35``, ``12.3``
     does not; an integer gold is taken as exact, so ``12.4`` does not match a count of ``12``.

   F1 is 1.0 for a match and 0.0 otherwise: a number is right or wrong.

Why ``1e-4``: it absorbs floating-point noise from a calculator (``1233.9999999``) and a long
value written to five or more significant digits, but no real mistake: 2021 and 2022 differ by
``4.9e-4`` relative, so adjacent years (and every off-by-one count below 10,000) stay apart,
where ``1e-3`` would accept the wrong year; an average over the wrong rows or a figure from the
wrong year is off by far more. The known leniency: two integers above 10,000 that differ in the
fifth significant digit match (``123,456`` vs ``123,460``).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from fireact.tasks import metrics
from fireact.tasks.base import Answer, Score

REL_TOL = Decimal("1e-4")
SCALES = {
    "thousand": Decimal(10) ** 3,
    "million": Decimal(10) ** 6,
    "billion": Decimal(10) ** 9,
    "trillion": Decimal(10) ** 12,
    "bn": Decimal(10) ** 9,
}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-\u2212])?"
    r"(?P<digits>\d{1,3}(?:,\d{3}(?!\d))+|\d+)?(?P<frac>\.\d+)?(?!\d)"
    r"(?:\s*(?P<scale>thousand|million|billion|trillion|bn)s?\b)?",
    re.IGNORECASE,
)
_CURRENCY = r"(?:US\$|\$|€|£|¥|USD|EUR|GBP|JPY|CHF)"
_GOLD = re.compile(rf"\s*{_CURRENCY}?\s*(?P<number>[-\u2212]?[\d.,]+[^\d]*)", re.IGNORECASE)


class Number:
    """A number in unit-free normal form: its value as written, its decimals, its scale."""

    __slots__ = ("decimals", "scale", "value")

    def __init__(self, value: Decimal, decimals: int, scale: Decimal) -> None:
        self.value, self.decimals, self.scale = value, decimals, scale

    def __repr__(self) -> str:
        return f"Number({self.value}, decimals={self.decimals}, scale={self.scale})"


def numbers_in(text: str) -> list[Number]:
    """Every number in `text`, in unit-free normal form (rule 3)."""
    found = []
    for match in _NUMBER.finditer(text):
        digits, frac = match.group("digits"), match.group("frac")
        if not digits and not frac:
            continue
        written = (digits or "0").replace(",", "") + (frac or "")
        value = Decimal(written)
        if match.group("sign"):
            value = -value
        scale = SCALES[match.group("scale").lower()] if match.group("scale") else Decimal(1)
        found.append(Number(value, len(frac) - 1 if frac else 0, scale))
    return found


def parse_number(gold: Answer | int | float) -> Number | None:
    """The gold as a number (rule 1), or None when the gold is text."""
    if isinstance(gold, bool) or gold is None:
        return None
    if isinstance(gold, int):
        return Number(Decimal(gold), 0, Decimal(1))
    if isinstance(gold, float):
        try:
            value = Decimal(repr(gold))
        except InvalidOperation:  # nan, inf
            return None
        exponent = value.as_tuple().exponent
        return Number(value, max(0, -exponent) if isinstance(exponent, int) else 0, Decimal(1))
    match = _GOLD.fullmatch(gold)
    if match is None:
        return None
    numbers = numbers_in(gold)
    if len(numbers) != 1:
        return None
    return numbers[0]


def _close(p: Decimal, g: Decimal) -> bool:
    return p == g or abs(p - g) <= REL_TOL * abs(g)


def numbers_match(pred: Number, gold: Number) -> bool:
    """Rule 4: as written (with the rounding rule) or with scale words applied."""
    if _close(pred.value, gold.value):
        return True
    if gold.decimals >= 1:
        step = Decimal(1).scaleb(-gold.decimals)
        if pred.value.quantize(step, rounding=ROUND_HALF_UP) == gold.value:
            return True
    return _close(pred.value * pred.scale, gold.value * gold.scale)


def score_tableqa(prediction: str, gold: Answer | int | float) -> Score:
    """EM and F1 of one prediction against one gold answer, by the rules of the module."""
    if gold is None:
        return Score(False, 0.0)
    if isinstance(gold, bool):
        gold = "yes" if gold else "no"
    number = parse_number(gold)
    if number is None:
        text = str(gold)
        return Score(metrics.exact_match(prediction, text), metrics.f1(prediction, text))
    found = numbers_in(prediction)
    ok = len(found) == 1 and numbers_match(found[0], number)
    return Score(ok, 1.0 if ok else 0.0)


__all__ = ["REL_TOL", "Number", "numbers_in", "numbers_match", "parse_number", "score_tableqa"]
