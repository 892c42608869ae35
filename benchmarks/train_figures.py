"""P3's arithmetic: what a configuration's measured steps and one whole epoch hold, and its row.

Owns the FLOP model (`FlopModel`, `flop_model`: ``4 N_base + 6 N_lora`` per token plus causal
attention, recompute apart), the token counts of the batches a trainer fed the model
(`batch_counts`, from its labels and its position ids or padding mask), one epoch as each system
batches it (`epoch_summary`: packed rows in random order, or one example per row in
group_by_length order padded to a multiple of 8), a configuration's row with MFU, peak memory and
the epoch time extrapolated from measured tokens/s (`system_row`), the GPU peaks
(`peak_tflops`) and the printed tables (`tables`). Nothing here imports pydantic.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.common import format_table, latency_stats

IGNORE = -100
# Dense bf16 tensor-core peak (TFLOP/s) by a substring of the GPU's name; first match wins.
PEAK_TFLOPS = [
    ("H100 80GB HBM3", 989.0),  # H100 SXM5
    ("H100 SXM", 989.0),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H200", 989.0),
    ("A100", 312.0),
]
FLOP_FORMULA = (
    "model FLOPs of a step = sum over its examples of L*(4*N_base + 6*N_lora) + "
    "12*h*layers*L*(L+1)/2 (L = the example's length; padding and the masked-out parts of a "
    "packed row not counted). 4*N_base: forward 2*N_base + backward input gradients 2*N_base (the "
    "frozen base has no weight gradients); 6*N_lora: forward, input and weight gradients of the "
    "adapters; 12*h*P per layer: QK^T and PV, forward 4*h*P, backward 8*h*P. N_base = every "
    "matmul weight of the base (lm_head in, the input embedding table out). MFU = model FLOPs / "
    "wall time / peak; recompute (gradient checkpointing: L*(2*N_base + 2*N_lora) + 4*h*layers*P "
    "per checkpointed layer share) is not counted in MFU, only in HFU"
)


@dataclass(frozen=True)
class FlopModel:
    """Parameter counts and the FLOP formula (`FLOP_FORMULA`)."""

    n_base: int  # matmul weights of the base model (lm_head in, input embeddings out)
    n_lora: int  # LoRA adapter parameters
    hidden: int
    layers: int

    def step(self, lengths: Sequence[int], recomputed: float) -> tuple[float, float]:
        """(model FLOPs, recomputed-forward FLOPs) of examples of these lengths; `recomputed`:
        the share of decoder layers checkpointed (0 to 1)."""
        tokens = sum(lengths)
        pairs = sum(n * (n + 1) / 2 for n in lengths)
        attention = self.hidden * self.layers * pairs
        model = tokens * (4 * self.n_base + 6 * self.n_lora) + 12 * attention
        recompute = recomputed * (tokens * (2 * self.n_base + 2 * self.n_lora) + 4 * attention)
        return model, recompute

    def per_token(self) -> float:
        """Linear-layer model FLOPs per token (attention excluded)."""
        return 4 * self.n_base + 6 * self.n_lora


def flop_model(model: Any, hidden: int, layers: int) -> FlopModel:
    """Count the base's matmul weights and the LoRA parameters of a PEFT model."""
    import torch

    n_base = n_lora = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            if "lora_" in name:
                n_lora += module.weight.numel()
            else:
                n_base += module.weight.numel()
    return FlopModel(n_base, n_lora, hidden, layers)


def segments(positions: list[int], labels: list[int]) -> list[int]:
    """Example lengths of one packed row: every example (and the padding after them) restarts
    its positions at 0; a final segment with no label is padding."""
    starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
    lengths = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    last = starts[-2] if len(starts) > 1 else 0
    if len(lengths) > 1 and all(label == IGNORE for label in labels[last:]):
        lengths.pop()  # padding (an example always has a supervised label)
    return lengths


def batch_counts(batch: dict[str, Any]) -> tuple[dict[str, int], list[int]]:
    """Token counts and example lengths of one batch a trainer fed the model: packed rows
    (``position_ids``) or one example per row (a 2D ``attention_mask``: padding is 0)."""
    labels = batch["labels"].cpu()
    mask = batch.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        lengths = [int(n) for n in mask.cpu().sum(dim=1).tolist()]
    else:
        rows = zip(batch["position_ids"].cpu().tolist(), labels.tolist(), strict=True)
        lengths = [n for pos, lab in rows for n in segments(pos, lab)]
    counts = {
        "micro_batches": 1,
        "rows": int(labels.shape[0]),
        "examples": len(lengths),
        "tokens": int(labels.numel()),  # positions run, padding included
        "nonpad": sum(lengths),
        "supervised": int((labels[:, 1:] != IGNORE).sum()),  # what the shifted loss uses
    }
    return counts, lengths


