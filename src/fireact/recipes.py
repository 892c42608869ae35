"""Run recipes: a YAML file of `fireact run` settings, plus ``--key value`` overrides.

Owns reading a run recipe (`load_run_recipe`), printing what it resolves to for a dry run
(`describe`), and finding the recipes shipped with the package (`packaged_run_recipes`). The
settings themselves, their defaults and their validation belong to
`fireact.agent.runner.RunOptions`; a recipe only names them.

A recipe is a mapping whose keys are `RunOptions` field names (``task: hotpotqa``,
``model: openai:gpt-4``, ``out: runs/...``). Its path may be a file, ``fireact:configs/run/NAME.yaml``
for a shipped recipe, or ``configs/run/NAME.yaml`` when no such file is in the current folder
(the shipped one is used). Path settings (``data``, ``prompt``, ``index``) may name shipped
files the same way (``fireact:hotpotqa/dev.json``); other relative paths stay relative to the
current folder, as on the command line.

Overrides are the arguments after the recipe (``--temperature 0.5 --end 50``), parsed by
`fireact.overrides.parse_overrides` (shared with `fireact train`): values are YAML, so
``--temperature 0.5`` is the float 0.5 and ``--end null`` is "unset". The file and the
overrides are read with YAML 1.2 booleans (only true/false), so ``noise: off`` stays the word
``off``; the boolean settings (``random``, ``resume``, ``overwrite``, ``progress``) may also be
given alone (``--resume``). A setting given as null takes its default; ``null`` for
``temperature`` / ``max_tokens`` means the setting's default (FireAct's 0.7 / 1000 for prompted
API models, greedy otherwise). An unknown key, in the file or an override, is a one-line
`FireactError` naming the file and the key.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from fireact.agent.runner import RunOptions
from fireact.errors import FireactError
from fireact.files import read_yaml
from fireact.overrides import WordsLoader, parse_overrides
from fireact.resources import resource

PACKAGED_PREFIX = "fireact:"
RUN_RECIPES = ("configs", "run")  # where the shipped run recipes live, under the package data
PLACEHOLDER = "YOUR_ORG"  # in the fine-tuned GPT-3.5 recipes' model names


def packaged_run_recipes() -> list[Path]:
    """The run recipes shipped with fireact, sorted by name."""
    return sorted(resource(*RUN_RECIPES).glob("*.yaml"))


def recipe_path(path: str | Path) -> Path:
    """The file a recipe argument names: a path, ``fireact:configs/...``, or a shipped one."""
    text = str(path)
    if text.startswith(PACKAGED_PREFIX):
        return resource(*text.removeprefix(PACKAGED_PREFIX).split("/"))
    local = Path(text).expanduser()
    parts = Path(text).parts
    if not local.exists() and parts[:1] == ("configs",):
        shipped = resource(*parts)
        if shipped.is_file():
            return shipped
    return local


def load_run_recipe(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The recipe's settings with `overrides` applied, for ``RunOptions(**values)``.

    Only the settings the recipe or an override gives are in the result (the rest take
    `RunOptions`' defaults). Raises `FireactError` for a missing or malformed file, a file that
    is not a mapping, an unknown key or an override that cannot be parsed.
    """
    file = recipe_path(path)
    loaded = _read(file)
    fields = RunOptions.model_fields
    values: dict[str, Any] = {}
    for key, value in loaded.items():
        if key not in fields:
            raise FireactError(f"{file}: unknown key {key!r}{_suggest(str(key))}")
        values[key] = value
    flags = [name for name, info in fields.items() if info.annotation in (bool, bool | None)]
    for key, value in parse_overrides(overrides or [], loader=WordsLoader, flags=flags):
        if key not in fields:
            raise FireactError(f"{file}: override --{key}: unknown run option{_suggest(key)}")
        values[key] = value
    return {key: _packaged(key, value) for key, value in values.items() if _kept(key, value)}


def _read(file: Path) -> dict[str, Any]:
    loaded = read_yaml(file, loader=WordsLoader)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise FireactError(
            f"{file}: expected a mapping of run settings, got {type(loaded).__name__}"
        )
    return loaded


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, list(RunOptions.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else "; see `fireact run --help`"


def _takes_none(key: str) -> bool:
    annotation = RunOptions.model_fields[key].annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return type(None) in typing.get_args(annotation)
    return annotation is type(None)


def _kept(key: str, value: Any) -> bool:
    """A null for a setting that cannot be None means its default: leave it out."""
    return value is not None or _takes_none(key)


def _packaged(key: str, value: Any) -> Any:
    """``fireact:...`` in a path setting names a file shipped with the package."""
    annotation = RunOptions.model_fields[key].annotation
    is_path = Path in (annotation, *typing.get_args(annotation))
    if is_path and isinstance(value, str) and value.startswith(PACKAGED_PREFIX):
        return str(resource(*value.removeprefix(PACKAGED_PREFIX).split("/")))
    return value


def describe(values: dict[str, Any]) -> str:
    """The settings a run of `values` would use, as YAML: what ``--dry-run`` prints.

    Every `RunOptions` field in order, resolved (temperature and max_tokens filled in); those
    that the recipe and overrides left unset end in ``# default``. Notes (``# note: ...``) flag
    a placeholder model name or an adapter folder that is not there yet. The text loads back as
    a recipe with the same settings. An invalid combination raises `FireactError`.
    """
    options = RunOptions(**values)
    given = {key for key, value in values.items() if value is not None}
    lines = ["# fireact run: resolved settings (# default: not set by the recipe or an override)"]
    for name in RunOptions.model_fields:
        value = getattr(options, name)
        if isinstance(value, Path):
            value = str(value)
        dumped = yaml.safe_dump({name: value}, sort_keys=False, width=10**6, allow_unicode=True)
        lines.append(dumped.rstrip("\n") + ("" if name in given else "  # default"))
    lines.extend(f"# note: {note}" for note in notes(options))
    return "\n".join(lines) + "\n"


def notes(options: RunOptions) -> list[str]:
    """What to fill in before the run can work: a placeholder model, a missing adapter."""
    found = []
    kind, _, rest = options.model.partition(":")
    if PLACEHOLDER in options.model:
        found.append(
            f"model {options.model} is a placeholder: put the name of your fine-tuned model"
            " (fireact openai-ft run prints it), e.g. --model openai:ft:gpt-3.5-turbo-0125:..."
        )
    if kind == "hf":
        base, _, adapter = rest.partition(":")
        for what, path in (("model", base), ("adapter", adapter)):
            if path and path.startswith(("runs/", "./", "/", "~")) and not _exists(path):
                found.append(
                    f"{what} {path} does not exist yet: train it first (see the recipe's comment)"
                )
    return found


def _exists(path: str) -> bool:
    return Path(path).expanduser().exists()
