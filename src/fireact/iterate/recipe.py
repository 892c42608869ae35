"""The expert-iteration recipe (`fireact iterate RECIPE.yaml`): its fields, checks and resume rule.

Owns `IterateRecipe` (a strict pydantic model: an unknown key, a bad value or a bad combination is
one `FireactError` naming the file and the dotted key), `load_recipe` (YAML → recipe, names in
``configs/iterate/`` found by name), the training config of a round's stage (`train_config`:
the recipe's ``train.config`` YAML plus its ``overrides``) and the resume rule
(`check_unchanged`: a rerun in the same folder must use the same recipe, except ``rounds``,
which may grow to add rounds).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fireact.agent import RunOptions
from fireact.errors import FireactError
from fireact.files import read_yaml
from fireact.home import packaged
from fireact.overrides import set_dotted
from fireact.resources import resource

# RunOptions fields each stage sets itself; a recipe's `run:` section may not set them.
STAGE_FIELDS = (
    "task", "split", "start", "end", "model", "out", "resume", "overwrite", "seed",
    "temperature", "format", "progress", "keep",
)  # fmt: skip
GROWABLE = ("rounds",)  # keys a rerun may change (more rounds continue a finished loop)
RECIPE_FILE = "recipe.json"  # the recipe a loop folder was started with


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Questions(_Strict):
    """A question range of the task: ``split`` and ``[start:end)`` (the runner's selection)."""

    split: str | None = None
    start: int = Field(0, ge=0)
    end: int = Field(ge=1)

    @model_validator(mode="after")
    def _range(self) -> Questions:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be larger than start {self.start}")
        return self


class Sample(Questions):
    """Round k's self-play: the current model answers each question `k` times, sampling."""

    k: int = Field(2, ge=1, le=100)
    temperature: float = Field(1.0, gt=0.0)


class Teacher(_Strict):
    """Teacher data: the first `examples` records of a fine-tuning file (``fireact:`` names a
    shipped one); round 0 trains on them, and `mix` adds them to every later round's data."""

    data: str
    examples: int | None = Field(None, ge=1)
    mix: bool = True

    def path(self) -> Path:
        return packaged(self.data) or Path(self.data).expanduser().resolve()


class Train(_Strict):
    """Training of each round: a training recipe (a name in ``configs/`` or a path) with
    `overrides` (dotted keys), started from the base model or from the previous round's model."""

    config: str = "tiny.yaml"
    init: Literal["previous", "base"] = "previous"
    overrides: dict[str, Any] = Field(default_factory=dict)

    def path(self) -> Path:
        local = Path(self.config).expanduser()
        if local.is_file():
            return local.resolve()
        return resource("configs", self.config)


class IterateRecipe(_Strict):
    """Everything `fireact iterate` needs; see docs/iterate.md."""

    task: str
    rounds: int = Field(2, ge=1, le=100)
    seed: int = 0
    format: Literal["alpaca", "chat"] = "alpaca"
    start_model: str | None = None
    teacher: Teacher | None = None
    sample: Sample
    eval: Questions
    train: Train = Field(default_factory=Train)
    run: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> IterateRecipe:
        if self.start_model is None and self.teacher is None:
            raise ValueError(
                "give start_model (round 0 evaluates it) or teacher (round 0 trains on it)"
            )
        same_split = (self.sample.split or "") == (self.eval.split or "")
        if same_split and self.sample.start < self.eval.end and self.eval.start < self.sample.end:
            raise ValueError(
                f"eval [{self.eval.start}:{self.eval.end}) overlaps sample "
                f"[{self.sample.start}:{self.sample.end}) on one split: hold the eval questions out"
            )
        return self


def load_recipe(path: str | Path) -> IterateRecipe:
    """Read and check a recipe: a YAML file, or a name in ``configs/iterate/``."""
    path = recipe_path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise FireactError(f"{path}: expected a mapping of recipe keys, got {type(data).__name__}")
    return validate_recipe(data, str(path))


def recipe_path(path: str | Path) -> Path:
    local = Path(path).expanduser()
    if local.is_file():
        return local
    shipped = resource("configs", "iterate", str(path))
    if shipped.is_file():
        return shipped
    raise FireactError(f"{path}: no such recipe file (nor a shipped one in configs/iterate/)")


def validate_recipe(data: dict[str, Any], source: str) -> IterateRecipe:
    """An `IterateRecipe` from a mapping, its teacher file, training config and run options
    checked too; every problem is one line naming the key."""
    try:
        recipe = IterateRecipe.model_validate(data)
    except ValidationError as err:
        raise FireactError(f"{source}: {_describe(err)}") from None
    _check_parts(recipe, source)
    return recipe


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "recipe"
    if first["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    if first["type"] == "missing":
        return f"missing required key {key!r}"
    message = first["msg"].removeprefix("Value error, ")
    if not first["loc"]:
        return message
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    return f"{key}: {message}{shown}"


def _check_parts(recipe: IterateRecipe, source: str) -> None:
    for name in recipe.run:
        if name in STAGE_FIELDS:
            raise FireactError(f"{source}: run.{name}: set by the loop's stages, not in run:")
    try:  # the run options of a stage, checked before anything runs
        stage_options(recipe, recipe.sample, "hf:model", Path("out"), seed=recipe.seed)
    except FireactError as err:
        raise FireactError(f"{source}: run: {err}") from None
    if recipe.teacher is not None and not recipe.teacher.path().is_file():
        raise FireactError(f"{source}: teacher.data: file not found: {recipe.teacher.path()}")
    if not recipe.train.path().is_file():
        raise FireactError(f"{source}: train.config: no such training recipe {recipe.train.config}")
    from fireact.train.config import validate

    data = train_data(recipe)  # checked with stand-ins for the paths each round sets
    data.update(dataset=source, output_dir="iterate-check")
    validate(data, source=f"{source}: train ({recipe.train.config} + overrides)")


def stage_options(
    recipe: IterateRecipe, questions: Questions, model: str, out: Path, **more: Any
) -> RunOptions:
    """The `RunOptions` of an agent stage: the recipe's task, format and ``run:`` settings on a
    question range, no model-call cache (every stage's model is a new one), no progress bar."""
    values: dict[str, Any] = {"llm_cache": "none", **recipe.run}
    values.update(
        task=recipe.task, split=questions.split, start=questions.start, end=questions.end,
        model=model, format=recipe.format, out=out, progress=False, **more,
    )  # fmt: skip
    return RunOptions(**values)


def train_data(recipe: IterateRecipe) -> dict[str, Any]:
    """The training config mapping: the YAML of ``train.config`` with ``train.overrides``."""
    loaded = read_yaml(recipe.train.path()) or {}
    if not isinstance(loaded, dict):
        raise FireactError(f"{recipe.train.path()}: expected a mapping of training config keys")
    for key, value in recipe.train.overrides.items():
        set_dotted(loaded, key, value)
    return loaded


def flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys → values of a nested mapping (lists and scalars are leaves)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def check_unchanged(folder: Path, recipe: IterateRecipe) -> None:
    """A rerun in `folder` continues the same loop: a changed key (other than `GROWABLE`) is an
    error naming it."""
    saved_path = folder / RECIPE_FILE
    try:
        saved = flat(json.loads(saved_path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise FireactError(f"{saved_path}: cannot read the saved recipe: {err}") from None
    new = flat(recipe.model_dump(mode="json"))
    for key in sorted(set(saved) | set(new)):
        if key in GROWABLE or saved.get(key) == new.get(key):
            continue
        raise FireactError(
            f"recipe key {key!r} changed since {folder} was started ({saved.get(key)!r} -> "
            f"{new.get(key)!r}): rerun with the same recipe to resume, or use a new --out"
        )
