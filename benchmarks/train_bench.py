"""Training benchmark (P3): LoRA SFT on FireAct trajectories, ``fireact train`` vs alpaca-lora.

Model: a Llama with RANDOM weights built from a `LlamaConfig` in this process (no hub):
``--model-size 7b`` is Llama-2-7B's shape (hidden 4096, intermediate 11008, 32 layers, 32 heads,
vocab 32,000, untied head) in bf16, initialised directly on the GPU; ``--model-size tiny`` (the
default without CUDA) is hidden 256, intermediate 688, 4 layers, 4 heads, vocab 32,000, on the CPU
in fp32 (the precision `resolve_precision` picks there). It is saved with its tokenizer into the
scratch folder (13.5 GB for 7b) and read back by the trainer, as ``fireact train --model DIR``
reads any model. Attention is PyTorch SDPA: the device has no flash-attn, so fireact's packing
isolates examples with its explicit block-diagonal 4D mask.

Data: FireAct's ``multitask_multimethod`` alpaca set (2,063 ReAct / CoT / Reflexion records),
tokenised by a byte-level BPE with Llama-2's vocabulary size (32,000) trained here, in seconds, on
the text shipped in ``fireact/resources``; its lengths are recorded (chars per token, mean, median,
how many exceed the cutoff).

Both systems train the same model with the same LoRA (the recipe's r 8, alpha 16, dropout 0.05 on
q_proj/v_proj; the baseline starts from the trainer's initial LoRA weights), micro-batch 4, cutoff
512, one optimiser step per micro-batch, the same gradient checkpointing setting and the same number
of steps (``--warmup-steps`` untimed, then ``--steps`` timed):

* ``ours``: ``fireact train`` itself. `fireact.train.train` (the function the ``fireact train``
  command calls) runs ``configs/llama2-7b-lora.yaml`` read by `load_config` with ``--model <the
  saved random model> --dataset fireact:finetune/alpaca_format/multitask_multimethod.json
  --packing true --batch_size 4 --max_steps <warm-up + timed> --save_steps null`` (+
  ``--gradient_checkpointing true`` on 7b; no checkpoint is saved inside the timed steps). All of
  it is the trainer's: rows from `sft.load_data` (mask ``model_turns`` + ``learn_stop``,
  truncation at 512, first-fit-decreasing packing), `PackedCollator` in the mode
  `sft.attention_mode` picks, the PEFT model of `sft.apply_method`, transformers' `Trainer` loop
  with fireact's callbacks (the JSONL log, every step as the recipe says, and the NaN guard), its
  optimiser (fused AdamW, lr 3e-4, clip 1.0) and its sampler's random order. The benchmark adds
  one `TrainerCallback` through `train`'s ``callbacks`` seam (`StepProbe`): it times the optimiser
  steps (CUDA events between ``on_step_begin`` and ``on_step_end``, a sync only at the start of
  the first timed step and the end of the last), resets the peak-memory counter at
  ``on_train_begin``, keeps the initial LoRA weights, and keeps (forward pre-hook) the labels and
  position ids of each batch the trainer fed the model, counted after the run.
* ``baseline``: alpaca-lora's recipe on the same examples (same token ids): every token supervised
  (labels = input ids, ``train_on_inputs``), one example per row, ``group_by_length``
  (`LengthGroupedSampler` over alpaca-lora's batch of 128 = micro-batch 4 x accumulation 32, whose
  wider mega-batches mean less padding than grouping by 4), padded to the longest in each
  micro-batch by `DataCollatorForSeq2Seq(pad_to_multiple_of=8)` with a 2D attention mask. Its loop
  is this file's own lean copy of what `Trainer.train` does per step: collate on the host, move,
  forward under bf16 autocast (``bf16=True``), backward, clip 1.0, fused AdamW step (lr 3e-4),
  zero; step times from CUDA events (no host sync inside the timed steps). It runs after ``ours``
  on the model the trainer trained, its LoRA weights reset to their initial values and
  accelerate's autocast wrapper removed; gradient checkpointing stays as `Trainer` turned it on
  (``activation_checkpointing_enable`` with ``use_reentrant=False``).

The baseline's warm-up + timed micro-batches are spread evenly over one epoch in its own order
(group_by_length sorts each mega-batch longest first, so an epoch's first steps alone would be its
longest batches); ours takes the trainer's first micro-batches, a uniform random sample of its
rows. Each epoch's own token and padding totals are also reported.

Reported per system: supervised tokens/s (labels != -100 that the loss uses), non-pad tokens/s,
model-turn tokens/s (Thought/Action tokens in the batch: what fireact supervises, counted for both),
padding, step time, peak GPU memory (`torch.cuda.max_memory_allocated` over the system's warm-up and
timed steps, weights included), achieved TFLOP/s, MFU and HFU; the ratios ours / baseline; a
projected epoch time (epoch tokens as batched / measured tokens per second). FLOPs, per non-pad
token: ``4 N_base + 6 N_lora`` (forward 2 N_base + 2 N_lora, backward input gradients 2 N_base +
2 N_lora, LoRA weight gradients 2 N_lora; N_base = every matmul weight of the base, lm_head included,
the input embedding table not) plus causal attention ``12 h P`` per layer per example (P = L(L+1)/2
attended pairs within the example: QK^T and PV forward 4 h P, backward 8 h P). MFU counts these
model FLOPs only; HFU adds the forward recomputed by gradient checkpointing (``2 N_base + 2 N_lora``
per token and ``4 h P`` per layer). Padding and the masked-out parts of a packed row's attention
are not counted. Peak: H100 SXM dense bf16 989 TFLOP/s (looked up from the GPU's name;
``--peak-tflops`` overrides); none on the CPU.

Also checked once on the trained model: a packed row of two examples gives the second the same
logits as running it alone (max abs difference reported, next to the difference when the row runs
as one causal sequence: no mask, positions running on).

Run from the repository root: ``.venv/bin/python benchmarks/train_bench.py`` (or ``python -m
benchmarks.train_bench``; tiny on CPU, ~8 min on 2 cores) or ``bash benchmarks/run_gpu.sh p3`` on
a GPU machine (7b); results go to ``benchmarks/results/train-<host kind>.json``. It needs
pydantic (fireact's config): the GPU image has none, see ``run_gpu.sh``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import math
import os
import resource as rusage
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if not __package__:  # run as `python benchmarks/train_bench.py`: the package's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import REPO, format_table, latency_stats  # noqa: E402
from benchmarks.models import (  # noqa: E402
    SIZES,
    Device,
    ModelSpec,
    build_model,
    run_benchmark,
    train_tokenizer,
)
from fireact import train as fireact_train  # noqa: E402
from fireact.train.dataset import IGNORE, Example, record_text  # noqa: E402
from fireact.train.packing import PackedCollator  # noqa: E402

if TYPE_CHECKING:
    from fireact.train.config import SFTConfig

NAME = "train"
RECIPE = REPO / "configs" / "llama2-7b-lora.yaml"
DATASET = "fireact:finetune/alpaca_format/multitask_multimethod.json"
TARGETS = {"x_supervised_tokens_per_s": 3.0, "mfu_pct": 50.0, "peak_gpu_mem_gib": 20.0}
MICRO_BATCH = 4
CUTOFF = 512
BASELINE_GROUP_BATCH = 128  # alpaca-lora: batch 128 = micro-batch 4 x gradient accumulation 32
PAD_MULTIPLE = 8  # alpaca-lora's DataCollatorForSeq2Seq(pad_to_multiple_of=8)
# What the trainer's config needs and the GPU image lacks (run_gpu.sh installs carried wheels)
TRAINER_WHEELS = ["pydantic", "pydantic-core", "annotated-types", "typing-inspection"]
# the trainer's summary keys the results keep (its output paths lie in the scratch folder)
SUMMARY_KEYS = ["steps", "final_loss", "examples", "rows", "tokens_per_epoch",
                "supervised_tokens_per_epoch", "truncated", "dropped", "runtime_s"]  # fmt: skip

# Dense bf16 tensor-core peak (TFLOP/s) by a substring of the GPU's name; first match wins.
PEAK_TFLOPS = [
    ("H100 80GB HBM3", 989.0),  # H100 SXM5
    ("H100 SXM", 989.0),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H200", 989.0),
    ("A100", 312.0),
]


# ---------------------------------------------------------------- gradient checkpointing


def enable_checkpointing(model: Any) -> str:
    """Gradient checkpointing as `Trainer` turns it on; returns the method used."""
    kwargs = {"use_reentrant": False}  # `sft.training_arguments`' activation_checkpointing_kwargs
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        return "activation_checkpointing_enable(use_reentrant=False)"
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return "gradient_checkpointing_enable(use_reentrant=False)"


# ---------------------------------------------------------------- the trainer's seam


def require_trainer() -> None:
    """Exit in one line when fireact's trainer cannot be imported for want of pydantic (the GPU
    image has none; ``run_gpu.sh`` installs it from carried wheels)."""
    try:
        from fireact.train import sft  # noqa: F401
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] not in {"pydantic", "pydantic_core"}:
            raise
        raise SystemExit(
            f"train_bench: fireact's trainer needs {err.name} (its config is pydantic), not "
            f"installed here; install {', '.join(TRAINER_WHEELS)} or, on the lent GPU machine, "
            "carry their wheels (bash benchmarks/gpu_wheels.sh, then run(..., carry=['.whl']); "
            "run_gpu.sh installs them)"
        ) from None


def step_probe(warmup: int, dev: Device) -> Any:
    """The `TrainerCallback` the benchmark gives `fireact.train.train` (see `StepProbe`)."""
    from transformers import TrainerCallback

    class StepProbe(TrainerCallback):
        """Times the trainer's optimiser steps and keeps what it fed the model.

        ``on_train_begin``: keeps the model and its initial trainable (LoRA) weights, hooks the
        model's forward, resets the peak-memory counter. Each step: a device marker at
        ``on_step_begin`` and ``on_step_end`` (CUDA events, no sync); a sync and the wall clock
        at the end of the last warm-up step and of the last step. The forward pre-hook keeps
        references to each training batch's ``labels`` and ``position_ids`` (read after the
        run). Removes its hook at ``on_train_end``.
        """

        def __init__(self) -> None:
            self.model: Any = None
            self.lora_init: dict[str, Any] = {}
            self.batches: list[dict[str, Any]] = []
            self.marks: list[tuple[Any, Any]] = []
            self.wall_start = self.wall = self.cpu_s = 0.0
            self.peak_gib: float | None = None
            self._cpu_start = 0.0
            self._begin: Any = None
            self._hook: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            model = kw["model"]
            self.model = model
            self.lora_init = {
                n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
            }
            self._hook = model.register_forward_pre_hook(self._see_batch, with_kwargs=True)
            dev.sync()
            dev.reset_peak(empty_cache=True)
            self._cpu_start = time.process_time()
            self.wall_start = time.perf_counter()

        def _see_batch(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            if module.training:
                self.batches.append({k: kwargs.get(k) for k in ("labels", "position_ids")})

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._begin = dev.marker()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.marks.append((self._begin, dev.marker()))
            if state.global_step == warmup:
                dev.sync()
                self.wall_start = time.perf_counter()
            if state.global_step == state.max_steps:
                dev.sync()
                self.wall = time.perf_counter() - self.wall_start
                self.cpu_s = time.process_time() - self._cpu_start
                self.peak_gib = dev.peak_gib()

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self._hook is not None:
                self._hook.remove()
                self._hook = None

    return StepProbe()


def run_ours(config: SFTConfig, dev: Device, warmup: int) -> tuple[Any, dict[str, Any]]:
    """``fireact train``: `fireact.train.train` with the probe; (probe, the trainer's summary)."""
    probe = step_probe(warmup, dev)
    summary = fireact_train.train(config, callbacks=[probe])
    if not probe.wall:
        raise RuntimeError(f"the trainer ran {summary['steps']} steps, not {config.max_steps}")
    return probe, summary


def packed_row(labels: list[int], positions: list[int]) -> list[int]:
    """Example lengths of one row as `PackedCollator` made it: every example (and the padding
    after them) restarts its positions at 0; the padding is the final segment with no label."""
    starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
    lengths = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    last = starts[-2] if len(starts) > 1 else 0
    if lengths and all(label == IGNORE for label in labels[last:]):
        lengths.pop()  # padding (an example always has a supervised label)
    return lengths


def ours_counts(batch: dict[str, Any]) -> tuple[dict[str, int], list[int]]:
    """Token counts (as `batch_counts`) and example lengths of one batch the trainer fed."""
    labels = batch["labels"].cpu()
    lengths_by_row = [
        packed_row(row, pos)
        for row, pos in zip(labels.tolist(), batch["position_ids"].cpu().tolist(), strict=True)
    ]
    lengths = [n for row in lengths_by_row for n in row]
    supervised = int((labels[:, 1:] != IGNORE).sum())
    counts = {
        "rows": int(labels.shape[0]),
        "examples": len(lengths),
        "tokens": int(labels.numel()),
        "nonpad": sum(lengths),
        "supervised": supervised,
        "model_turn": supervised,  # ours supervises exactly the Thought/Action tokens
    }
    return counts, lengths


def train_log(output_dir: Path) -> list[dict[str, Any]]:
    """The trainer's own ``train_log.jsonl`` (one line per logging step)."""
    from fireact.train.sft import LOG_FILE

    path = output_dir / LOG_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------- the baseline's batches


@dataclass
class Item:
    """One row of a micro-batch: its examples, and the Thought/Action tokens they hold."""

    examples: list[Example]
    model_turn_tokens: int


class BaselineCollator:
    """alpaca-lora: `DataCollatorForSeq2Seq(padding=True, pad_to_multiple_of=8)` on whole examples.

    Labels are the input ids (every token supervised); padding gets label -100 and mask 0.
    """

    def __init__(self, tokenizer: Any) -> None:
        from transformers import DataCollatorForSeq2Seq

        self.inner = DataCollatorForSeq2Seq(
            tokenizer, padding=True, pad_to_multiple_of=PAD_MULTIPLE, return_tensors="pt"
        )

    def __call__(self, items: list[Item]) -> dict[str, Any]:
        features = []
        for item in items:
            (example,) = item.examples
            ids = list(example.input_ids)
            features.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": ids})
        return dict(self.inner(features))


def ours_items(rows: list[list[Example]]) -> list[Item]:
    """Packed rows as items; every supervised token of ours is a model-turn token."""
    return [Item(row, sum(e.supervised for e in row)) for row in rows]


def baseline_items(rows: list[list[Example]]) -> list[Item]:
    """The same examples, one per row (their model-turn count kept from fireact's labels)."""
    return [Item([e], e.supervised) for row in rows for e in row]


def random_order(n: int, seed: int) -> list[int]:
    """One epoch in `Trainer`'s random order: a seeded permutation of range(n)."""
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def length_grouped_order(lengths: list[int], seed: int) -> list[int]:
    """One epoch in `Trainer`'s group_by_length order (alpaca-lora's batch of 128)."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    generator = torch.Generator().manual_seed(seed)
    return list(get_length_grouped_indices(lengths, BASELINE_GROUP_BATCH, generator=generator))


def micro_batches(items: list[Item], order: list[int]) -> list[list[Item]]:
    """Consecutive groups of `MICRO_BATCH` items in `order` (a final short group is dropped)."""
    n = len(order) // MICRO_BATCH
    return [[items[i] for i in order[k * MICRO_BATCH : (k + 1) * MICRO_BATCH]] for k in range(n)]


def spread(batches: list[list[Item]], total: int) -> list[list[Item]]:
    """`total` of an epoch's micro-batches, evenly spaced from its first (repeated if too few).

    A representative sample of the epoch's batch shapes: group_by_length sorts each mega-batch
    longest first, so the epoch's first steps alone would be its longest batches.
    """
    if total <= len(batches):
        return [batches[i * len(batches) // total] for i in range(total)]
    return [batches[i % len(batches)] for i in range(total)]


# ---------------------------------------------------------------- counting


@dataclass(frozen=True)
class FlopModel:
    """Parameter counts and the FLOP formula (see the module docstring)."""

    n_base: int  # matmul weights of the base model (lm_head in, input embeddings out)
    n_lora: int  # LoRA adapter parameters
    hidden: int
    layers: int

    def step(self, lengths: Sequence[int]) -> tuple[float, float]:
        """(model FLOPs, recomputed-forward FLOPs) of one step over examples of these lengths."""
        tokens = sum(lengths)
        pairs = sum(n * (n + 1) / 2 for n in lengths)
        attention = self.hidden * self.layers * pairs
        model = tokens * (4 * self.n_base + 6 * self.n_lora) + 12 * attention
        recompute = tokens * (2 * self.n_base + 2 * self.n_lora) + 4 * attention
        return model, recompute

    def per_token(self) -> float:
        """Linear-layer model FLOPs per token (attention excluded)."""
        return 4 * self.n_base + 6 * self.n_lora


def flop_model(model: Any, spec: ModelSpec) -> FlopModel:
    """Count the base's matmul weights and the LoRA parameters of a PEFT model."""
    import torch

    n_base = n_lora = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            if "lora_" in name:
                n_lora += module.weight.numel()
            else:
                n_base += module.weight.numel()
    return FlopModel(n_base, n_lora, spec.hidden, spec.layers)


def batch_counts(items: list[Item], batch: dict[str, Any]) -> dict[str, int]:
    """Token counts of one collated micro-batch."""
    labels = batch["labels"]
    return {
        "rows": len(items),
        "examples": sum(len(i.examples) for i in items),
        "tokens": int(labels.numel()),  # positions run, padding included
        "nonpad": sum(len(e.input_ids) for i in items for e in i.examples),
        "supervised": int((labels[:, 1:] != IGNORE).sum()),  # what the shifted loss uses
        "model_turn": sum(i.model_turn_tokens for i in items),
    }


def padded_width(items: list[Item], multiple: int) -> int:
    """The width a micro-batch is padded to (longest row, rounded up to `multiple`)."""
    width = max(sum(len(e.input_ids) for e in i.examples) for i in items)
    return -(-width // multiple) * multiple


def epoch_summary(items: list[Item], order: list[int], multiple: int) -> dict[str, Any]:
    """Tokens, padding and steps of one whole epoch as this system batches it (no model run)."""
    batches = micro_batches(items, order)
    padded = sum(padded_width(b, multiple) * len(b) for b in batches)
    nonpad = sum(len(e.input_ids) for b in batches for i in b for e in i.examples)
    model_turn = sum(i.model_turn_tokens for b in batches for i in b)
    return {
        "steps": len(batches),
        "padded_tokens": padded,
        "nonpad_tokens": nonpad,
        "model_turn_tokens": model_turn,
        "padding_pct": round(100 * (1 - nonpad / padded), 2),
        "nonpad_tokens_per_step": round(nonpad / len(batches), 1),
    }


# ---------------------------------------------------------------- measuring


def system_row(
    name: str,
    *,
    warmup: int,
    wall: float,
    cpu_s: float,
    step_s: list[float],
    counts: list[dict[str, int]],
    lengths: list[int],
    flops: FlopModel,
    checkpointing: bool,
    peak_gib: float | None,
    losses: list[float],
    collate_ms_mean: float | None,
    host_ms_per_step_mean: float | None,
) -> dict[str, Any]:
    """One system's figures from its timed steps (`counts` and `lengths`: those steps' batches)."""
    total = {key: sum(c[key] for c in counts) for key in counts[0]}
    model_flops, recompute_flops = flops.step(lengths)
    if not checkpointing:
        recompute_flops = 0.0
    return {
        "system": name,
        "steps": len(step_s),
        "warmup_steps": warmup,
        "wall_s": round(wall, 3),
        "step_ms": latency_stats(step_s),
        "mean_step_ms": round(1000 * wall / len(step_s), 2),
        "collate_ms_mean": collate_ms_mean,
        "host_ms_per_step_mean": host_ms_per_step_mean,
        "process_cpu_s": round(cpu_s, 2),
        **{f"{key}_total": value for key, value in total.items()},
        "padding_pct": round(100 * (1 - total["nonpad"] / total["tokens"]), 2),
        "nonpad_tokens_per_step": round(total["nonpad"] / len(step_s), 1),
        "supervised_tokens_per_s": total["supervised"] / wall,
        "nonpad_tokens_per_s": total["nonpad"] / wall,
        "model_turn_tokens_per_s": total["model_turn"] / wall,
        "padded_tokens_per_s": total["tokens"] / wall,
        "model_tflop": model_flops / 1e12,
        "recompute_tflop": recompute_flops / 1e12,
        "achieved_model_tflops": model_flops / wall / 1e12,
        "peak_gpu_mem_gib": peak_gib,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "losses_finite": all(math.isfinite(x) for x in losses),
    }


def ours_row(
    probe: Any, log: list[dict[str, Any]], warmup: int, dev: Device, flops: FlopModel, ckpt: bool
) -> dict[str, Any]:
    """The ``ours`` row from the probe's clock and batches and the trainer's own log."""
    step_s = [dev.seconds(a, b) for a, b in probe.marks][warmup:]
    counted = [ours_counts(batch) for batch in probe.batches[warmup:]]
    losses = [float(line["loss"]) for line in log if "loss" in line]
    return system_row(
        "ours",
        warmup=warmup,
        wall=probe.wall,
        cpu_s=probe.cpu_s,
        step_s=step_s,
        counts=[c for c, _ in counted],
        lengths=[n for _, lengths in counted for n in lengths],
        flops=flops,
        checkpointing=ckpt,
        peak_gib=probe.peak_gib,
        losses=losses,
        collate_ms_mean=None,  # inside Trainer's loop, not timed apart
        host_ms_per_step_mean=None,
    )


def run_baseline(
    model: Any,
    lora_init: dict[str, Any],
    batches: list[list[Item]],
    collate: Any,
    warmup: int,
    dev: Device,
    config: SFTConfig,
    autocast: Any,
    flops: FlopModel,
) -> dict[str, Any]:
    """alpaca-lora's loop: reset the LoRA weights, then train on `batches` (the first `warmup`
    untimed), one optimiser step per micro-batch, as `Trainer` steps."""
    import torch

    with torch.no_grad():
        for pname, param in model.named_parameters():
            if pname in lora_init:
                param.copy_(lora_init[pname])
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        optimizer = torch.optim.AdamW(
            trainable, lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
        )
    except (RuntimeError, ValueError):  # no fused kernel for this device
        optimizer = torch.optim.AdamW(
            trainable, lr=config.learning_rate, weight_decay=config.weight_decay
        )
    model.train()
    dev.sync()
    dev.reset_peak(empty_cache=True)
    cpu_start = time.process_time()
    marks, losses, counts, collate_s, host_s = [], [], [], [], []
    wall_start = 0.0
    for k, items in enumerate(batches):
        if k == warmup:
            dev.sync()
            wall_start = time.perf_counter()
        host0 = time.perf_counter()
        batch = collate(items)
        collate_s.append(time.perf_counter() - host0)
        counts.append(batch_counts(items, batch))
        start = dev.marker()
        batch = {key: value.to(dev.device, non_blocking=True) for key, value in batch.items()}
        with autocast():
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)  # Trainer's max_grad_norm
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        marks.append((start, dev.marker()))
        losses.append(loss.detach())
        host_s.append(time.perf_counter() - host0)
    dev.sync()
    wall = time.perf_counter() - wall_start
    cpu_s = time.process_time() - cpu_start
    del optimizer
    return system_row(
        "baseline",
        warmup=warmup,
        wall=wall,
        cpu_s=cpu_s,
        step_s=[dev.seconds(a, b) for a, b in marks][warmup:],
        counts=counts[warmup:],
        lengths=[len(e.input_ids) for items in batches[warmup:] for i in items for e in i.examples],
        flops=flops,
        checkpointing=config.gradient_checkpointing,
        peak_gib=dev.peak_gib(),
        losses=[float(x) for x in losses],
        collate_ms_mean=round(1000 * statistics.mean(collate_s[warmup:]), 3),
        host_ms_per_step_mean=round(1000 * statistics.mean(host_s[warmup:]), 3),
    )


def isolation_check(
    model: Any, rows: list[list[Example]], collate: Any, dev: Device, autocast: Any
) -> dict[str, Any]:
    """Logits of an example packed after another vs alone; and as one causal sequence (no mask,
    positions running on), the contamination the packed mask and positions prevent."""
    import torch

    pairs = [(r[0], r[1]) for r in rows if len(r) >= 2]
    if not pairs:
        return {"checked": False}
    first, second = min(pairs, key=lambda p: len(p[0].input_ids) + len(p[1].input_ids))
    n = len(second.input_ids)
    model.eval()
    with torch.no_grad(), autocast():

        def logits(batch: dict[str, Any]) -> Any:
            batch = {k: v.to(dev.device) for k, v in batch.items() if k != "labels"}
            return model(**batch).logits.float()

        alone = logits(collate([{"row": [second]}]))[0, :n]
        packed_batch = collate([{"row": [first, second]}])
        packed = logits(packed_batch)[0, -n:]
        unmasked = logits({"input_ids": packed_batch["input_ids"]})[0, -n:]  # one sequence
    model.train()
    return {
        "checked": True,
        "lengths": [len(first.input_ids), n],
        "max_abs_diff_packed_vs_alone": float((packed - alone).abs().max()),
        "max_abs_diff_as_one_sequence": float((unmasked - alone).abs().max()),
        "logit_abs_max": float(alone.abs().max()),
    }


def peak_tflops(gpu_name: str | None, override: float | None) -> tuple[float | None, str]:
    """The dense bf16 peak of the GPU (or the override) and where it came from."""
    if override:
        return override, "--peak-tflops"
    if gpu_name:
        for key, value in PEAK_TFLOPS:
            if key in gpu_name:
                return value, f"datasheet dense bf16, {key}"
    return None, "unknown (CPU or unlisted GPU): MFU not computed"


# ---------------------------------------------------------------- the run


@dataclass
class Setup:
    """What the measured runs use: the saved random model, the trainer's config, the data."""

    spec: ModelSpec
    dev: Device
    config: SFTConfig
    precision: str
    dtype: Any
    attention: str
    collate_mode: str
    tokenizer: Any
    vocab: int
    records: list[dict[str, Any]]
    data: Any  # sft.TrainData: what the trainer will build from the same config
    baseline_batches: list[list[Item]]
    epoch: dict[str, dict[str, Any]]
    chars: int
    raw_tokens: int
    timings: dict[str, float] = field(default_factory=dict)

    def autocast(self) -> Any:
        """The baseline's forward context: bf16/fp16 autocast as `Trainer`'s, none in fp32."""
        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.dev.device.split(":")[0], dtype=self.dtype)


