"""The `hf` backend's compiled decode path: a static KV cache, `torch.compile`, bucketed shapes.

Owns what `HFLLM` does differently when compiling (``compile="on"``, or ``"auto"`` on CUDA):

* ``generate`` with ``cache_implementation="static"``: the KV cache is allocated once per call at
  its final length and written in place (the dynamic cache grows by ``torch.cat``, copying the
  whole cache every step);
* its decoding forward compiled by transformers' own auto-compile (``compile_config``: inductor,
  ``dynamic=False``; ``mode="reduce-overhead"``, i.e. CUDA graphs, on CUDA; on the CPU
  ``_compile_all_devices`` turns it on and the mode is inductor's default). The prefill runs
  uncompiled (transformers compiles the one-token decoding step only), so the compiled graph's
  shapes are the batch and the cache length alone;
* both bucketed (`Buckets`) so that a run compiles a few graphs, not one per batch: the batch is
  padded with filler rows up to the next power of two (at most ``max_batch_size``), and the
  cache length is rounded up to a multiple of ``cache_step`` tokens and never shrinks (the
  high-water mark is asked for every time; transformers 5.24 keeps one too,
  ``_previous_max_cache_length``). ``max_new_tokens`` is what is left of the cache after the
  prompt: each row still stops at its own ``max_tokens`` (`DeviceStops`), and the loop ends when
  every row has. `shapes` counts the ``(batch, cache length)`` of every call;
* stop strings checked on the device (`hf_stops.DeviceStops`): no host sync per step beyond the
  one scalar transformers' loop reads anyway;
* one `StaticCache` kept per batch bucket (at the current cache length) and handed to every
  ``generate`` of that shape, reset in place (`Caches`). transformers makes a new cache per call
  otherwise, and its tensors are marked as static addresses: under CUDA graphs a new address
  means the graph is recorded again, on every call. If the device runs out of memory with caches
  of other shapes held, those are dropped and the call is made once more.

``compile="auto"`` falls back to the same static path uncompiled, saying so once on stderr, when
``torch.compile`` itself fails (dynamo or inductor: no C++ compiler, a Triton error);
``compile="on"`` makes that failure one error line instead.

The trade-off in the buckets: each (batch bucket, cache length) is one compile (tens of seconds
for a 7B on a GPU, once per process), and a longer cache is more KV read per step. A run whose
prompts grow from 1,500 to 2,600 tokens (FireAct's few-shot ReAct) with episodes finishing at
different times compiles at most 7 batch buckets x 3 cache lengths (2,048 / 2,560 / 3,072 with the
default ``cache_step`` 512), a one-off cost next to its thousands of calls.

Dynamo's recompile limit (8 graphs per function by default) is raised to `RECOMPILE_LIMIT` so
that the batch buckets times a few cache lengths stay compiled (past it dynamo falls back to
eager without an error). Rows of a batch are independent, so left padding and filler rows do not
change a row's greedy text (the test compares the texts with the eager path's).
"""

from __future__ import annotations

import sys
from collections import Counter, OrderedDict
from typing import Any

from fireact.errors import FireactError
from fireact.llm.hf_stops import DeviceStops, StopCriteriaCache

COMPILE_CHOICES = ("auto", "on", "off")
RECOMPILE_LIMIT = 64


def compile_wanted(choice: str, device: str) -> bool:
    """Whether to compile: ``on``, ``off``, or ``auto`` (on CUDA only)."""
    if choice not in COMPILE_CHOICES:
        raise FireactError(f"hf compile: {choice!r} is not one of {', '.join(COMPILE_CHOICES)}")
    if choice == "auto":
        return device.startswith("cuda")
    return choice == "on"


class Buckets:
    """The few shapes compiled graphs are made for: batch sizes and cache lengths."""

    def __init__(self, max_batch_size: int, cache_step: int = 512) -> None:
        self.max_batch_size = max_batch_size
        self.cache_step = cache_step

    def batch(self, n: int) -> int:
        """The next power of two ≥ n, at most ``max_batch_size`` (never below n)."""
        return max(n, min(1 << (n - 1).bit_length(), self.max_batch_size))

    def cache(self, needed: int, limit: int | None) -> int:
        """`needed` rounded up to a multiple of ``cache_step``, at most `limit` (the model's
        positions) unless `needed` is already past it."""
        rounded = -(-needed // self.cache_step) * self.cache_step
        if limit is not None and needed <= limit:
            rounded = min(rounded, limit)
        return rounded


def raise_recompile_limit(limit: int = RECOMPILE_LIMIT) -> None:
    """Let dynamo keep `limit` graphs per function (``recompile_limit``; older torch:
    ``cache_size_limit``)."""
    import torch._dynamo

    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name) and getattr(config, name) < limit:
            setattr(config, name, limit)


def compile_config(device: str) -> Any:
    """transformers' `CompileConfig` for `device` (CUDA graphs on CUDA)."""
    from transformers import CompileConfig

    cuda = device.startswith("cuda")
    config = CompileConfig(
        fullgraph=False, dynamic=False, mode="reduce-overhead" if cuda else "default"
    )
    if not cuda:
        config._compile_all_devices = True  # transformers auto-compiles on CUDA-like devices only
    return config


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """`rows` padded on the left to the longest: (input ids, attention mask) tensors."""
    import torch

    width = max(len(r) for r in rows)
    input_ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows])
    attention = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return input_ids, attention


