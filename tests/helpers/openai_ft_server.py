"""`OpenAIServer` plus OpenAI's Files and fine-tuning Jobs endpoints, kept in memory.

Adds to the served routes:

* ``POST /v1/files`` (multipart: ``file``, ``purpose``), ``GET /v1/files``,
  ``GET /v1/files/{id}``;
* ``POST /v1/fine_tuning/jobs``, ``GET /v1/fine_tuning/jobs`` (``limit``, ``after``),
  ``GET /v1/fine_tuning/jobs/{id}``, ``POST /v1/fine_tuning/jobs/{id}/cancel``,
  ``GET /v1/fine_tuning/jobs/{id}/events`` (``limit``).

A job moves one state forward each time it is retrieved (so tests need no clocks):
validating_files → queued → running → succeeded, with ``fine_tuned_model`` like
``ft:gpt-3.5-turbo-0125:fireact::a1b2c3d4``. When validation finds the training file bad (not
JSONL objects with a ``messages`` list, or fewer than 10 examples) the job goes to ``failed``
with an ``invalid_training_file`` error instead. Cancel moves a job that has not ended to
``cancelled``; a job that ended answers 400. Ids look like the real API's (``file-...``,
``ftjob-...``, ``ftevent-...``); events are listed newest first.

Every request to these endpoints is recorded in `calls` as ``"METHOD /path"`` (so a test can
show that nothing was uploaded or created). `broken` makes an endpoint misbehave as a proxy or a
half-working server would; it maps a route (``"POST /v1/files"``,
``"GET /v1/fine_tuning/jobs/{job_id}"``: the method and the route pattern) to one of
`BROKEN_ANSWERS` (read at each request, so a test may break an endpoint half-way):

* ``"html"``: 200 with an HTML sign-in page (a captive proxy);
* ``"bad_gateway"``: 502 with an HTML error page (a proxy whose upstream is down);
* ``"bare"``: 200 with a JSON object without the fields the API promises (``{"object": ...}``).
"""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.helpers.openai_server import OpenAIServer, _error

STATES = ("validating_files", "queued", "running", "succeeded")
TERMINAL = {"succeeded", "failed", "cancelled"}
FILE_PURPOSES = {"fine-tune", "assistants", "batch", "vision", "user_data", "evals"}
SNAPSHOTS = {"gpt-3.5-turbo": "gpt-3.5-turbo-0125", "gpt-4o-mini": "gpt-4o-mini-2024-07-18"}
SIGN_IN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Proxy sign-in</title></head>\n"
    "<body><h1>Please sign in to continue</h1><form method=post></form></body></html>\n"
)
BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
    "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
