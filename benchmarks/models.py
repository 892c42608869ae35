"""The random Llama the model benchmarks (`inference_bench`, `train_bench`) run on, and their clock.

Owns what both build and measure the same way: the model shapes (`ModelSpec`, `SIZES`: Llama-2-7B,
tiny, micro), the text shipped in ``fireact/resources`` (`shipped_text`) and the byte-level BPE
trained on it (`train_tokenizer`), the random `LlamaForCausalLM` initialised directly on the device
(`build_model`), `Device`: synchronised timing, CUDA-event markers and peak GPU memory for CUDA or
the CPU, and `run_benchmark`, their shared ``main``. Each benchmark keeps its own workload,
systems and figures.

The tokenizer and the model come from `fireact.train.tiny`, the builder of the trainer's tiny
model and of the tests' models; nothing here imports pydantic (the GPU image has none).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.resources import resource

# Distributions whose versions a model benchmark's results record (`common.run_info`).
PACKAGES = ["torch", "transformers", "tokenizers", "accelerate", "peft", "fireact"]
GIB = 2**30


# ---------------------------------------------------------------- shapes


@dataclass(frozen=True)
class ModelSpec:
    """The shape of a random Llama."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    vocab: int
    init_range: float  # std of the random weights


SIZES = {
    "7b": ModelSpec(4096, 11008, 32, 32, 32000, 0.02),  # Llama-2-7B, its config's init
    # tiny/micro: wide init (as tests/helpers/tiny_models.py) so that greedy decoding is not decided by
    # rounding, and attention visibly mixes positions (train_bench's packed-isolation check)
    "tiny": ModelSpec(256, 688, 4, 4, 32000, 0.2),
    "micro": ModelSpec(64, 128, 2, 4, 1000, 0.2),  # --quick (the smoke tests)
}


# ---------------------------------------------------------------- tokenizer and model


def shipped_text(max_chars: int) -> Iterator[str]:
    """Strings of the JSON/JSONL files and the text/CSV files shipped in ``fireact/resources``,
    in chunks of at most 100,000 characters, `max_chars` in all."""

    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    left = max_chars
    for path in sorted(p for p in resource().rglob("*") if p.is_file()):
        if path.suffix == ".json":
            texts = list(strings(json.loads(path.read_text("utf-8"))))
        elif path.suffix == ".jsonl":
            lines = path.read_text("utf-8").splitlines()
            texts = [s for line in lines if line.strip() for s in strings(json.loads(line))]
        elif path.suffix in {".txt", ".csv"}:
            texts = [path.read_text("utf-8")]
        else:
            continue
        for text in texts:
            for i in range(0, len(text), 100_000):
                chunk = text[i : i + 100_000][:left]
                left -= len(chunk)
                yield chunk
                if left <= 0:
                    return


def train_tokenizer(
    vocab_size: int, max_chars: int, *, pad_as_eos: bool = False, save_to: Path | None = None
) -> Any:
    """A byte-level BPE (``<s>`` prepended, ``</s>`` eos) trained on `shipped_text`.

    `pad_as_eos`: give it ``</s>`` as its pad token, as `sft.load_tokenizer` does for a tokenizer
    without one (otherwise it has none). `save_to`: also save it there (``save_pretrained``).
    """
    from fireact.train.tiny import train_bpe_tokenizer

    fast = train_bpe_tokenizer(shipped_text(max_chars), vocab_size)
    if pad_as_eos:
        fast.pad_token = fast.eos_token
    if save_to is not None:
        fast.save_pretrained(str(save_to))
    return fast


def build_model(
    spec: ModelSpec,
    tokenizer: Any,
    device: str,
    dtype: Any,
    *,
    seed: int | None = None,
    attention: str = "sdpa",
) -> Any:
    """A random LlamaForCausalLM of `spec`, initialised directly on `device` in `dtype`.

    Vocabulary: the larger of ``spec.vocab`` and the tokenizer's; bos, eos and pad ids are the
    tokenizer's (pad None when it has none); untied head. `seed`: ``torch.manual_seed`` right
    before the weights are drawn (None: the caller's RNG state). `attention` is the
    ``attn_implementation``. The model is left in the mode ``from_config`` gives it, with the
    config's ``use_cache``: callers set ``eval()`` or ``use_cache`` as they need.
    """
    from fireact.train.tiny import build_llama

    return build_llama(
        tokenizer,
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        layers=spec.layers,
        heads=spec.heads,
        min_vocab=spec.vocab,
        init_range=spec.init_range,
        seed=seed,
        device=device,
        dtype=dtype,
        attention=attention,
    )


# ---------------------------------------------------------------- measuring


class Device:
    """Synchronising clock, CUDA-event markers and peak-memory helpers for CUDA or the CPU."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.cuda = device.startswith("cuda")

    def sync(self) -> None:
        """Wait for queued GPU work (no-op on the CPU)."""
        if self.cuda:
            self.torch.cuda.synchronize()

    def time(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        """Seconds `fn()` took, synchronised on both sides, and its result."""
        self.sync()
        start = time.perf_counter()
        result = fn()
        self.sync()
        return time.perf_counter() - start, result

    def reset_peak(self, *, empty_cache: bool = False) -> None:
        """Start a new peak-memory window (after releasing cached blocks if `empty_cache`)."""
        if self.cuda:
            if empty_cache:
                self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        """Peak GPU memory allocated since `reset_peak` (None on the CPU)."""
        if not self.cuda:
            return None
        return round(self.torch.cuda.max_memory_allocated() / GIB, 2)

    def marker(self) -> Any:
        """A point in time on the device's stream (a CUDA event) or on the host clock."""
        if self.cuda:
            event = self.torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start: Any, end: Any) -> float:
        """Seconds between two markers (after `sync` for CUDA events)."""
        if self.cuda:
            return start.elapsed_time(end) / 1000
        return end - start

    def copy_gbs(self) -> float:
        """Measured copy bandwidth in GB/s (bytes read + written), 1 GiB on GPU, 256 MiB on CPU."""
        torch = self.torch
        n = GIB if self.cuda else 256 * 2**20
        device = "cuda" if self.cuda else "cpu"
        src = torch.empty(n, dtype=torch.uint8, device=device)
        dst = torch.empty_like(src)
        for _ in range(3):
            dst.copy_(src)
        reps = 20 if self.cuda else 5

        def copies() -> None:
            for _ in range(reps):
                dst.copy_(src)

        took, _ = self.time(copies)
        return round(2 * n * reps / took / 1e9, 1)


def run_benchmark(
    name: str,
    args: Any,
    bench: Callable[[Any, Path], dict[str, Any]],
    tables: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """The shared ``main`` of the GPU benchmarks: `bench` in a scratch folder, the results file
    written, the tables and target check printed; returns the whole document."""
    import tempfile

    from benchmarks.common import run_info, write_results

    info = run_info(PACKAGES)
    with tempfile.TemporaryDirectory(prefix=f"fireact-{name}-") as tmp:
        results = bench(args, Path(tmp))
    path = write_results(name, info, results, args.out)
    print(tables(results))
    print(json.dumps(results["target_check"]))
    print(f"results: {path}")
    return {"path": str(path), **info, **results}
