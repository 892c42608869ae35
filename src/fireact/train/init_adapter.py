"""Continuing a saved LoRA adapter (``init_adapter: PATH`` in the SFT config).

Owns the checks of an adapter folder a run continues (`check_init_adapter`: it holds a LoRA
``adapter_config.json`` whose base model is the run's ``model`` and whose shape is the config's
``lora``) and its loading as a trainable PEFT model (`load_init_adapter`).

"The same base": the adapter's recorded ``base_model_name_or_path`` is the config's ``model``
string, or both are local folders that are the same folder or hold the same ``config.json`` (a
copy, or a moved folder such as a `fireact iterate` loop's). A recorded absolute folder that no
longer exists (moved away) cannot be compared; the load then checks the tensor shapes, and a
mismatch is a one-line error too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fireact.errors import FireactError

if TYPE_CHECKING:
    from fireact.train.config import LoraSettings

ADAPTER_CONFIG = "adapter_config.json"
_NOT_ARCHITECTURE = ("_name_or_path", "transformers_version", "torch_dtype", "dtype")


def read_adapter_config(folder: Path) -> dict[str, Any]:
    """The adapter's ``adapter_config.json``; ValueError (a one-line reason) when absent or bad."""
    path = folder / ADAPTER_CONFIG
    if not path.is_file():
        raise ValueError(f"{folder} holds no {ADAPTER_CONFIG}: give a folder saved by a LoRA run")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read it: {err}") from None
    if not isinstance(data, dict) or data.get("peft_type") != "LORA":
        raise ValueError(f"{path}: not a LoRA adapter (peft_type {data.get('peft_type')!r})")
    return data


def _architecture(folder: Path) -> dict[str, Any] | None:
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {k: v for k, v in data.items() if k not in _NOT_ARCHITECTURE}


def same_base(recorded: str | None, model: str) -> bool:
    """Whether an adapter recorded on base `recorded` fits `model` (see the module docstring)."""
    if recorded is None or recorded == model:
        return True
    old, new = Path(recorded).expanduser(), Path(model).expanduser()
    if old.is_dir() and new.is_dir():
        if old.resolve() == new.resolve():
            return True
        shape = _architecture(old)
        return shape is not None and shape == _architecture(new)
    return new.is_dir() and old.is_absolute() and not old.exists()  # moved: checked at load


def check_init_adapter(folder: Path, model: str, lora: LoraSettings) -> None:
    """`folder` continues on `model` with the `lora` shape; else ValueError naming the field."""
    try:
        data = read_adapter_config(folder)
    except ValueError as err:
        raise ValueError(f"init_adapter: {err}") from None
    recorded = data.get("base_model_name_or_path")
    if not same_base(recorded, model):
        raise ValueError(
            f"init_adapter: {folder} was trained on {recorded!r}, not on model {model!r}: "
            "give that base model as model"
        )
    modules = data.get("target_modules")
    theirs = (data.get("r"), data.get("lora_alpha"), sorted(modules or []))
    ours = (lora.r, lora.alpha, sorted(lora.target_modules))
    if not isinstance(modules, list) or theirs != ours:
        raise ValueError(
            f"init_adapter: {folder} has r {theirs[0]}, alpha {theirs[1]}, target_modules "
            f"{modules}; the config's lora has r {ours[0]}, alpha {ours[1]}, target_modules "
            f"{ours[2]}: set lora to the adapter's shape"
        )


def load_init_adapter(model: Any, folder: Path, dropout: float, source: str) -> Any:
    """`model` with the adapter in `folder` loaded as trainable (the config's dropout); the
    adapter it saves records `source`, the base it was trained on now."""
    from peft import LoraConfig, PeftModel

    config = LoraConfig.from_pretrained(str(folder))
    config.lora_dropout = dropout
    config.base_model_name_or_path = source
    try:
        return PeftModel.from_pretrained(model, str(folder), is_trainable=True, config=config)
    except (ValueError, RuntimeError, KeyError, OSError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = next(
            (line for line in lines if "size mismatch" in line), lines[0] if lines else ""
        )
        raise FireactError(
            f"init_adapter: {folder} does not fit model {source}: {reason}"
        ) from None
