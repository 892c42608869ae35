"""Precision names and the torch dtypes they stand for, once, for training and inference.

Owns the names (`Precision`; `DTYPE_NAMES`: ``bf16``/``fp16``/``fp32`` → torch's
``bfloat16``/``float16``/``float32``), `torch_dtype` (a precision or a torch dtype name → the
dtype) and `resolve_precision` (a training config's ``precision``, ``auto`` resolved for this
machine).
Imports torch only when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fireact.errors import FireactError

if TYPE_CHECKING:
    from fireact.train.config import SFTConfig

Precision = Literal["auto", "bf16", "fp16", "fp32"]  # a training config's `precision`
DTYPE_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def torch_dtype(name: str) -> Any:
    """The torch dtype a precision (``bf16``, ``fp16``, ``fp32``) or a torch dtype name
    (``bfloat16``, ``float32``...) stands for."""
    import torch

    return getattr(torch, DTYPE_NAMES.get(name, name))


def resolve_precision(config: SFTConfig) -> str:
    """bf16 / fp16 / fp32: ``auto`` is bf16 on a GPU that has it, fp16 on other GPUs, else fp32."""
    import torch

    if config.precision != "auto":
        if config.precision == "fp16" and not torch.cuda.is_available():
            raise FireactError("precision fp16 needs a GPU: use bf16 or fp32 on CPU")
        return config.precision
    if not torch.cuda.is_available():
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