@dataclass
class Measured:
    """Both systems' rows, the isolation check, the FLOP model and what the trainer reported."""

    ours: dict[str, Any]
    baseline: dict[str, Any]
    isolation: dict[str, Any]
    flops: FlopModel
    checkpointing: str | None
    trainer: dict[str, Any]


def setup(args: argparse.Namespace, workdir: Path) -> Setup:
    """Tokenizer, random model (saved for the trainer), the trainer's config, data and batches."""
    import torch

    from fireact.train import sft

    spec = SIZES[args.spec_name]
    dev = Device(args.device)
    # the recipe as is (its hub model is not loaded): the precision and attention the trainer
    # will pick, to build and save the random model in
    recipe = make_config(args, workdir / "run")
    precision = sft.resolve_precision(recipe)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    attention, collate_mode = sft.attention_mode(recipe)
    timings: dict[str, float] = {}

    base = workdir / "base"
    t0 = time.perf_counter()
    # pad = eos, as `sft.load_tokenizer` does for a tokenizer without one
    tokenizer = train_tokenizer(
        args.vocab_size or spec.vocab, args.corpus_chars, pad_as_eos=True, save_to=base
    )
    timings["tokenizer_train_s"] = time.perf_counter() - t0
    print(f"tokenizer: vocab {len(tokenizer)} in {timings['tokenizer_train_s']:.1f} s", flush=True)
    timings["model_build_s"], model = dev.time(
        lambda: build_model(
            spec, tokenizer, args.device, dtype, seed=args.seed, attention=attention
        )
    )
    vocab = model.config.vocab_size
    timings["model_save_s"], _ = dev.time(functools.partial(model.save_pretrained, str(base)))
    del model
    gc.collect()
    dev.reset_peak(empty_cache=True)
    print(
        f"model {args.spec_name}: built on {args.device} in {timings['model_build_s']:.1f} s, "
        f"saved in {timings['model_save_s']:.1f} s",
        flush=True,
    )

    config = make_config(args, workdir / "run", model=base)
    tokenizer = sft.load_tokenizer(config, str(base))  # as the trainer loads it
    t0 = time.perf_counter()
    records, _ = sft.load_records(config)
    data = sft.load_data(config, tokenizer, records, [])
    timings["data_prep_s"] = time.perf_counter() - t0
    rows = data.train_rows
    ours_all, base_all = ours_items(rows), baseline_items(rows)
    chars = sum(len(record_text(r)) for r in records)
    raw_tokens = sum(len(tokenizer(record_text(r)).input_ids) for r in records)
    print(
        f"data: {len(records)} records -> {data.examples} examples in {len(rows)} packed rows "
        f"({data.fit.truncated} truncated, {data.fit.dropped} dropped) in "
        f"{timings['data_prep_s']:.1f} s",
        flush=True,
    )
    total_steps = args.warmup_steps + args.steps
    base_order = length_grouped_order([len(i.examples[0].input_ids) for i in base_all], args.seed)
    epoch = {
        "ours": epoch_summary(ours_all, random_order(len(ours_all), args.seed), 1),
        "baseline": epoch_summary(base_all, base_order, PAD_MULTIPLE),
    }
    return Setup(
        spec=spec,
        dev=dev,
        config=config,
        precision=precision,
        dtype=dtype,
        attention=attention,
        collate_mode=collate_mode,
        tokenizer=tokenizer,
        vocab=vocab,
        records=records,
        data=data,
        baseline_batches=spread(micro_batches(base_all, base_order), total_steps),
        epoch=epoch,
        chars=chars,
        raw_tokens=raw_tokens,
        timings=timings,
    )


