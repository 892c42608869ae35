"""Per-row stopping for the `hf` backend's batched `generate`: on the host, or on the device.

Owns the two `StoppingCriteria` the backend hands to ``model.generate``. Both stop each row at
its own stop strings (looked for in the row's NEW tokens only) or at its own ``max_tokens``, and
record at how many new tokens each row was first marked done:

* `HostStops` (the eager path, as the backend always did): each step it copies the tail of
  every live row to the host (one ``.tolist()``, a device sync) and decodes it with the
  tokenizer to look for the stop strings.
* `DeviceStops` (the static-cache path): no host work per step. Stop strings are matched by
  transformers' `StopStringCriteria` (pure tensor ops over a per-vocabulary table built once per
  stop set, cached by the caller), one per distinct stop set, masked to the rows that asked
  for it; ``max_tokens`` is a device tensor compared with the step's length (a Python int from
  the shape); the step each row stopped at is kept in a device tensor read once after
  ``generate``. The criteria return a bool tensor that ``generate`` folds into its
  ``unfinished_sequences``: a row that stops gets pad tokens from then on and no longer counts,
  and the loop ends when the last row is done.

Host syncs per step, read in the installed transformers (5.24, ``generation/utils.py``
``_sample``): the decoding loop itself still reads one scalar per step
(``StopCheck.__call__``: ``bool(unfinished_sequences.max() == 0)``); 5.24 defers that read by a
step (``DeferredStopCheck``) only on MPS. `DeviceStops` adds nothing to that one scalar read,
where `HostStops` adds a tail copy and a tokenizer decode of every live row each step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any


class StopCriteriaCache:
    """transformers' `StopStringCriteria` of each stop set, built once per set (building one
    reads the whole vocabulary); call it with the set as a tuple."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.built: dict[tuple[str, ...], Any] = {}

    def __call__(self, stops: tuple[str, ...]) -> Any:
        if stops not in self.built:
            from transformers import StopStringCriteria

            self.built[stops] = StopStringCriteria(self.tokenizer, list(stops))
        return self.built[stops]


class HostStops:
    """Per-row stop strings and max_tokens, checked on the host.

    Only the tail of each row's new tokens is decoded at each step (enough tokens to hold the
    longest stop string), in one device-to-host copy and one batched decode for the whole
    batch, so the check costs O(1) syncs per step whatever the batch size. `lengths[i]` records
    how many new tokens row i had when it was first marked done.
    """

    def __init__(
        self, tokenizer: Any, prompt_len: int, stops: Sequence[list[str]], max_tokens: list[int]
    ) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stops = list(stops)
        self.max_tokens = max_tokens
        self.window = max((len(s) for row in stops for s in row), default=0) + 4
        self.lengths: list[int | None] = [None] * len(stops)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        new_len = input_ids.shape[1] - self.prompt_len
        live = [i for i, length in enumerate(self.lengths) if length is None]
        checked = [i for i in live if self.stops[i] and new_len < self.max_tokens[i]]
        if checked:  # one device-to-host copy and one batched decode per step, not per row
            width = min(new_len, self.window)
            tails = input_ids[checked, input_ids.shape[1] - width :].tolist()
            texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
            stopped = {
                i
                for i, text in zip(checked, texts, strict=True)
                if any(s in text for s in self.stops[i])
            }
        else:
            stopped = set()
        for i in live:
            if new_len >= self.max_tokens[i] or i in stopped:
                self.lengths[i] = new_len
        done = [length is not None for length in self.lengths]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class DeviceStops:
    """Per-row stop strings and max_tokens, checked with tensor ops only (no host sync).

    `criteria_for(stop_set)` gives the `StopStringCriteria` of a stop set (a
    `StopCriteriaCache`: building one reads the whole vocabulary).

    `lengths()` (after ``generate``) reads, in one copy, how many new tokens each row had when
    it was first marked done (None for a row that never was).
    """

    def __init__(
        self,
        criteria_for: Callable[[tuple[str, ...]], Any],
        prompt_len: int,
        stops: Sequence[list[str]],
        max_tokens: list[int],
        device: Any,
    ) -> None:
        import torch

        self.prompt_len = prompt_len
        self.max_tokens = torch.tensor(max_tokens, dtype=torch.long, device=device)
        rows_by_set: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, row in enumerate(stops):
            if row:
                rows_by_set[tuple(row)].append(i)
        self.groups = []
        for stop_set, rows in rows_by_set.items():
            mask = torch.zeros(len(stops), dtype=torch.bool, device=device)
            mask[rows] = True
            self.groups.append((criteria_for(stop_set), mask))
        self.stopped_at = torch.full((len(stops),), -1, dtype=torch.long, device=device)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        new_len = input_ids.shape[1] - self.prompt_len
        done = self.max_tokens <= new_len
        new_tokens = input_ids[:, self.prompt_len :]  # a stop string in the prompt is no stop
        for criteria, mask in self.groups:
            done = done | (criteria(new_tokens, scores) & mask)
        self.stopped_at = torch.where(done & (self.stopped_at < 0), new_len, self.stopped_at)
        return done

    def lengths(self) -> list[int | None]:
        return [None if n < 0 else n for n in self.stopped_at.tolist()]
