"""OpenAI fine-tuning jobs through the official SDK (``fireact openai-ft ...``, SPEC §5).

Owns one function per command: `upload` (checks the chat JSONL with
`fireact.data.check.check_chat_file` first and refuses a file with errors), `create`, `status`
(the job and its recent events), `cancel`, `list_jobs` and `wait` (polls until the job ends,
printing each status change). Jobs and events come back as plain dicts (the API's JSON).

Connection: `api_key` or ``$OPENAI_API_KEY`` (required), `base_url` or ``$OPENAI_BASE_URL``
(default OpenAI's). Every SDK error becomes a one-line `FireactError` (a rejected key, an
unknown job or file, a refused connection, an API error with its message); the key itself never
appears in a message.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai

from fireact.data.check import check_chat_file
from fireact.errors import FireactError
from fireact.llm.openai_backend import connection_reason

TERMINAL = ("succeeded", "failed", "cancelled")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9*_\-]{3})[A-Za-z0-9*_\-]+")


def make_client(
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    timeout_s: float = 60.0,
    max_retries: int = 2,
) -> openai.OpenAI:
    """A sync SDK client; a missing key is a `FireactError`."""
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise FireactError(
            "OPENAI_API_KEY is not set: export your OpenAI API key (or pass api_key)"
        )
    url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    return openai.OpenAI(api_key=key, base_url=url, timeout=timeout_s, max_retries=max_retries)


@contextmanager
def api_errors(client: openai.OpenAI, action: str) -> Iterator[None]:
    """Turn the SDK's errors raised while doing `action` into one-line `FireactError`s."""
    try:
        yield
    except openai.AuthenticationError:
        raise FireactError(
            f"{action}: the API key was rejected (401); check OPENAI_API_KEY"
        ) from None
    except openai.PermissionDeniedError as err:
        raise FireactError(f"{action}: permission denied (403): {_message(client, err)}") from None
    except openai.NotFoundError as err:
        raise FireactError(f"{action}: not found (404): {_message(client, err)}") from None
    except openai.APIStatusError as err:
        raise FireactError(
            f"{action}: API error {err.status_code}: {_message(client, err)}"
        ) from None
    except openai.APIConnectionError as err:
        raise FireactError(
            f"{action}: cannot reach {client.base_url} ({connection_reason(err)});"
            " check base_url / OPENAI_BASE_URL"
        ) from None


def _message(client: openai.OpenAI, err: openai.APIStatusError) -> str:
    body = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else body
    text = str(inner.get("message") or err.message)
    return scrub(text, client.api_key)


def scrub(text: str, key: str | None) -> str:
    """`text` on one line with the key (and anything that looks like an sk- key) masked."""
    if key:
        text = text.replace(key, "***")
    return " ".join(_KEYLIKE.sub(r"\1***", text).split())


def _dump(obj: Any) -> dict[str, Any]:
    return obj.model_dump(mode="json") if hasattr(obj, "model_dump") else dict(obj)


# ---------------------------------------------------------------- commands


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
    report = check_chat_file(path, model=model)
    if not report.ok:
        first = report.errors[0]
        raise FireactError(
            f"{path}: {len(report.errors)} format error(s), not uploaded; first: {first}"
            f" (see: fireact convert --check {path})"
        )
    client = make_client(base_url, api_key, max_retries=max_retries)
    with api_errors(client, f"uploading {path}"), path.open("rb") as handle:
        created = client.files.create(file=(path.name, handle), purpose="fine-tune")
    return created.id


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
    options: dict[str, Any] = {}
    if validation_file is not None:
        options["validation_file"] = validation_file
    if suffix is not None:
        options["suffix"] = suffix
    if seed is not None:
        options["seed"] = seed
    if n_epochs is not None:
        if n_epochs < 1:
            raise FireactError(f"n_epochs must be at least 1, got {n_epochs}")
        options["method"] = {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": n_epochs}},
        }
    client = make_client(base_url, api_key, max_retries=max_retries)
    with api_errors(client, f"creating a fine-tuning job on {training_file}"):
        job = client.fine_tuning.jobs.create(training_file=training_file, model=model, **options)
    return _dump(job)


