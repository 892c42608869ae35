"""P3's configurations: what ``fireact train`` is told for ``ours`` and each ``ours-*`` variant.

Owns the recipe and data set the benchmark trains on (`RECIPE`, `DATASET`), ours' speed settings
by model size (`SPEED`: what the recipe comments recommend, measured here), the one-setting
variants that choose those defaults by measurement (`VARIANTS`), the configurations run by
default (`DEFAULT_CONFIGS`) and `overrides`, the ``--key value`` list `load_config` reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common import REPO
from benchmarks.models import SIZES

RECIPE = REPO / "configs" / "llama2-7b-lora-multitask-multimethod.yaml"
DATASET = "fireact:finetune/alpaca_format/multitask_multimethod.json"


def ckpt(layers: str | None) -> list[str]:
    """Overrides: gradient checkpointing of the first `layers` decoder layers ("null": all;
    None: off). ``HALF`` / ``QUARTER`` stand for that share of the model's layers."""
    on = "false" if layers is None else "true"
    return ["--gradient_checkpointing", on, "--gradient_checkpointing_layers", layers or "null"]


# ours' speed settings by model size (the recipe comments state them; this run measures them)
SPEED = {
    "7b": [*ckpt("16"), "--use_liger_kernel", "auto"],
    "tiny": [],
    "micro": [],
}
VARIANTS: dict[str, list[str]] = {
    "ours-explicit-mask": ["--packing_mask", "explicit"],
    "ours-ckpt-all": ckpt("null"),
    "ours-ckpt-half": ckpt("HALF"),
    "ours-ckpt-quarter": ckpt("QUARTER"),
    "ours-no-ckpt": ckpt(None),
    "ours-liger": ["--use_liger_kernel", "true"],
    "ours-no-liger": ["--use_liger_kernel", "false"],
    "ours-compile": ["--torch_compile", "true"],
}
DEFAULT_CONFIGS = {
    "7b": "ours,baseline,ours-ckpt-all,ours-ckpt-quarter,ours-no-ckpt,ours-no-liger",
    "tiny": "ours,baseline,ours-explicit-mask,ours-ckpt-half",
    "micro": "ours,baseline",
}


def overrides(
    args: argparse.Namespace, name: str, output_dir: Path, model: Path | None
) -> list[str]:
    """``fireact train RECIPE --key value ...`` for configuration `name` (ours or ours-*);
    `model`: the saved random model (None: the recipe's hub id, not loaded)."""
    layers = SIZES[args.spec_name].layers
    extra = [
        {"HALF": str(max(1, layers // 2)), "QUARTER": str(max(1, layers // 4))}.get(v, v)
        for v in VARIANTS.get(name, [])
    ]
    return [
        *(["--model", str(model)] if model else []),
        "--dataset", DATASET,
        "--output_dir", str(output_dir),
        "--batch_size", str(args.batch_size),
        "--max_steps", str(args.warmup_steps + args.steps) if args.steps else "null",
        "--epochs", "1",
        "--save_steps", "null",  # no checkpoint inside the timed steps
        "--seed", str(args.seed),
        "--packing", "true",
        *(["--max_examples", str(args.max_records)] if args.max_records else []),
        *SPEED[args.spec_name],
        *extra,
    ]  # fmt: skip
