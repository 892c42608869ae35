"""OpenAI fine-tuning jobs through the official SDK (``fireact openai-ft ...``, SPEC §5).

Owns one function per command: `upload` (checks the chat JSONL with
`fireact.data.check.check_chat_file` first and refuses a file with errors), `create`, `status`
(the job and its recent events), `cancel`, `list_jobs`, `wait` (polls until the job ends,
printing each status change) and `run_recipe` (all of it from one YAML recipe). Jobs and events
come back as plain dicts (the API's JSON).

Nothing is sent before everything is checked: a job's options (`JobOptions`: model, suffix,
n_epochs, seed, poll_s) and a recipe (`Recipe`: those plus its files, no other key) are
validated, and every file to upload is checked, before the first request. An error names the
option as the user spelled it: the recipe key (``n_epochs``), or the command-line flag
(``--n-epochs``) for `check_options(..., flags=True)`.

Connection: `api_key` or ``$OPENAI_API_KEY`` (required), `base_url` or ``$OPENAI_BASE_URL``
(default OpenAI's). Every SDK error, and every answer that is not what the API promises,
becomes a one-line `FireactError` naming the endpoint (`fireact.train.openai_ft_api`). The key
itself never appears in a message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import openai
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fireact.data.check import check_chat_file
from fireact.errors import FireactError
from fireact.home import packaged
from fireact.openai_client import scrub as scrub  # re-exported
from fireact.train.openai_ft_api import api_errors, api_json, make_client

TERMINAL = ("succeeded", "failed", "cancelled")
JOB_FIELDS = {"id": str, "status": str}  # what a job answer must hold
LIST_FIELDS = {"data": list}  # what a page of jobs or events must hold


# ---------------------------------------------------------------- options


class JobOptions(BaseModel):
    """A fine-tuning job's options, within the API's limits (checked before any request)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, strict=True)
    suffix: str | None = Field(None, max_length=64, strict=True)  # OpenAI: up to 64 characters
    n_epochs: int | None = Field(None, ge=1, strict=True)  # None: OpenAI picks ("auto")
    seed: int | None = Field(None, strict=True)
    poll_s: float = Field(30.0, ge=0, allow_inf_nan=False, strict=True)  # between status polls


class Recipe(JobOptions):
    """A ``fireact openai-ft run`` recipe: the job's options and the files to upload.

    A file is a path (relative to the working directory) or ``fireact:finetune/...`` for one
    shipped in the package.
    """

    training_file: str = Field(min_length=1, strict=True)
    validation_file: str | None = Field(None, min_length=1, strict=True)


def check_options(
    values: Mapping[str, Any],
    schema: type[JobOptions] = JobOptions,
    *,
    where: str | None = None,
    flags: bool = False,
) -> JobOptions:
    """`values` validated against `schema`; the first problems become one `FireactError`.

    Each problem names the option as the user spelled it: the key (``n_epochs``), or with
    `flags` the command-line flag (``--n-epochs``). `where` (a recipe's path) prefixes the line.
    """
    try:
        return schema.model_validate(dict(values))
    except ValidationError as err:

        def spell(key: str) -> str:
            return "--" + key.replace("_", "-") if flags else key

        errors = err.errors()
        unknown = [spell(str(e["loc"][0])) for e in errors if e["type"] == "extra_forbidden"]
        if unknown:
            known = sorted(spell(k) for k in schema.model_fields)
            message = f"unknown key(s) {', '.join(unknown)}; known: {known}"
        else:
            message = "; ".join(list(dict.fromkeys(_problem(e, spell) for e in errors))[:3])
        raise FireactError(f"{where}: {message}" if where else message) from None


def _problem(error: Any, spell: Callable[[str], str]) -> str:
    key = spell(".".join(str(p) for p in error["loc"]))
    if error["type"] == "missing":
        return f"missing required key {key!r}"
    return f"{key}: {error['msg']} (got {error.get('input')!r})"


# ---------------------------------------------------------------- commands


