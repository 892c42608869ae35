"""Segments → token ids + labels, with the loss mask on exact token boundaries.

Owns `tokenize_segments` and the `Example` it makes (``input_ids``, ``labels``; label `IGNORE`
= -100 = no loss). A segment is ``(text, role)``; which roles carry loss is the `mask` rule of
`fireact.train.config` (`SUPERVISED`).

Token boundaries are exact, and the tokens are those the agent's model sees: the text is
tokenised as a whole, and each boundary is checked by tokenising the text before it. Where a
token would straddle a boundary (the plain chat rendering's ``"assistant: "`` + ``"Thought"``),
the text is split there, as the agent's prompt ends there, and the rest is tokenised as a
continuation (``split_boundaries``). FireAct's alpaca sets have no such boundary. Plain text
gets the tokenizer's own leading special tokens (BOS) and, with ``add_eos``, EOS labelled like
the last segment; a chat template writes its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

IGNORE = -100

# A segment: (text, role) with role "prompt" | "model" | "observation" | "preamble" | "stop".
Segment = tuple[str, str]
SUPERVISED = {
    "model_turns": {"model", "stop"},
    "output": {"model", "observation", "preamble", "stop"},
    "none": {"prompt", "model", "observation", "preamble", "stop"},
}


@dataclass
class Example:
    """One tokenised training sequence."""

    input_ids: list[int]
    labels: list[int]

    @property
    def supervised(self) -> int:
        """Tokens that carry loss (the first token never does: nothing predicts it)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE)


def tokenize_segments(
    segments: list[Segment], tokenizer: Any, mask: str, *, special: bool, add_eos: bool
) -> tuple[Example, int, int]:
    """Token ids and labels of the segments; also the counts of split and inexact boundaries.

    The text is tokenised as a whole except at boundaries that fall inside a token (e.g. the
    plain chat rendering's ``"assistant: "`` followed by ``"Thought"``): there the text is split,
    as the agent's prompt ends there at inference, and the rest is tokenised as a continuation.
    `special`: put the tokenizer's leading special tokens (BOS) first, as it does for a prompt
    (chat templates write their own). `add_eos`: end with EOS, labelled like the last segment.
    """
    groups = _split_at_straddles(segments, tokenizer)
    ids: list[int] = []
    labels: list[int] = []
    inexact = 0
    for n, group in enumerate(groups):
        group_ids, group_labels, bad = _tokenize_group(group, tokenizer, mask, continuation=n > 0)
        ids += group_ids
        labels += group_labels
        inexact += bad
    prefix = _leading_specials(tokenizer) if special else []
    ids, labels = prefix + ids, [IGNORE] * len(prefix) + labels
    if add_eos and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id if segments[-1][1] in SUPERVISED[mask] else IGNORE)
    return Example(ids, labels), len(groups) - 1, inexact


def _split_at_straddles(segments: list[Segment], tokenizer: Any) -> list[list[Segment]]:
    """Segments grouped so that no boundary between two groups falls inside a token."""
    text = "".join(t for t, _ in segments)
    ids = _encode(tokenizer, text)
    groups: list[list[Segment]] = [[segments[0]]]
    char = len(segments[0][0])
    for segment in segments[1:]:
        if not _boundary(partial(_encode, tokenizer), text, char, ids)[1]:
            groups.append([])
        groups[-1].append(segment)
        char += len(segment[0])
    return groups


def _tokenize_group(
    group: list[Segment], tokenizer: Any, mask: str, continuation: bool
) -> tuple[list[int], list[int], int]:
    """Ids and labels of one group of segments, and how many inner boundaries were inexact."""
    encode = partial(_encode_after if continuation else _encode, tokenizer)
    text = "".join(t for t, _ in group)
    ids = encode(text)
    bounds, inexact, char = [0], 0, 0
    for seg_text, _ in group[:-1]:
        char += len(seg_text)
        index, exact = _boundary(encode, text, char, ids)
        bounds.append(index)
        inexact += not exact
    bounds.append(len(ids))
    labels = [IGNORE] * len(ids)
    for (_, role), begin, stop in zip(group, bounds, bounds[1:], strict=False):
        if role in SUPERVISED[mask]:
            labels[begin:stop] = ids[begin:stop]
    return ids, labels, inexact


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def _encode_after(tokenizer: Any, text: str) -> list[int]:
    """Tokens of `text` in the middle of a document (no leading-space artefacts of a start)."""
    anchor = _encode(tokenizer, "\n")
    both = _encode(tokenizer, "\n" + text)
    if both[: len(anchor)] == anchor:
        return both[len(anchor) :]
    return _encode(tokenizer, text)


def _boundary(
    encode: Callable[[str], list[int]], text: str, char: int, ids: list[int]
) -> tuple[int, bool]:
    """Token index where `text[char:]` starts, and whether no token straddles `char`.

    A straddling token goes to the later segment.
    """
    head = encode(text[:char])
    if ids[: len(head)] == head:
        return len(head), True
    common = next((i for i, (a, b) in enumerate(zip(head, ids, strict=False)) if a != b), len(ids))
    return min(common, len(head)), False


def _leading_specials(tokenizer: Any) -> list[int]:
    """The special tokens the tokenizer puts before a text (e.g. BOS), found by comparison."""
    plain = _encode(tokenizer, "a")
    full = list(tokenizer("a").input_ids)
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return full[:i]
    return []