def measure(args: argparse.Namespace, s: Setup) -> Measured:
    """``fireact train`` (ours), the isolation check on its model, then the baseline on it."""
    from accelerate.utils import extract_model_from_parallel

    warmup, dev, config = args.warmup_steps, s.dev, s.config
    total_steps = warmup + args.steps
    print(f"ours: fireact.train.train, {total_steps} steps ...", flush=True)
    probe, summary = run_ours(config, dev, warmup)
    log = train_log(config.output_dir)
    # the trained PEFT model, without the autocast wrapper accelerate put on its forward
    model = extract_model_from_parallel(probe.model, keep_fp32_wrapper=False)
    flops = flop_model(model, s.spec)
    ours = ours_row(probe, log, warmup, dev, flops, config.gradient_checkpointing)
    print(f"  {ours['mean_step_ms']:.1f} ms/step", flush=True)
    trainer = {
        "entry_point": f"{fireact_train.train.__module__}.{fireact_train.train.__qualname__}",
        "callbacks": ["StepProbe (benchmarks.train_bench.step_probe)"],
        "summary": {k: summary.get(k) for k in SUMMARY_KEYS},
        "train_log_lines": len(log),
        "train_log_steps": [line["step"] for line in log if "loss" in line],
        "batches_seen": len(probe.batches),
    }
    lora_init = probe.lora_init
    probe.batches.clear()
    del probe
    gc.collect()
    dev.reset_peak(empty_cache=True)

    collator = PackedCollator(s.tokenizer.pad_token_id, s.collate_mode)
    isolation = isolation_check(model, s.data.train_rows, collator, dev, s.autocast)
    print(f"isolation: {json.dumps(isolation)}", flush=True)

    checkpointing = enable_checkpointing(model) if config.gradient_checkpointing else None
    print(f"baseline: {total_steps} steps ...", flush=True)
    baseline = run_baseline(
        model, lora_init, s.baseline_batches, BaselineCollator(s.tokenizer), warmup, dev,
        config, s.autocast, flops,
    )  # fmt: skip
    print(f"  {baseline['mean_step_ms']:.1f} ms/step", flush=True)
    return Measured(ours, baseline, isolation, flops, checkpointing, trainer)


