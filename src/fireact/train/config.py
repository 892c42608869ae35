"""The fine-tuning config: `SFTConfig`, read from YAML plus ``--key value`` overrides.

Owns every knob of `fireact train` and its validation. Each problem (an unknown key, a value of
the wrong type, a number that is NaN or infinite or out of its range, a dataset file that does
not exist, a local model path that does not exist or holds no weights) raises `FireactError`
with the dotted key in the message. Relative paths are taken relative to the current working
directory and stored resolved, so the `fireact_config.yaml` written next to the trained model
is the exact config that ran. The config holds no secrets: API keys (wandb, the Hugging Face
hub) are read by those libraries from their own environment variables.

Loss masks (``mask``), for alpaca records (prompt + output) and chat records (messages):

* ``model_turns`` (default): only what the model writes — Thought and Action lines (alpaca), the
  assistant turns (chat). The prompt, the question and every ``Observation: ...`` line, the
  final ``Observation: Episode finished, reward = ...`` included, are masked (label -100).
* ``output``: the whole response (alpaca output; chat: every turn after the question), not the
  prompt.
* ``none``: every token, prompt included — FireAct's alpaca-lora setting (train_on_inputs=True).

``train_on_inputs: true`` is accepted as a synonym of ``mask: none``.

``init_adapter: PATH`` (lora / qlora) continues a saved LoRA adapter instead of starting a new
one: it is loaded as trainable on ``model``, which must be its base model, and ``lora`` must have
its shape (`fireact.train.init_adapter`); the output is again an adapter on that base.

Speed options (`fireact.train.speed`): ``packing_mask`` (``auto``: transformers reads the packed
examples from ``position_ids`` where it can, else an explicit block mask; ``positions`` /
``explicit`` force one), ``gradient_checkpointing_layers`` (checkpoint only the first N decoder
layers; all when unset), ``use_liger_kernel`` (``true`` / ``false`` / ``auto``: on when
liger-kernel is installed and a CUDA GPU is there, the default) and ``torch_compile``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fireact.errors import FireactError
from fireact.files import read_yaml
from fireact.home import packaged
from fireact.overrides import parse_overrides, set_dotted
from fireact.train.init_adapter import check_init_adapter
from fireact.train.precision import Precision


class _Strict(BaseModel):
    """No unknown keys, and no NaN or infinity in any number (a run would train on garbage)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LoraSettings(_Strict):
    """LoRA adapter shape (paper: r 8, alpha 16, dropout 0.05 on q_proj/v_proj)."""

    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1)


class TinyModel(_Strict):
    """A tiny random Llama built from this config, with a BPE tokenizer trained on the dataset."""

    hidden_size: int = Field(64, gt=0)
    layers: int = Field(2, gt=0)
    heads: int = Field(4, gt=0)
    vocab_size: int = Field(600, ge=300)
    seed: int = 0


class TinySource(_Strict):
    """``model: {build_tiny: {...}}``: no download; the model is built under output_dir/base."""

    build_tiny: TinyModel = Field(default_factory=TinyModel)