def padded_width(lengths: list[int], multiple: int) -> int:
    """The width a micro-batch of rows of these lengths is padded to."""
    return -(-max(lengths) // multiple) * multiple


def epoch_summary(rows: list[int], order: list[int], micro: int, multiple: int) -> dict[str, Any]:
    """Tokens, padding and micro-batches of one epoch: `rows` the row lengths, in `order`, in
    micro-batches of `micro` (the last may be short, as the Trainer keeps it)."""
    batches = [[rows[i] for i in order[k : k + micro]] for k in range(0, len(order), micro)]
    padded = sum(padded_width(b, multiple) * len(b) for b in batches)
    nonpad = sum(rows)
    return {
        "micro_batches": len(batches),
        "padded_tokens": padded,
        "nonpad_tokens": nonpad,
        "padding_pct": round(100 * (1 - nonpad / padded), 2),
    }


def system_row(
    name: str,
    *,
    marks: list[float],
    wall: float,
    batches: list[dict[str, Any]],
    flops: FlopModel,
    recomputed: float,
    peak_gb: float | None,
    peak: float | None,
    epoch: dict[str, Any],
    losses: list[float],
) -> dict[str, Any]:
    """One configuration's figures from its timed steps (`batches`: what those steps fed)."""
    counted = [batch_counts(b) for b in batches]
    total = {key: sum(c[key] for c, _ in counted) for key in counted[0][0]}
    lengths = [n for _, ls in counted for n in ls]
    model_flops, recompute_flops = flops.step(lengths, recomputed)
    padded_rate = total["tokens"] / wall
    achieved = model_flops / wall / 1e12
    return {
        "system": name,
        "timed_optimizer_steps": len(marks),
        "wall_s": round(wall, 3),
        "step_ms": latency_stats(marks),
        **{f"{key}_total": value for key, value in total.items()},
        "padding_pct": round(100 * (1 - total["nonpad"] / total["tokens"]), 2),
        "nonpad_tokens_per_s": total["nonpad"] / wall,
        "supervised_tokens_per_s": total["supervised"] / wall,
        "padded_tokens_per_s": padded_rate,
        "model_tflop": model_flops / 1e12,
        "recompute_tflop": recompute_flops / 1e12,
        "achieved_model_tflops": achieved,
        "mfu_pct": 100 * achieved / peak if peak else None,
        "hfu_pct": 100 * (model_flops + recompute_flops) / wall / 1e12 / peak if peak else None,
        "peak_gpu_mem_gb": peak_gb,
        "epoch": epoch,
        "epoch_s_extrapolated": epoch["padded_tokens"] / padded_rate,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "losses_finite": all(math.isfinite(x) for x in losses),
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
    """The per-configuration table and the comparison with the baseline."""
    header = ["configuration", "steps", "ms/step", "pad %", "nonpad tok/s", "sup tok/s",
              "TFLOP/s", "MFU %", "peak GB", "epoch s"]  # fmt: skip
    keys = ["system", "timed_optimizer_steps", None, "padding_pct", "nonpad_tokens_per_s",
            "supervised_tokens_per_s", "achieved_model_tflops", "mfu_pct", "peak_gpu_mem_gb",
            "epoch_s_extrapolated"]  # fmt: skip
    rows = [r for r in results["rows"] if "wall_s" in r]
    cells = [[r["step_ms"].get("mean_ms") if k is None else r[k] for k in keys] for r in rows]
    out = [format_table(cells, header)]
    out += [
        f"{r['system']}: {r.get('error') or r.get('skipped')}"
        for r in results["rows"]
        if "wall_s" not in r
    ]
    for name, c in results.get("comparison", {}).items():
        out.append(
            f"{name}: epoch {c['epoch_speedup']:.2f}x faster than the baseline, MFU "
            f"{c['mfu_pct']}, peak {c['peak_gpu_mem_gb']} GB"
        )
    return "\n\n".join(out)
