"""Text facts shared by the search tools: the sentence splitter and the "not found" answer.

Owns `split_sentences` (one paragraph of text into sentences; the local index splits JSONL
``text`` with it, and `fireact.tools.wikipedia` each paragraph of a page) and `not_found`
(ReAct's ``Could not find [X]. Similar: [...].`` observation, for Wikipedia and the local
index alike).
"""

from __future__ import annotations

import re

SIMILAR = 5  # titles listed in "Could not find ... Similar: [...]"

# A boundary: . ! or ? (closed by any quotes or brackets), whitespace, then something that can
# start a sentence: a capital or a digit, maybe after an opening quote or bracket.
_BOUNDARY = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr st jr sr vs no mt ft gen col lt sgt capt prof rev inc co corp ltd bros
    jan feb mar apr jun jul aug sep sept oct nov dec approx est
    """.split()  # noqa: SIM905
)
# words that start sentences and never follow an abbreviation inside one
_OPENERS = frozenset(
    """
    the an this that these those it its he she they we his her their our there then
    in on at after before during since when while however but
    """.split()  # noqa: SIM905
)


def split_sentences(text: str) -> list[str]:
    """Split one paragraph into sentences at ``.``/``!``/``?`` + space + a capital, digit or
    quote, with runs of whitespace (line breaks too) made single spaces.

    Simple and deterministic: no split after an abbreviation, i.e. a single letter (``J. R. R.
    Tolkien``, ``c. 1500``), a dotted abbreviation (``U.S. Army``) or a common one (``Dr.``,
    ``St.``, ``No.``, ``Jr.``...), unless the next word is one that opens sentences (``the``,
    ``it``, ``then``...: ``Adam Clayton Powell Jr. It was ...`` splits).
    """
    text = " ".join(text.split())
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(text):
        word = text[start : m.start() + 1].rsplit(" ", 1)[-1]
        if _is_abbreviation(word, text[m.end() :]):
            continue
        sentences.append(text[start : m.end()].strip())
        start = m.end()
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return sentences


def _is_abbreviation(word: str, following: str) -> bool:
    """Whether the dot ending `word` is an abbreviation's that does not end the sentence, given
    the text `following` it (see `split_sentences`)."""
    if not word.endswith("."):
        return False
    stem = word.rstrip(".").lstrip("\"'([")
    if not (len(stem) == 1 or "." in stem or stem.lower() in _ABBREVIATIONS):
        return False
    after = following.lstrip("\"'([").split(" ", 1)[0]
    return after.lower() not in _OPENERS


def not_found(entity: str, similar: list[str]) -> str:
    """ReAct's observation for an entity with no page of that title (at most 5 similar titles)."""
    return f"Could not find [{entity}]. Similar: {similar[:SIMILAR]}."
