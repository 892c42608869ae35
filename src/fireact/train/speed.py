"""The training speed options of `SFTConfig`: how packed examples are kept apart, partial
gradient checkpointing, Liger kernels and ``torch.compile``.

Owns `attention_mode` (the attention kernel and the collator mode packing uses with it),
`liger_enabled` (``use_liger_kernel`` resolved: ``auto`` is on only where liger-kernel imports
and a CUDA GPU is there; ``true`` where it cannot work is a `FireactError`), `enable_checkpointing`
(checkpoint the first N decoder layers, the rest keep their activations) and
`checkpointed_layers` (which ones are), and `collate_width` (the fixed width ``torch_compile``
pads to). Transformers applies Liger itself (``TrainingArguments(use_liger_kernel=...)``).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from fireact.errors import FireactError
from fireact.train.config import SFTConfig

LIGER_HINT = "pip install 'fireact[liger]' (liger-kernel, which needs triton and a CUDA GPU)"


def packed_positions_supported() -> bool:
    """Whether this transformers finds packed examples from ``position_ids`` (sdpa / eager)."""
    try:
        from transformers import masking_utils
    except ImportError:
        return False
    return hasattr(masking_utils, "find_packed_sequence_indices")


def attention_mode(config: SFTConfig) -> tuple[str, str]:
    """(attn_implementation, collator mode) for the config.

    ``attention: auto`` is flash-attn where installed on CUDA, else sdpa. With packing:
    flash-attn reads the examples from one flattened row (``varlen``); sdpa and eager get no mask
    and let transformers find the examples from ``position_ids`` (``positions``) unless
    ``packing_mask: explicit``, remote code, or an older transformers asks for the explicit
    block mask (``mask4d``; additive for eager).
    """
    import torch

    impl = config.attention
    if impl == "auto":
        has_flash = importlib.util.find_spec("flash_attn") is not None
        impl = "flash_attention_2" if has_flash and torch.cuda.is_available() else "sdpa"
    if not config.packing:
        return impl, "padded"
    if impl == "flash_attention_2":
        return impl, "varlen"
    explicit = "mask4d_additive" if impl == "eager" else "mask4d"
    if config.packing_mask == "explicit":
        return impl, explicit
    supported = packed_positions_supported() and not config.trust_remote_code
    if config.packing_mask == "positions" and not supported:
        raise FireactError(
            "packing_mask positions: this transformers (or a trust_remote_code model) does not "
            "read packed examples from position_ids; use packing_mask explicit"
        )
    return impl, "positions" if supported else explicit


def collate_width(config: SFTConfig, mode: str) -> int | None:
    """The fixed batch width under ``torch_compile`` (static shapes, no recompiles), else None."""
    if not config.torch_compile:
        return None
    return config.cutoff_len * (config.micro_batch_size if mode == "varlen" else 1)


def liger_enabled(config: SFTConfig) -> bool:
    """``use_liger_kernel`` resolved; ``true`` without liger-kernel or CUDA is a FireactError."""
    import torch

    if config.use_liger_kernel is False:
        return False
    problem = None
    if not torch.cuda.is_available():
        problem = "needs a CUDA GPU (none here)"
    elif importlib.util.find_spec("liger_kernel") is None:
        problem = f"liger-kernel is not installed: {LIGER_HINT}"
    else:
        try:
            importlib.import_module("liger_kernel.transformers")
        except Exception as err:  # a liger-kernel that does not fit this transformers / triton
            problem = f"liger-kernel does not import: {str(err).splitlines()[0]}"
    if problem is None:
        return True
    if config.use_liger_kernel is True:
        raise FireactError(f"use_liger_kernel: {problem}; set use_liger_kernel false or auto")
    return False


def decoder_layers(model: Any) -> list[Any]:
    """The model's checkpointable decoder layers, in order."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def enable_checkpointing(model: Any, layers: int | None) -> int:
    """Gradient checkpointing (``use_reentrant=False``) of the first `layers` decoder layers
    (all when None); returns how many are checkpointed. Works on a PEFT model too."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers 5.2x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:  # older 5.x (5.17 on the GPU machine)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    blocks = decoder_layers(model)
    if layers is not None and layers > len(blocks):
        raise FireactError(
            f"gradient_checkpointing_layers: {layers} is more than the model's {len(blocks)} "
            "decoder layers"
        )
    for i, block in enumerate(blocks):
        block.gradient_checkpointing = layers is None or i < layers
    return len(checkpointed_layers(model))


def checkpointed_layers(model: Any) -> list[int]:
    """Indices of the decoder layers that recompute their forward in the backward pass."""
    return [i for i, block in enumerate(decoder_layers(model)) if block.gradient_checkpointing]
