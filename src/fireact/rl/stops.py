"""Where a policy turn ends: the cut of a sampled row at its first stop string or EOS, and the
stopping criterion that ends a batched ``generate`` once every row has reached its cut.

The cut rule (`PolicyLLM._cut`): walking n = 1, 2, ... over the sampled ids, the turn ends at
the first n whose token is EOS (its text: the ids before it) or whose decoded prefix
``decode(ids[:n])`` holds a stop string (its text: up to the first listed stop found there).
`cut` finds that n with one decode of the row up to its first EOS and a binary search over the
prefixes, not one decode per prefix: a prefix's decoded text is a prefix of a longer one's
(byte-level decoding grows at the end only; an incomplete UTF-8 character decodes to U+FFFD
until it completes), so "holds a stop" only turns on once. Where that does not hold — a
tokenizer that cleans up spaces around punctuation while decoding, or a stop string holding
U+FFFD — it walks the prefixes one by one as the rule says.

`RowStops` is the `StoppingCriteria` of one batch: a row is done at its own token limit, at EOS,
or when transformers' `StopStringCriteria` (tensor ops over the whole batch, one per distinct
stop set) sees one of the row's stop strings completed by its last token and a decode of the
row's new tokens confirms it (the tensor check also sees stops reaching into the prompt, which
the cut rule does not). So a row is never done before its cut; ``generate`` pads the rows that
are done and ends the loop when the last one is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Decode = Callable[[list[int]], str]


def _found(text: str, stop: Sequence[str]) -> str | None:
    return next((s for s in stop if s in text), None)


def walk_cut(
    decode: Decode, ids: list[int], stop: Sequence[str], eos: int | None
) -> tuple[str, int]:
    """The cut rule, one decode per prefix (where a prefix's text may not begin the whole's)."""
    for n in range(1, len(ids) + 1):
        if ids[n - 1] == eos:
            return decode(ids[: n - 1]), n
        text = decode(ids[:n])
        if (s := _found(text, stop)) is not None:
            return text[: text.index(s)], n
    return decode(ids), len(ids)


def cut(decode: Decode, ids: list[int], stop: Sequence[str], eos: int | None) -> tuple[str, int]:
    """(text before the first stop string or EOS, how many ids are kept: up to the one that
    completes the stop, or the EOS) by one decode and a binary search (see the module doc)."""
    end = ids.index(eos) if eos is not None and eos in ids else len(ids)
    whole = decode(ids[:end])
    if end == 0 or _found(whole, stop) is None:
        return whole, end + 1 if end < len(ids) else end  # EOS kept, or every id
    low, high = 1, end  # the shortest prefix whose text holds a stop: high's does
    while low < high:
        mid = (low + high) // 2
        if _found(decode(ids[:mid]), stop) is None:
            low = mid + 1
        else:
            high = mid
    text = decode(ids[:low])
    first = _found(text, stop)
    if first is None:  # not reached while prefixes grow; the rule itself, to be sure
        return walk_cut(decode, ids, stop, eos)
    return text[: text.index(first)], low


def prefixes_grow(tokenizer: Any, stops: Sequence[str]) -> bool:
    """Whether `cut`'s binary search holds for this tokenizer and these stop strings."""
    return not getattr(tokenizer, "clean_up_tokenization_spaces", False) and not any(
        "\ufffd" in s for s in stops
    )


class RowStops:
    """Per row: done at its token limit, at EOS, or at a confirmed stop string (module doc)."""

    def __init__(
        self,
        decode: Decode,
        width: int,
        rows: Sequence[tuple[Sequence[str], int]],
        criteria: Callable[[tuple[str, ...]], Any],
        eos: int | None,
    ) -> None:
        import torch

        self.decode, self.width, self.eos = decode, width, eos
        self.stops = [tuple(stop) for stop, _ in rows]
        # an empty stop string is in every text: its row ends at its first token
        limits = [1 if "" in stop else limit for stop, limit in rows]
        self.limits = torch.tensor(limits)
        self.groups: dict[tuple[str, ...], tuple[Any, list[int]]] = {}  # stop set → its rows
        for i, stop in enumerate(self.stops):
            if stop and "" not in stop:
                if stop not in self.groups:
                    self.groups[stop] = (criteria(stop), [])
                self.groups[stop][1].append(i)
        self.done = torch.zeros(len(rows), dtype=torch.bool)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        new, device = input_ids.shape[1] - self.width, input_ids.device
        done = self.done.to(device) | (self.limits.to(device) <= new)
        if self.eos is not None:
            done |= input_ids[:, -1] == self.eos
        for criterion, rows in self.groups.values():
            hit = criterion(input_ids[rows], scores)
            for row, flagged in zip(rows, hit.tolist(), strict=True):
                if flagged and not done[row]:  # confirmed on the row's own new tokens
                    text = self.decode(input_ids[row, self.width :].tolist())
                    done[row] = _found(text, self.stops[row]) is not None
        self.done = done
        return done
