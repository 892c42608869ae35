"""Where the `hf` backend's model comes from: path checks, the device and 4-bit quantization.

Owns the checks every loader of a local model shares (`check_source`: a folder or a hub id;
`check_weights`: a folder holds weights, with the way out of a killed training run), the default
device (`pick_device`) and the 4-bit `BitsAndBytesConfig` (`quantization_config`, CUDA only).
`fireact.llm.hf` re-exports them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fireact.errors import FireactError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(path: str) -> bool:
    """Whether `path` names a Hugging Face hub repo (``org/name``), not a folder that exists."""
    return not Path(path).expanduser().exists() and bool(_HUB_ID.match(path))


def check_source(path: str, what: str) -> str:
    """A local directory, or a Hugging Face hub id; else a FireactError naming `path`."""
    if Path(path).expanduser().exists():
        return str(Path(path).expanduser())
    if is_hub_id(path):
        return path
    raise FireactError(
        f"{what} path {path!r} does not exist: give a directory saved with save_pretrained"
    )


WEIGHT_FILES = ("*.safetensors", "*.bin")


def check_weights(path: str) -> None:
    """A local model (or adapter) folder must hold weights; a hub id is not checked here.

    The output folder of a training run that was killed (or stopped on a NaN loss) holds its
    config and checkpoints but no final model: say so, and where to go from there.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir() or any(next(folder.glob(p), None) for p in WEIGHT_FILES):
        return
    checkpoints = sorted(
        (int(p.name.removeprefix("checkpoint-")), p)
        for p in folder.glob("checkpoint-*")
        if p.name.removeprefix("checkpoint-").isdigit() and (p / "trainer_state.json").is_file()
    )  # complete ones: the trainer state is written last
    if not checkpoints and not (folder / "fireact_config.yaml").is_file():
        raise FireactError(
            f"{folder} has no model weights (*.safetensors / *.bin): give a folder saved with"
            " save_pretrained"
        )
    latest = f" (the latest here: {checkpoints[-1][1]})" if checkpoints else ""
    raise FireactError(
        f"{folder} has no model weights (*.safetensors / *.bin): a training run that was killed"
        " leaves no final model; resume it with `fireact train CONFIG --resume true` or point"
        f" to a checkpoint-N folder{latest}"
    )


def pick_device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def quantization_config(load_in_4bit: bool, device: str) -> Any | None:
    """A 4-bit BitsAndBytesConfig, only on CUDA with bitsandbytes installed."""
    if not load_in_4bit:
        return None
    if not device.startswith("cuda"):
        raise FireactError(
            "load_in_4bit needs a CUDA GPU: drop it (--hf-load-in-4bit) on this machine"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise FireactError("load_in_4bit needs bitsandbytes: pip install bitsandbytes") from None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)