class Caches:
    """The static KV caches kept for reuse: one per batch bucket, all of one cache length."""

    def __init__(self, model: Any) -> None:
        import inspect

        self.model = model
        base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT
        forward = inspect.signature(type(base).forward).parameters
        # transformers 5.2x names the argument ``cache``; earlier 5.x ``past_key_values``
        self.kwarg = "cache" if "cache" in forward else "past_key_values"
        self.length = 0
        self.held: OrderedDict[int, Any] = OrderedDict()
        self.made = 0

    def get(self, batch: int, length: int) -> Any:
        """The cache for `batch` rows of `length` positions, emptied; a new one on first use
        (or when the length grew: the shorter ones are dropped)."""
        if length != self.length:
            self.held.clear()
            self.length = length
        cache = self.held.get(batch)
        if cache is None:
            from transformers import StaticCache

            cache = StaticCache(config=self.model.config, max_cache_len=length)
            self.made += 1
        else:
            cache.reset()
        self.held[batch] = cache
        self.held.move_to_end(batch)
        return cache

    def keep_only(self, batch: int) -> bool:
        """Drop every cache but `batch`'s; whether any was dropped."""
        others = [b for b in self.held if b != batch]
        for b in others:
            del self.held[b]
        return bool(others)


def is_compile_failure(err: BaseException) -> bool:
    """Whether `err` comes from torch.compile itself (dynamo or inductor), not from the model."""
    return any(
        klass.__module__.startswith(("torch._dynamo", "torch._inductor"))
        for klass in type(err).__mro__
    )


class StaticDecoder:
    """Batched ``generate`` on a static KV cache, compiled or not, with bucketed shapes.

    `compiled`: compile the decoding step (False: the same static path, eager; transformers
    would auto-compile a static cache on CUDA, so it is switched off explicitly). `fall_back`:
    if compiling fails, go on uncompiled (``compile="auto"``) instead of failing.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        compiled: bool,
        max_batch_size: int,
        cache_step: int,
        fall_back: bool = False,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.compiled = compiled
        self.fall_back = fall_back
        self.buckets = Buckets(max_batch_size, cache_step)
        self.caches = Caches(model)
        self.cache_len = 0  # the high-water mark
        self.shapes: Counter[tuple[int, int]] = Counter()
        self.criteria_for = StopCriteriaCache(tokenizer)  # stop set -> StopStringCriteria
        self._compile_config = compile_config(str(model.device)) if compiled else None
        if compiled:
            raise_recompile_limit()

    def generate(
        self, rows: list[list[int]], stops: list[list[str]], max_tokens: list[int], config: Any
    ) -> tuple[list[list[int]], list[int | None]]:
        """Each row's new tokens and the count at which it stopped (None: it never did).

        `config` is the call's `GenerationConfig` (sampling, eos, pad); its length and cache
        settings are replaced here.
        """
        import torch

        n = len(rows)
        batch = self.buckets.batch(n)
        fill = batch - n  # filler rows: copies of row 0 that stop after one token
        rows = rows + [rows[0]] * fill
        stops = stops + [[]] * fill
        max_tokens = max_tokens + [1] * fill
        width = max(len(r) for r in rows)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        self.cache_len = max(self.cache_len, self.buckets.cache(width + max(max_tokens), limit))
        self.shapes[(batch, self.cache_len)] += 1

        config.cache_implementation = None  # the cache is ours (`Caches`)
        config.max_new_tokens = self.cache_len - width
        config.min_new_tokens = min(config.min_new_tokens or 0, config.max_new_tokens) or None
        args = (rows, stops, max_tokens, config, width, batch)
        try:
            output, criteria = self._run(*args)
        except torch.OutOfMemoryError:
            if not self.caches.keep_only(batch):
                raise
            torch.cuda.empty_cache()  # the other shapes' caches are gone: once more
            output, criteria = self._run(*args)
        except Exception as err:
            if not (self.compiled and is_compile_failure(err)):
                raise
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            what = f"torch.compile failed ({type(err).__name__}: {first})"
            if not self.fall_back:
                raise FireactError(f"hf compile: {what}; run with --hf-compile off") from None
            print(f"fireact: hf compile: {what}; decoding uncompiled", file=sys.stderr)
            self.compiled = False
            output, criteria = self._run(*args)
        new_tokens = output[:n, width:].tolist()
        return new_tokens, criteria.lengths()[:n]

    def _run(
        self,
        rows: list[list[int]],
        stops: list[list[str]],
        max_tokens: list[int],
        config: Any,
        width: int,
        batch: int,
    ) -> tuple[Any, DeviceStops]:
        """One ``generate`` on the kept cache of this shape: (output ids, its stop criteria)."""
        import torch
        from transformers import StoppingCriteriaList

        if self.compiled:
            config.compile_config = self._compile_config
        else:
            config.disable_compile = True
        input_ids, attention = left_pad(rows, self.tokenizer.pad_token_id)
        device = self.model.device
        criteria = DeviceStops(self.criteria_for, width, stops, max_tokens, device)
        with torch.inference_mode():  # the cache's tensors are made and reset in it
            cache = self.caches.get(batch, self.cache_len)
            output = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                generation_config=config,
                stopping_criteria=StoppingCriteriaList([criteria]),
                **{self.caches.kwarg: cache},
            )
        return output, criteria