def check_upload(path: Path, model: str = "gpt-3.5-turbo") -> None:
    """Refuse a chat JSONL file that breaks OpenAI's format for `model` (nothing is sent)."""
    report = check_chat_file(path, model=model)
    if not report.ok:
        first = report.errors[0]
        raise FireactError(
            f"{path}: {len(report.errors)} format error(s), not uploaded; first: {first}"
            f" (see: fireact convert --check {path})"
        )


def upload(
    path: Path,
    *,
    model: str = "gpt-3.5-turbo",
    base_url: str | None = None,
    api_key: str | None = None,
    max_retries: int = 2,
) -> str:
    """Check the chat JSONL for `model`, then upload it for fine-tuning; the file id."""
    path = Path(path)
    check_upload(path, model)
    return _upload(make_client(base_url, api_key, max_retries=max_retries), path)


def _upload(client: openai.OpenAI, path: Path) -> str:
    action = f"uploading {path}"
    with api_errors(client, action), path.open("rb") as handle:
        raw = client.files.with_raw_response.create(file=(path.name, handle), purpose="fine-tune")
    return api_json(client, action, raw, {"id": str})["id"]


def create(
    training_file: str,
    model: str,
    *,
    validation_file: str | None = None,
    suffix: str | None = None,
    n_epochs: int | None = None,
    seed: int | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    max_retries: int = 2,
) -> dict[str, Any]:
    """Start a supervised fine-tuning job on an uploaded file; the job."""
    options = check_options({"model": model, "suffix": suffix, "n_epochs": n_epochs, "seed": seed})
    client = make_client(base_url, api_key, max_retries=max_retries)
    return _create(client, training_file, options, validation_file)


