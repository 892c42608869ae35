"""Supervised fine-tuning of causal LMs on FireAct trajectories (LoRA, QLoRA, full).

Public entry points: `load_config(path, overrides) -> SFTConfig` and `train(config) -> dict`.
`config` owns the knobs, `dataset` the records → tokens + loss mask, `packing` the rows and the
collator, `tiny` the random tiny models and their tokenizer, `sft` the run itself. Importing
this package imports neither torch nor transformers, nor pydantic (`SFTConfig` and
`load_config` are loaded on first use), so `fireact.train.tiny`, `dataset` and `packing` import
where only torch, transformers and tokenizers are installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fireact.train.config import SFTConfig, load_config

__all__ = ["SFTConfig", "load_config", "train"]

_FROM_CONFIG = ("SFTConfig", "load_config")  # pydantic: imported on first use


def __getattr__(name: str) -> Any:
    if name in _FROM_CONFIG:
        from fireact.train import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train(config: SFTConfig, *, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Fine-tune as `config` says; see `fireact.train.sft.train` (`callbacks`: extra
    transformers ``TrainerCallback``s)."""
    from fireact.train.sft import train as run

    return run(config, callbacks=callbacks)