def status(
    job_id: str,
    *,
    events: int = 10,
    base_url: str | None = None,
    api_key: str | None = None,
    max_retries: int = 2,
) -> dict[str, Any]:
    """The job, with its `events` most recent events (newest first) under ``"events"``."""
    client = make_client(base_url, api_key, max_retries=max_retries)
    return _status(client, job_id, events)


def _status(client: openai.OpenAI, job_id: str, events: int) -> dict[str, Any]:
    with api_errors(client, f"reading fine-tuning job {job_id}"):
        job = _dump(client.fine_tuning.jobs.retrieve(job_id))
        if events > 0:
            page = client.fine_tuning.jobs.list_events(job_id, limit=events)
            job["events"] = [_dump(event) for event in page.data]
        else:
            job["events"] = []
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
    with api_errors(client, f"cancelling fine-tuning job {job_id}"):
        return _dump(client.fine_tuning.jobs.cancel(job_id))


def list_jobs(
    limit: int = 10,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    max_retries: int = 2,
) -> list[dict[str, Any]]:
    """The `limit` most recent jobs, newest first."""
    if limit < 1:
        raise FireactError(f"limit must be at least 1, got {limit}")
    client = make_client(base_url, api_key, max_retries=max_retries)
    with api_errors(client, "listing fine-tuning jobs"):
        page = client.fine_tuning.jobs.list(limit=limit)
    return [_dump(job) for job in page.data]


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
    client = make_client(base_url, api_key, max_retries=max_retries)
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


RECIPE_KEYS = {
    "training_file", "validation_file", "model", "suffix", "n_epochs", "seed", "poll_s",
}  # fmt: skip


def _recipe_file(value: Any, key: str, recipe: Path) -> Path:
    """A file named in a recipe: a path, or ``fireact:...`` for one shipped in the package."""
    if not isinstance(value, str) or not value:
        raise FireactError(f"{recipe}: '{key}' should be a file path")
    if value.startswith("fireact:"):
        from fireact.resources import resource

        return resource(*value.removeprefix("fireact:").split("/"))
    return Path(value).expanduser()


def run_recipe(recipe: Path, *, base_url: str | None = None, echo: Any = print) -> dict[str, Any]:
    """Upload (after checking) the recipe's files, start the job and wait for it to end."""
    from fireact.files import read_yaml

    data = read_yaml(Path(recipe))
    if not isinstance(data, dict):
        raise FireactError(f"{recipe}: expected a mapping of recipe keys")
    unknown = sorted(set(data) - RECIPE_KEYS)
    if unknown:
        raise FireactError(
            f"{recipe}: unknown key(s) {', '.join(unknown)}; known: {sorted(RECIPE_KEYS)}"
        )
    if "training_file" not in data or "model" not in data:
        raise FireactError(f"{recipe}: needs 'training_file' and 'model'")
    model = str(data["model"])
    training = upload(
        _recipe_file(data["training_file"], "training_file", recipe), model=model, base_url=base_url
    )
    validation = None
    if data.get("validation_file"):
        path = _recipe_file(data["validation_file"], "validation_file", recipe)
        validation = upload(path, model=model, base_url=base_url)
    echo(f"uploaded {training}" + (f" and {validation}" if validation else ""))
    job = create(
        training,
        model,
        validation_file=validation,
        suffix=data.get("suffix"),
        n_epochs=data.get("n_epochs"),
        seed=data.get("seed"),
        base_url=base_url,
    )
    echo(f"created {job['id']}")
    return wait(job["id"], float(data.get("poll_s", 30)), base_url=base_url, echo=echo)
