"""The `fireact rl` recipe: every key validated, an unknown or bad one named in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fireact.errors import FireactError
from fireact.home import resource


class WarmStart(BaseModel):
    """SFT before RL (`fireact.rl.warm`): a scripted teacher's solved episodes, fine-tuned on."""

    model_config = ConfigDict(extra="forbid")

    split: str = Field("train", description="Split of the teacher's questions.")
    start: int = Field(0, ge=0, description="First teacher question (after the task's shuffle).")
    end: int = Field(64, ge=1, description="End of the teacher's questions.")
    teacher: Path | None = Field(None, description="scripted: file (default: the task's own).")
    sft: Path = Field(
        resource("configs", "rl", "tiny-arith-sft.yaml"),
        description="SFT recipe (relative: from the rl recipe's folder).",
    )
    sft_overrides: dict[str, Any] = Field(default_factory=dict, description="--key value pairs.")


class RLConfig(BaseModel):
    """One GRPO run: environment, policy, TRL's knobs, output."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field("arith", description="The environment (a registered task).")
    split: str = Field("train", description="Split whose questions are the prompts.")
    tool: str = Field("calculate", description="The episodes' tool (a registered tool name).")
    start: int = Field(0, ge=0, description="First question of the split.")
    end: int | None = Field(64, description="End of the question range (None: all).")
    model: str = Field("tiny", description="'tiny' (a random Llama built here) or a model folder.")
    tiny_layers: int = Field(2, ge=1)
    tiny_hidden: int = Field(64, ge=8)
    lora: bool = Field(False, description="Train a LoRA adapter instead of every weight.")
    lora_r: int = Field(8, ge=1)
    num_generations: int = Field(4, ge=2, description="Group size: rollouts per question.")
    prompts_per_step: int = Field(2, ge=1, description="Questions per optimisation step.")
    beta: float = Field(0.0, ge=0, description="KL coefficient (TRL's beta).")
    learning_rate: float = Field(1e-4, gt=0)
    max_steps: int = Field(20, ge=1, description="Optimisation steps.")
    max_episode_steps: int = Field(4, ge=1, description="ReAct steps per episode.")
    max_tokens: int = Field(24, ge=1, description="Tokens per model turn.")
    temperature: float = Field(1.0, gt=0)
    format_penalty: float = Field(
        0.0, ge=0, description="Subtracted when an episode does not finish."
    )
    warm_start: WarmStart | None = Field(None, description="SFT first; its model is the policy.")
    format: Literal["fewshot", "alpaca"] | None = Field(
        None, description="Prompt format (default: alpaca after a warm start, else fewshot)."
    )
    seed: int = 0
    output_dir: Path = Path("runs/rl")

    @model_validator(mode="after")
    def _one_model(self) -> RLConfig:
        if self.warm_start is not None and self.model != "tiny":
            raise ValueError(
                "key 'model': a warm start trains the SFT recipe's model; leave it out"
            )
        return self

    @property
    def prompt_format(self) -> str:
        """The episodes' prompt format."""
        return self.format or ("alpaca" if self.warm_start is not None else "fewshot")


def load_rl_config(path: Path | None, overrides: dict[str, Any] | None = None) -> RLConfig:
    """The recipe at `path` (YAML mapping) with `overrides` on top; errors name file and key."""
    data: dict[str, Any] = {}
    where = str(path) if path is not None else "rl options"
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            raise FireactError(f"{path}: cannot read the recipe ({err.strerror})") from err
        except yaml.YAMLError as err:
            raise FireactError(f"{path}: not valid YAML ({err})") from err
        if not isinstance(loaded, dict):
            raise FireactError(f"{path}: expected a mapping of recipe keys")
        data = loaded
    data.update(overrides or {})
    warm = data.get("warm_start")
    if path is not None and isinstance(warm, dict):  # its files: relative to the recipe
        for key in ("sft", "teacher"):
            if isinstance(warm.get(key), str) and not Path(warm[key]).is_absolute():
                warm[key] = str(Path(path).parent / warm[key])
    try:
        return RLConfig(**data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        if not key:  # a rule across keys: its message names them
            raise FireactError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from err
        raise FireactError(f"{where}: key '{key}': {first['msg']}") from err