def _create(
    client: openai.OpenAI,
    training_file: str,
    options: JobOptions,
    validation_file: str | None = None,
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if validation_file is not None:
        extra["validation_file"] = validation_file
    if options.suffix is not None:
        extra["suffix"] = options.suffix
    if options.seed is not None:
        extra["seed"] = options.seed
    if options.n_epochs is not None:
        extra["method"] = {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": options.n_epochs}},
        }
    action = f"creating a fine-tuning job on {training_file}"
    with api_errors(client, action):
        raw = client.fine_tuning.jobs.with_raw_response.create(
            training_file=training_file, model=options.model, **extra
        )
    return api_json(client, action, raw, JOB_FIELDS)


def status(
    job_id: str,
    *,
    events: int = 10,
    base_url: str | None = None,
    api_key: str | None = None,
    max_retries: int = 2,
) -> dict[str, Any]:
    """The job, with its `events` most recent events (newest first) under ``"events"``."""
    if isinstance(events, bool) or not isinstance(events, int) or events < 0:
        raise FireactError(f"events: expected a whole number of at least 0, got {events!r}")
    client = make_client(base_url, api_key, max_retries=max_retries)
    return _status(client, job_id, events)


def _status(client: openai.OpenAI, job_id: str, events: int) -> dict[str, Any]:
    action = f"reading fine-tuning job {job_id}"
    with api_errors(client, action):
        raw = client.fine_tuning.jobs.with_raw_response.retrieve(job_id)
    job = api_json(client, action, raw, JOB_FIELDS)
    job["events"] = []
    if events > 0:
        action = f"reading the events of fine-tuning job {job_id}"
        with api_errors(client, action):
            raw = client.fine_tuning.jobs.with_raw_response.list_events(job_id, limit=events)
        job["events"] = api_json(client, action, raw, LIST_FIELDS)["data"]
    return job


def cancel(
    job_id: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    max_retries: int = 2,
) -> dict[str, Any]:
    """Cancel a job that has not ended; the job."""
    client = make_client(base_url, api_key, max_retries=max_retries)
    action = f"cancelling fine-tuning job {job_id}"
    with api_errors(client, action):
        raw = client.fine_tuning.jobs.with_raw_response.cancel(job_id)
    return api_json(client, action, raw, JOB_FIELDS)


def list_jobs(
    limit: int = 10,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    max_retries: int = 2,
) -> list[dict[str, Any]]:
    """The `limit` most recent jobs, newest first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise FireactError(f"limit must be at least 1, got {limit!r}")
    client = make_client(base_url, api_key, max_retries=max_retries)
    action = "listing fine-tuning jobs"
    with api_errors(client, action):
        raw = client.fine_tuning.jobs.with_raw_response.list(limit=limit)
    return api_json(client, action, raw, LIST_FIELDS)["data"]


def wait(
    job_id: str,
    poll_s: float = 30.0,
    *,
    timeout_s: float | None = None,
    echo: Callable[[str], None] = print,
    base_url: str | None = None,
    api_key: str | None = None,
    max_retries: int = 2,
) -> dict[str, Any]:
    """Poll the job every `poll_s` seconds until it succeeds, fails or is cancelled.

    Prints (through `echo`) each status change, and at the end the fine-tuned model or the
    error. Returns the final job; past `timeout_s` raises `FireactError` (the job goes on).
    """
    _check_seconds("poll_s", poll_s)
    if timeout_s is not None:
        _check_seconds("timeout_s", timeout_s, allow_inf=True)
    client = make_client(base_url, api_key, max_retries=max_retries)
    return _wait(client, job_id, poll_s, timeout_s, echo)


def _check_seconds(name: str, value: Any, *, allow_inf: bool = False) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or math.isnan(value) or value < 0 or (math.isinf(value) and not allow_inf):
        raise FireactError(f"{name}: expected a finite number of seconds >= 0, got {value!r}")


def _wait(
    client: openai.OpenAI,
    job_id: str,
    poll_s: float,
    timeout_s: float | None,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    start, last = time.monotonic(), None
    while True:
        job = _status(client, job_id, events=0)
        job.pop("events")
        if job["status"] != last:
            last = job["status"]
            echo(f"{job_id}: {last}")
        if last in TERMINAL:
            echo(_ending(job))
            return job
        if timeout_s is not None and time.monotonic() - start + poll_s > timeout_s:
            raise FireactError(
                f"fine-tuning job {job_id} is still {last} after {timeout_s:g} s;"
                " it goes on (check it later with status)"
            )
        time.sleep(poll_s)


def _ending(job: dict[str, Any]) -> str:
    if job["status"] == "succeeded":
        return f"{job['id']}: fine-tuned model {job.get('fine_tuned_model')}"
    error = job.get("error") or {}
    detail = error.get("message") if isinstance(error, dict) else None
    return f"{job['id']}: {job['status']}" + (f": {detail}" if detail else "")


# ---------------------------------------------------------------- recipes


def _recipe_file(value: str) -> Path:
    """A file named in a recipe: a path, or ``fireact:...`` for one shipped in the package."""
    return packaged(value) or Path(value).expanduser()


def read_recipe(path: Path) -> Recipe:
    """A recipe file, validated (`Recipe`); errors name the file and the key."""
    from fireact.files import read_yaml

    data = read_yaml(Path(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FireactError(f"{path}: expected a mapping of recipe keys, got {type(data).__name__}")
    recipe = check_options(data, Recipe, where=str(path))
    assert isinstance(recipe, Recipe)
    return recipe


def run_recipe(recipe: Path, *, base_url: str | None = None, echo: Any = print) -> dict[str, Any]:
    """Upload (after checking) the recipe's files, start the job and wait for it to end.

    The recipe, every file it names and the API key are checked before the first request.
    """
    options = read_recipe(recipe)
    training = _recipe_file(options.training_file)
    validation = _recipe_file(options.validation_file) if options.validation_file else None
    for path in (training, validation):
        if path is not None:
            check_upload(path, options.model)
    client = make_client(base_url)
    training_id = _upload(client, training)
    validation_id = _upload(client, validation) if validation else None
    echo(f"uploaded {training_id}" + (f" and {validation_id}" if validation_id else ""))
    job = _create(client, training_id, options, validation_id)
    echo(f"created {job['id']}")
    return _wait(client, job["id"], options.poll_s, None, echo)