BROKEN_ANSWERS = ("html", "bad_gateway", "bare")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class OpenAIFTServer(OpenAIServer):
    """The test server with files and fine-tuning jobs (see the module doc)."""

    organization: str = "fireact"
    tunable_models: tuple[str, ...] = (
        "gpt-3.5-turbo",
        "gpt-3.5-turbo-0125",
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
    )
    files: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    file_data: dict[str, bytes] = field(default_factory=dict, init=False)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict, init=False)
    broken: dict[str, str] = field(default_factory=dict)  # route -> one of BROKEN_ANSWERS
    calls: list[str] = field(default_factory=list, init=False)  # "POST /v1/files", ...

    def __post_init__(self) -> None:
        super().__post_init__()
        self._ids = random.Random(self.seed + 1)
        unknown = set(self.broken.values()) - set(BROKEN_ANSWERS)
        if unknown:
            raise ValueError(f"unknown broken answers {sorted(unknown)}; known: {BROKEN_ANSWERS}")

    def routes(self) -> list[web.RouteDef]:
        own = [
            ("POST", "/v1/files", self._upload),
            ("GET", "/v1/files", self._list_files),
            ("GET", "/v1/files/{file_id}", self._get_file),
            ("POST", "/v1/fine_tuning/jobs", self._create_job),
            ("GET", "/v1/fine_tuning/jobs", self._list_jobs),
            ("GET", "/v1/fine_tuning/jobs/{job_id}", self._get_job),
            ("POST", "/v1/fine_tuning/jobs/{job_id}/cancel", self._cancel_job),
            ("GET", "/v1/fine_tuning/jobs/{job_id}/events", self._list_events),
        ]
        return [
            *super().routes(),
            *(web.route(method, path, self._answer_or_break(method, path, handler))
              for method, path, handler in own),
        ]  # fmt: skip

    def _answer_or_break(self, method: str, route: str, handler: Handler) -> Handler:
        """`handler`, recording each call, or the broken answer `broken` gives the route now."""

        async def answer(request: web.Request) -> web.StreamResponse:
            self.calls.append(f"{method} {request.path}")
            how = self.broken.get(f"{method} {route}")
            if how == "html":
                return web.Response(text=SIGN_IN_PAGE, content_type="text/html")
            if how == "bad_gateway":
                return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
            if how == "bare":
                kind = "file" if route.startswith("/v1/files") else "fine_tuning.job"
                if method == "GET" and route.endswith(("files", "jobs", "events")):
                    kind = "list"
                return web.json_response({"object": kind})
            return await handler(request)

        return answer

    def _new_id(self, prefix: str, n: int) -> str:
        alphabet = string.ascii_letters + string.digits
        return prefix + "".join(self._ids.choice(alphabet) for _ in range(n))

    # -- files ------------------------------------------------------------------------------
    async def _upload(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        if not request.content_type.startswith("multipart/"):
            return _error(400, "Expected a multipart/form-data upload", "invalid_request")
        form = await request.post()
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose not in FILE_PURPOSES:
            return _error(400, f"Invalid purpose: {purpose!r}", "invalid_purpose")
        if not isinstance(upload, web.FileField):
            return _error(400, "Missing file", "missing_file")
        data = upload.file.read()
        file_id = self._new_id("file-", 22)
        self.file_data[file_id] = data
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": upload.filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
        }
        return web.json_response(self.files[file_id])

    async def _list_files(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        data = list(reversed(self.files.values()))
        return web.json_response({"object": "list", "data": data, "has_more": False})

    async def _get_file(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        file_id = request.match_info["file_id"]
        if file_id not in self.files:
            return _error(404, f"No such File object: {file_id}", "not_found")
        return web.json_response(self.files[file_id])

    # -- jobs -------------------------------------------------------------------------------
    async def _create_job(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        body = await request.json()
        model, training = body.get("model"), body.get("training_file")
        if model not in self.tunable_models:
            return _error(400, f"Model {model} is not available for fine-tuning", "model_invalid")
        for key in ("training_file", "validation_file"):
            file_id = body.get(key)
            if key == "validation_file" and file_id is None:
                continue
            if file_id not in self.files:
                return _error(400, f"invalid {key}: {file_id}", "invalid_file")
            if self.files[file_id]["purpose"] != "fine-tune":
                return _error(400, f"{file_id} has purpose {key!r}, not fine-tune", "invalid_file")
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            return _error(400, "suffix must be a string of at most 64 characters", "invalid_suffix")
        job = self._new_job(body, SNAPSHOTS.get(model, model), training)
        self.jobs[job["id"]] = job
        self.events[job["id"]] = []
        self._event(job, "Created fine-tuning job")
        self._event(job, f"Validating training file: {training}")
        return web.json_response(job)

    def _new_job(self, body: dict[str, Any], model: str, training: str) -> dict[str, Any]:
        hyper = _hyperparameters(body)
        return {
            "id": self._new_id("ftjob-", 24),
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "model": model,
            "training_file": training,
            "validation_file": body.get("validation_file"),
            "status": STATES[0],
            "fine_tuned_model": None,
            "finished_at": None,
            "error": None,
            "hyperparameters": hyper,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
            "organization_id": f"org-{self.organization}",
            "result_files": [],
            "trained_tokens": None,
            "seed": body.get("seed") if body.get("seed") is not None else 42,
            "user_provided_suffix": body.get("suffix"),
            "estimated_finish": None,
            "integrations": [],
            "metadata": body.get("metadata"),
        }

    def _event(self, job: dict[str, Any], message: str, level: str = "info") -> None:
        self.events[job["id"]].append(
            {
                "object": "fine_tuning.job.event",
                "id": self._new_id("ftevent-", 24),
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "data": {},
                "type": "message",
            }
        )

    def _advance(self, job: dict[str, Any]) -> None:
        """One state forward (or to failed when the training file does not validate)."""
        status = job["status"]
        if status in TERMINAL:
            return
        if status == "validating_files" and (problem := self._file_problem(job)) is not None:
            job.update(status="failed", finished_at=int(time.time()))
            job["error"] = {
                "code": "invalid_training_file",
                "message": problem,
                "param": "training_file",
            }
            self._event(job, problem, "error")
            return
        job["status"] = STATES[STATES.index(status) + 1]
        if job["status"] == "queued":
            self._event(job, "Files validated, moving job to queued state")
        elif job["status"] == "running":
            self._event(job, "Fine-tuning job started")
        else:
            self._succeed(job)

    def _succeed(self, job: dict[str, Any]) -> None:
        tag = job["user_provided_suffix"] or ""
        model = f"ft:{job['model']}:{self.organization}:{tag}:{job['id'][-8:].lower()}"
        job.update(fine_tuned_model=model, finished_at=int(time.time()))
        job["trained_tokens"] = len(self.file_data[job["training_file"]].split())
        job["result_files"] = [self._new_id("file-", 22)]
        self._event(job, f"New fine-tuned model created: {model}")
        self._event(job, "The job has successfully completed")

    def _file_problem(self, job: dict[str, Any]) -> str | None:
        text = self.file_data[job["training_file"]].decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if line.strip()]
        for n, line in enumerate(lines, start=1):
            try:
                example = json.loads(line)
            except json.JSONDecodeError:
                return f"Invalid file format. Line {n} is not valid JSON."
            if not isinstance(example, dict) or not isinstance(example.get("messages"), list):
                return f"Invalid file format. Line {n}, key 'messages': missing."
        if len(lines) < 10:
            return f"Training file has {len(lines)} example(s), but must have at least 10 examples"
        return None

    def _job_or_404(self, request: web.Request) -> dict[str, Any] | web.Response:
        job_id = request.match_info["job_id"]
        if job_id not in self.jobs:
            return _error(404, f"Could not find fine-tune job: {job_id}", "fine_tune_not_found")
        return self.jobs[job_id]

    async def _get_job(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        job = self._job_or_404(request)
        if isinstance(job, web.Response):
            return job
        self._advance(job)
        return web.json_response(job)

    async def _cancel_job(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        job = self._job_or_404(request)
        if isinstance(job, web.Response):
            return job
        if job["status"] in TERMINAL:
            return _error(400, f"Job has already completed: {job['id']}", "invalid_request")
        job.update(status="cancelled", finished_at=int(time.time()))
        self._event(job, "Fine-tuning job cancelled")
        return web.json_response(job)

    async def _list_jobs(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        jobs = list(reversed(self.jobs.values()))
        return web.json_response(_page(jobs, request))

    async def _list_events(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        job = self._job_or_404(request)
        if isinstance(job, web.Response):
            return job
        return web.json_response(_page(list(reversed(self.events[job["id"]])), request))


def _hyperparameters(body: dict[str, Any]) -> dict[str, Any]:
    given = dict(body.get("hyperparameters") or {})
    method = body.get("method") or {}
    given.update(((method.get("supervised") or {}).get("hyperparameters")) or {})
    return {
        "n_epochs": given.get("n_epochs", "auto"),
        "batch_size": given.get("batch_size", "auto"),
        "learning_rate_multiplier": given.get("learning_rate_multiplier", "auto"),
    }


def _page(items: list[dict[str, Any]], request: web.Request) -> dict[str, Any]:
    """A cursor page: items after the ``after`` id, at most ``limit`` (default 20)."""
    after = request.query.get("after")
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    limit = int(request.query.get("limit", 20))
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}