class SFTConfig(_Strict):
    """Everything one supervised fine-tuning run needs; see the module docstring for `mask`."""

    # model and data
    model: str | TinySource
    tokenizer: str | None = None
    trust_remote_code: bool = False
    dataset: Path
    format: Literal["auto", "alpaca", "chat"] = "auto"
    max_examples: int | None = Field(None, gt=0)
    eval_dataset: Path | None = None
    eval_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    chat_template: Literal["auto", "plain"] = "auto"
    mask: Literal["model_turns", "output", "none"] = "model_turns"
    train_on_inputs: bool = False
    learn_stop: bool = False
    add_eos: bool = True
    cutoff_len: int = Field(512, gt=8)
    overlong: Literal["truncate", "drop"] = "truncate"
    packing: bool = True
    packing_mask: Literal["auto", "positions", "explicit"] = "auto"
    # method
    method: Literal["lora", "qlora", "full"] = "lora"
    lora: LoraSettings = Field(default_factory=LoraSettings)
    init_adapter: Path | None = None  # continue this saved LoRA adapter (lora / qlora)
    qlora_bits: Literal[4, 8] = 4
    precision: Precision = "auto"
    attention: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    gradient_checkpointing: bool = False
    gradient_checkpointing_layers: int | None = Field(None, gt=0)  # the first N; None: all
    use_liger_kernel: bool | Literal["auto"] = "auto"
    torch_compile: bool = False
    cpu_threads: int | None = Field(None, gt=0)  # torch threads on CPU; tiny models: 1 is fastest
    # optimisation
    learning_rate: float = Field(3e-4, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_steps: float = Field(0, ge=0)
    batch_size: int = Field(128, gt=0)
    micro_batch_size: int = Field(4, gt=0)
    epochs: float = Field(3.0, gt=0.0)
    max_steps: int | None = Field(None, gt=0)
    seed: int = 42
    # output
    output_dir: Path
    overwrite: bool = False  # empty an output_dir that holds an earlier run (keeps base/)
    logging_steps: int = Field(10, gt=0)
    eval_steps: int | None = Field(None, gt=0)
    save_steps: int | None = Field(None, gt=0)
    save_total_limit: int | None = Field(None, gt=0)
    resume: bool | Path = False
    merge: bool = False
    report_to: Literal["none", "tensorboard", "wandb"] = "none"

    @field_validator("dataset", "eval_dataset", mode="before")
    @classmethod
    def _packaged(cls, value: Any) -> Any:
        """``fireact:finetune/...`` names a data file shipped inside the package."""
        if isinstance(value, str):
            return packaged(value) or value
        return value

    @field_validator("dataset", "eval_dataset")
    @classmethod
    def _file_exists(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        path = path.expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path

    @field_validator("output_dir", "init_adapter")
    @classmethod
    def _resolve(cls, path: Path | None) -> Path | None:
        return None if path is None else path.expanduser().resolve()

    @field_validator("model", "tokenizer")
    @classmethod
    def _model_source(cls, source: Any, info: ValidationInfo) -> Any:
        """A local folder (the model's must hold weights) or a hub id."""
        if isinstance(source, str):
            from fireact.llm.hf import check_source, check_weights

            try:
                source = check_source(source, "model")
                if info.field_name == "model":
                    check_weights(source)
            except FireactError as err:
                raise ValueError(str(err)) from None
        return source

    @model_validator(mode="after")
    def _consistent(self) -> SFTConfig:
        if self.train_on_inputs:
            self.mask = "none"
        if self.batch_size % self.micro_batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of micro_batch_size {self.micro_batch_size}"
            )
        if self.eval_dataset is not None and self.eval_fraction > 0:
            raise ValueError("give eval_dataset or eval_fraction, not both")
        if self.gradient_checkpointing_layers is not None and not self.gradient_checkpointing:
            raise ValueError("gradient_checkpointing_layers needs gradient_checkpointing: true")
        if self.torch_compile and self.method == "qlora":
            raise ValueError("torch_compile: not with method qlora (bitsandbytes layers)")
        if self.merge and self.method == "full":
            raise ValueError("merge applies to lora/qlora; full fine-tuning saves the whole model")
        if self.init_adapter is not None:
            self._check_init_adapter(self.init_adapter)
        return self

    def _check_init_adapter(self, folder: Path) -> None:
        if self.method == "full":
            raise ValueError(f"init_adapter: {folder} is a LoRA adapter; not with method full")
        if not isinstance(self.model, str):
            raise ValueError(
                f"init_adapter: {folder} needs its base model folder as model, not build_tiny"
            )
        out = self.output_dir
        if out == folder or folder in out.parents or out in folder.parents:
            raise ValueError(f"init_adapter: {folder} overlaps output_dir {out}: train elsewhere")
        check_init_adapter(folder, self.model, self.lora)

    @property
    def gradient_accumulation(self) -> int:
        """Micro-batches per optimiser step on one process (divide by the world size for more)."""
        return self.batch_size // self.micro_batch_size

    def to_yaml(self) -> str:
        """The config as YAML (resolved paths), as written to `fireact_config.yaml`."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> SFTConfig:
    """Read a YAML config (or none), apply ``--key value`` overrides, validate.

    Overrides use dotted keys for nested fields (``--lora.r 16``), ``--key=value`` works too,
    and values are parsed as YAML (``--packing false``, ``--lora.target_modules [q_proj,k_proj]``).
    """
    data: dict[str, Any] = {}
    if path is not None:
        loaded = read_yaml(Path(path))
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise FireactError(
                f"{path}: expected a mapping of config keys, got {type(loaded).__name__}"
            )
        data = loaded
    for key, value in parse_overrides(overrides or []):
        set_dotted(data, key, value)
    return validate(data, source=str(path) if path else "config")


def validate(data: dict[str, Any], source: str = "config") -> SFTConfig:
    """An `SFTConfig` from a mapping; the first problems become one FireactError naming keys."""
    try:
        return SFTConfig.model_validate(data)
    except ValidationError as err:
        errors = [e for e in err.errors() if _in_chosen_branch(e, data)]
        problems = list(dict.fromkeys(_describe(e) for e in errors))[:3]
        raise FireactError(f"{source}: " + "; ".join(problems)) from None


_BRANCHES = ("str", "TinySource")  # how pydantic names the two kinds of `model` in an error


def _in_chosen_branch(error: Any, data: dict[str, Any]) -> bool:
    """For `model` (a name or ``{build_tiny: ...}``), keep only errors of the kind given."""
    loc = error["loc"]
    if len(loc) < 2 or loc[0] != "model" or loc[1] not in _BRANCHES:
        return True
    given = data.get("model")
    if isinstance(given, dict):
        return loc[1] == "TinySource"
    return loc[1] == "str"


def _describe(error: Any) -> str:
    loc = [str(p) for p in error["loc"] if str(p) not in _BRANCHES and "function-" not in str(p)]
    key = ".".join(loc) or "config"
    if error["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    if error["type"] == "missing":
        return f"missing required key {key!r}"
    message = error["msg"].removeprefix("Value error, ")
    if key == "model" and error["type"] == "string_type":
        message = "give a hub id, a local folder, or {build_tiny: {...}}"
    if key == "config":  # a rule across keys: its message names them
        return message
    value = error.get("input")
    shown = "" if isinstance(value, dict) or error["type"] == "value_error" else f" (got {value!r})"
    return f"{key}: {message}{shown}"
