"""The `openai-ft` group: OpenAI fine-tuning files and jobs (key from OPENAI_API_KEY).

Owns `ft_app` and its commands' arguments; the API calls are `fireact.train.openai_ft`. Each
command prints the API's answer as JSON (`upload`: the file id).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

ft_app = typer.Typer(
    help="OpenAI fine-tuning jobs (key from OPENAI_API_KEY).", no_args_is_help=True
)
BaseUrl = Annotated[str | None, typer.Option(help="API base URL.")]
JobId = Annotated[str, typer.Argument(help="Job id.")]


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


@ft_app.command("upload")
def ft_upload(
    file: Annotated[Path, typer.Argument(help="Chat JSONL training file (checked first).")],
    base_url: BaseUrl = None,
) -> None:
    """Upload a training file; prints its file id."""
    from fireact.train import openai_ft

    print(openai_ft.upload(file, base_url=base_url))


@ft_app.command("create")
def ft_create(
    training_file: Annotated[str, typer.Option(help="File id from `upload`.")],
    model: Annotated[str, typer.Option(help="Base model.")] = "gpt-3.5-turbo",
    validation_file: Annotated[str | None, typer.Option(help="Validation file id.")] = None,
    suffix: Annotated[str | None, typer.Option(help="Suffix of the model name.")] = None,
    n_epochs: Annotated[int | None, typer.Option(help="Epochs (default: OpenAI's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Poll until the job ends.")] = False,
    poll_s: Annotated[float, typer.Option(help="--wait: seconds between polls.")] = 30.0,
    base_url: BaseUrl = None,
) -> None:
    """Start a fine-tuning job (and optionally wait for it)."""
    from fireact.train import openai_ft

    openai_ft.check_options(
        {"model": model, "suffix": suffix, "n_epochs": n_epochs, "seed": seed, "poll_s": poll_s},
        flags=True,
    )
    job = openai_ft.create(
        training_file,
        model,
        validation_file=validation_file,
        suffix=suffix,
        n_epochs=n_epochs,
        seed=seed,
        base_url=base_url,
    )
    if wait:
        job = openai_ft.wait(job["id"], poll_s, base_url=base_url)
    _print(job)


@ft_app.command("run")
def ft_run(
    recipe: Annotated[Path, typer.Argument(help="A recipe, e.g. configs/gpt35-hotpotqa.yaml.")],
    base_url: BaseUrl = None,
) -> None:
    """Check and upload the recipe's data, start the job and wait until it ends."""
    from fireact.train import openai_ft

    _print(
        openai_ft.run_recipe(recipe, base_url=base_url, echo=lambda m: print(m, file=sys.stderr))
    )


def _job_command(action: str, doc: str) -> Callable[..., None]:
    """A command that calls ``openai_ft.<action>(job_id)`` and prints the answer."""

    def command(job_id: JobId, base_url: BaseUrl = None) -> None:
        from fireact.train import openai_ft

        _print(getattr(openai_ft, action)(job_id, base_url=base_url))

    command.__doc__ = doc
    return command


ft_app.command("status")(_job_command("status", "A job's state, model name and recent events."))
ft_app.command("cancel")(_job_command("cancel", "Cancel a job."))


@ft_app.command("list")
def ft_list(
    limit: Annotated[int, typer.Option(help="How many jobs.")] = 10,
    base_url: BaseUrl = None,
) -> None:
    """Recent fine-tuning jobs."""
    from fireact.train import openai_ft

    _print(openai_ft.list_jobs(limit, base_url=base_url))
