"""`fireact run` / `fireact generate`: flags generated from `RunOptions`, then one library call.

Owns `agent_command(generate)` and the flags: one per `RunOptions` field (but
`fireact.agent.options.RECIPE_ONLY`), named after the field (``max_steps`` → ``--max-steps``),
its help the field's ``description`` and its shown default the field's default, so help text and
behaviour cannot drift. A flag left out is None and means "the recipe's value, else the field's
default"; a boolean field is a plain switch (``--resume``). Besides them: the optional RECIPE
argument (`fireact.recipes`) and ``--dry-run``.
"""

from __future__ import annotations

import inspect
import json
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic.fields import FieldInfo
from typer._click.core import ParameterSource

from fireact.agent.options import RECIPE_ONLY, RunOptions
from fireact.cli.app import EXIT_EPISODES_FAILED
from fireact.errors import FireactError

RECIPE_HELP = (
    "A run recipe (YAML of these options, e.g. configs/run/gpt4-react-hotpotqa.yaml); options "
    "given here override it."
)
DRY_RUN_HELP = "Print the resolved settings and stop; runs nothing."
SHOWN = ("n", "finished", "errors", "em", "f1", "mean_steps", "cost_usd", "wall_s", "kept")
SHOWN += ("dropped_tool_errors", "llm_cache")  # the summary keys printed on stdout


def flag_type(annotation: Any) -> type:
    """The command-line type of a field: its type without None; a choice (Literal) or a union
    of several types (``2.5`` or ``auto``) as str, which the options model then validates."""
    args: tuple[Any, ...] = (annotation,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = tuple(a for a in typing.get_args(annotation) if a is not type(None))
    if len(args) > 1:
        return str
    base = args[0]
    return str if typing.get_origin(base) is Literal else base


def flag_fields() -> list[str]:
    """The fields that are flags: the required ones first, then the others in field order."""
    fields = RunOptions.model_fields
    names = [n for n in fields if n not in RECIPE_ONLY]
    return sorted(names, key=lambda n: not fields[n].is_required())


def flag_parameter(name: str, field: FieldInfo) -> inspect.Parameter:
    """The typer parameter of one field: its type, description and default."""
    kind = flag_type(field.annotation)
    default = None if field.is_required() else field.default
    option = typer.Option("--" + name.replace("_", "-"), help=field.description)
    if kind is bool:
        option.show_default = False
    else:
        kind = kind | None  # type: ignore[assignment,operator]
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option]
    )


def command_parameters() -> list[inspect.Parameter]:
    """The click context (to tell given flags from defaults), RECIPE, one flag per field,
    ``--dry-run``."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    recipe = Annotated[Path | None, typer.Argument(help=RECIPE_HELP)]
    dry_run = Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)]
    return [
        inspect.Parameter("ctx", keyword, annotation=typer.Context),
        inspect.Parameter("recipe", keyword, default=None, annotation=recipe),
        *(flag_parameter(n, RunOptions.model_fields[n]) for n in flag_fields()),
        inspect.Parameter("dry_run", keyword, default=False, annotation=dry_run),
    ]


def agent_command(generate: bool) -> Callable[..., None]:
    """The `run` / `generate` command: the same options, `generate` keeps trajectories."""

    def command(ctx: typer.Context, **values: Any) -> None:
        given = {  # a flag left out is None: the recipe's value, else the field's default
            name: value if ctx.get_parameter_source(name) != ParameterSource.DEFAULT else None
            for name, value in values.items()
        }
        run_agent(given, generate=generate)

    parameters = command_parameters()
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = (
        "Run the agent and keep its successful trajectories as training data."
        if generate
        else "Run the agent over a task's episodes: one JSON line per episode, then a summary."
    )
    return command


def run_agent(values: dict[str, Any], *, generate: bool) -> None:
    """Merge the flags over the recipe, then dry-run, run or generate; print the summary."""
    from fireact.agent import generate as generate_run
    from fireact.agent import options_from_dict
    from fireact.agent import run as run_run

    values = dict(values)
    recipe, dry_run = values.pop("recipe"), values.pop("dry_run")
    if recipe is not None:
        from fireact.recipes import load_run_recipe

        given = {k: v for k, v in values.items() if v is not None}
        values = load_run_recipe(recipe, []) | given
    if dry_run and values.get("out") is None:
        values["out"] = "(not set)"
    for name in (n for n, f in RunOptions.model_fields.items() if f.is_required()):
        if values.get(name) is None:
            flag = "--" + name.replace("_", "-")
            raise FireactError(f"Missing option '{flag}': give it, or a run recipe that sets it")
    if dry_run:
        from fireact.recipes import describe

        print(describe({k: v for k, v in values.items() if v is not None}), end="")
        return
    options = options_from_dict(values)
    summary = (generate_run if generate else run_run)(options)
    print(json.dumps({k: summary[k] for k in SHOWN if k in summary}, indent=2))
    if summary.get("errors"):
        print(
            f"error: {summary['errors']} of {summary['n']} episodes failed: "
            f"{summary['first_error']}; rerun with --resume to retry them",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_EPISODES_FAILED)
