"""Supervised fine-tuning of causal LMs on FireAct trajectories (LoRA, QLoRA, full).

Public entry points: `load_config(path, overrides) -> SFTConfig` and `train(config) -> dict`.
`config` owns the knobs, `dataset` the records → tokens + loss mask, `packing` the rows and the
collator, `sft` the run itself. Importing this package does not import torch or transformers.
"""

from __future__ import annotations

from typing import Any

from fireact.train.config import SFTConfig, load_config

__all__ = ["SFTConfig", "load_config", "train"]


def train(config: SFTConfig) -> dict[str, Any]:
    """Fine-tune as `config` says; see `fireact.train.sft.train`."""
    from fireact.train.sft import train as run

    return run(config)