def report(args: argparse.Namespace, s: Setup, m: Measured) -> dict[str, Any]:
    """The results document: settings, data, FLOPs, rows with MFU/HFU and epoch projections,
    the ratios and the target check."""
    import torch

    config, dev, ours, baseline = s.config, s.dev, m.ours, m.baseline
    data, rows = s.data, s.data.train_rows
    examples = [e for row in rows for e in row]
    gpu_name = torch.cuda.get_device_name() if dev.cuda else None
    peak, peak_source = peak_tflops(gpu_name, args.peak_tflops)
    ckpt = "on" if m.checkpointing else "off"
    ours["what"] = (
        f"fireact train ({m.trainer['entry_point']}): {RECIPE.name} + packing, mask {config.mask}"
        f"{' + learn_stop' if config.learn_stop else ''}, PackedCollator({s.collate_mode}), "
        f"{s.attention}, {s.precision}, gradient checkpointing {ckpt}"
    )
    baseline["what"] = (
        "alpaca-lora: one example per row, every token supervised, group_by_length "
        f"(batch {BASELINE_GROUP_BATCH}), DataCollatorForSeq2Seq(pad_to_multiple_of={PAD_MULTIPLE}), "
        f"2D mask, {s.attention}, {s.precision}, gradient checkpointing {ckpt}"
    )
    for row in (ours, baseline):
        wall = row["wall_s"]
        row["mfu_pct"] = 100 * row["achieved_model_tflops"] / peak if peak else None
        hardware = (row["model_tflop"] + row["recompute_tflop"]) / wall
        row["hfu_pct"] = 100 * hardware / peak if peak else None
        name = row["system"]
        rate = row["padded_tokens_per_s"]
        row["projected_epoch_s"] = s.epoch[name]["padded_tokens"] / rate
        row["steps_per_epoch"] = s.epoch[name]["steps"]
    ratios = {
        key: ours[f"{key}_tokens_per_s"] / baseline[f"{key}_tokens_per_s"]
        for key in ("supervised", "nonpad", "model_turn")
    }
    ratios["epoch_time_baseline_over_ours"] = (
        baseline["projected_epoch_s"] / ours["projected_epoch_s"]
    )
    ratios["step_time_ours_over_baseline"] = ours["mean_step_ms"] / baseline["mean_step_ms"]
    evaluated = dev.cuda and args.model_size == "7b" and not args.quick
    mem = ours["peak_gpu_mem_gib"]
    return {
        "settings": {
            "model_size": args.model_size if not args.quick else "micro (--quick)",
            "model": asdict(s.spec) | {"vocab": s.vocab},
            "weights": "random (LlamaConfig, initialised on the device), saved to the scratch "
            "folder and loaded by the trainer",
            "dtype": s.precision,
            "autocast": s.precision != "fp32",
            "device": args.device,
            "gpu": gpu_name,
            "attn_implementation": s.attention,
            "packing_attention": s.collate_mode,
            "flash_attn_installed": s.attention == "flash_attention_2",
            "gradient_checkpointing": m.checkpointing,
            "lora": config.lora.model_dump(),
            "micro_batch": MICRO_BATCH,
            "gradient_accumulation": 1,
            "cutoff_len": config.cutoff_len,
            "optimizer": "torch AdamW (fused where available), lr "
            f"{config.learning_rate}, weight decay {config.weight_decay}, clip 1.0",
            "steps": args.steps,
            "warmup_steps": args.warmup_steps,
            "recipe": str(RECIPE.relative_to(REPO)),
            "config": json.loads(config.model_dump_json()),
            "ours": f"{m.trainer['entry_point']}(config, callbacks=[StepProbe]): Trainer's loop "
            "with fireact's callbacks; the probe adds CUDA-event markers and a forward pre-hook",
            "loop": "baseline: lean copy of Trainer's step (collate on host, to device, autocast "
            "forward, backward, clip, step) on the trained model, LoRA reset to its initial weights",
            "baseline_group_by_length_batch": BASELINE_GROUP_BATCH,
            "baseline_pad_to_multiple_of": PAD_MULTIPLE,
            "batches": "ours: the trainer's first micro-batches (its random sampler); baseline: "
            "warm-up + timed micro-batches spread evenly over one group_by_length epoch",
            "timing": "CUDA events per step, wall clock over the timed steps with a sync at "
            "each end; no host sync inside the timed steps but the trainer's own (its per-step "
            "log and NaN guard)",
            "seed": args.seed,
            **{k: round(v, 2) for k, v in s.timings.items()},
        },
        "trainer": m.trainer,
        "data": {
            "dataset": DATASET,
            "records": len(s.records),
            "examples": data.examples,
            "truncated": data.fit.truncated,
            "dropped": data.fit.dropped,
            "packed_rows": len(rows),
            "packed_fill_pct": round(100 * data.tokens / (len(rows) * config.cutoff_len), 2),
            "tokens": data.tokens,
            "supervised_tokens": data.supervised,
            "supervised_pct": round(100 * data.supervised / data.tokens, 2),
            "example_tokens": length_stats([len(e.input_ids) for e in examples]),
            "tokenizer": f"byte-level BPE trained here on fireact/resources text, vocab {len(s.tokenizer)}",
            "chars_per_token": round(s.chars / s.raw_tokens, 3),
            "record_tokens_before_cutoff": s.raw_tokens,
            "stats": data.stats.as_dict(),
            "epoch": s.epoch,
        },
        "flops": {
            "n_base_matmul": m.flops.n_base,
            "n_lora": m.flops.n_lora,
            "per_token_linear": m.flops.per_token(),
            "formula": "model = tokens*(4*N_base + 6*N_lora) + 12*h*layers*sum(L(L+1)/2); "
            "recompute (HFU only, with checkpointing) = tokens*(2*N_base + 2*N_lora) "
            "+ 4*h*layers*sum(L(L+1)/2); L = each example's length, padding not counted",
            "peak_tflops": peak,
            "peak_source": peak_source,
        },
        "isolation": m.isolation,
        "rows": [ours, baseline],
        "ratios": ratios,
        "targets": TARGETS,
        "target_check": {
            "evaluated": evaluated,
            "why_not": None if evaluated else "targets are for --model-size 7b on a GPU",
            "x_supervised_tokens_per_s": ratios["supervised"],
            "x_met": ratios["supervised"] >= TARGETS["x_supervised_tokens_per_s"],
            "mfu_pct": ours["mfu_pct"],
            "mfu_met": ours["mfu_pct"] is not None and ours["mfu_pct"] >= TARGETS["mfu_pct"],
            "peak_gpu_mem_gib": mem,
            "mem_met": mem is not None and mem <= TARGETS["peak_gpu_mem_gib"],
        },
        "peak_rss_gib": round(rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Set up, measure, report (what `run_benchmark` calls)."""
    s = setup(args, workdir)
    return report(args, s, measure(args, s))


# ---------------------------------------------------------------- options and output


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    import torch

    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--model-size", choices=["tiny", "7b"], default="7b" if cuda else "tiny")
    p.add_argument("--device", default="cuda" if cuda else "cpu")
    p.add_argument("--steps", type=int, default=50, help="timed optimiser steps per system")
    p.add_argument("--warmup-steps", type=int, default=5, help="untimed steps before them")
    p.add_argument("--gradient-checkpointing", choices=["auto", "on", "off"], default="auto",
                   help="both systems; auto: on for 7b, off for tiny")  # fmt: skip
    p.add_argument("--max-records", type=int, default=None, help="use only the first N records")
    p.add_argument("--vocab-size", type=int, default=None, help="tokenizer vocab (default 32000)")
    p.add_argument("--corpus-chars", type=int, default=20_000_000, help="tokenizer training text")
    p.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's peak")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=None, help="results JSON path")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: micro model, 48 records, 2 + 1 steps")  # fmt: skip
    args = p.parse_args(argv)
    args.spec_name = args.model_size
    if args.quick:
        args.spec_name = "micro"
        args.steps, args.warmup_steps = min(args.steps, 2), min(args.warmup_steps, 1)
        args.max_records = args.max_records or 48
        args.corpus_chars = min(args.corpus_chars, 300_000)
    if args.model_size == "7b" and not args.device.startswith("cuda"):
        p.error("--model-size 7b needs a CUDA device")
    if args.steps < 1 or args.warmup_steps < 0:
        p.error("--steps must be >= 1 and --warmup-steps >= 0")
    args.checkpointing = args.gradient_checkpointing == "on" or (
        args.gradient_checkpointing == "auto" and args.model_size == "7b"
    )
    return args


def make_config(args: argparse.Namespace, output_dir: Path, model: Path | None = None) -> SFTConfig:
    """The 7B LoRA recipe with this benchmark's overrides, through `load_config` (as ``fireact
    train configs/llama2-7b-lora.yaml --key value ...``); `model`: the saved random model."""
    overrides = [
        "--dataset", DATASET,
        "--output_dir", str(output_dir),
        "--packing", "true",
        "--micro_batch_size", str(MICRO_BATCH),
        "--batch_size", str(MICRO_BATCH),  # one optimiser step per micro-batch
        "--cutoff_len", str(CUTOFF),
        "--gradient_checkpointing", "true" if args.checkpointing else "false",
        "--max_steps", str(args.steps + args.warmup_steps),
        "--save_steps", "null",  # no checkpoint inside the timed steps
        "--seed", str(args.seed),
    ]  # fmt: skip
    if model is not None:
        overrides += ["--model", str(model)]
    if args.max_records:
        overrides += ["--max_examples", str(args.max_records)]
    return fireact_train.load_config(RECIPE, overrides)


def length_stats(lengths: list[int]) -> dict[str, Any]:
    """Mean, median, p90, max of token lengths."""
    ordered = sorted(lengths)
    return {
        "n": len(ordered),
        "mean": round(statistics.mean(ordered), 1),
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)],
        "max": ordered[-1],
    }


def tables(results: dict[str, Any]) -> str:
    """The per-system table, the ratios and the epoch projection."""
    header = ["system", "steps", "ms/step", "nonpad/step", "pad %", "sup tok/s", "nonpad tok/s",
              "turn tok/s", "TFLOP/s", "MFU %", "HFU %", "peak GiB", "epoch s"]  # fmt: skip
    keys = ["system", "steps", "mean_step_ms", "nonpad_tokens_per_step", "padding_pct",
            "supervised_tokens_per_s", "nonpad_tokens_per_s", "model_turn_tokens_per_s",
            "achieved_model_tflops", "mfu_pct", "hfu_pct", "peak_gpu_mem_gib",
            "projected_epoch_s"]  # fmt: skip
    out = [format_table([[r[k] for k in keys] for r in results["rows"]], header)]
    r = results["ratios"]
    out.append(
        f"ours / baseline: supervised tok/s {r['supervised']:.2f}x, non-pad tok/s "
        f"{r['nonpad']:.2f}x, model-turn tok/s {r['model_turn']:.2f}x; epoch time "
        f"{r['epoch_time_baseline_over_ours']:.2f}x (baseline / ours: > 1 means ours is faster)"
    )
    d = results["data"]
    out.append(
        f"data: {d['records']} records, {d['examples']} examples ({d['truncated']} truncated), "
        f"mean {d['example_tokens']['mean']} tokens, {d['chars_per_token']} chars/token, "
        f"{d['supervised_pct']}% model-turn tokens; {d['packed_rows']} packed rows "
        f"({d['packed_fill_pct']}% full)"
    )
    iso = results["isolation"]
    if iso.get("checked"):
        out.append(
            f"packed isolation: max |logit diff| {iso['max_abs_diff_packed_vs_alone']:.3g} "
            f"(the row as one causal sequence: {iso['max_abs_diff_as_one_sequence']:.3g})"
        )
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables, write the results file; return the document."""
    args = parse_args(argv)
    require_trainer()
    return run_benchmark(NAME, args, bench, tables)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
