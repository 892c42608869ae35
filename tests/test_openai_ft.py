"""OpenAI fine-tuning jobs (fireact.train.openai_ft) against a real local server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from fireact.errors import FireactError
from fireact.train import openai_ft as ft
from tests.helpers.clirun import run_cli
from tests.helpers.openai_ft_server import OpenAIFTServer
from tests.helpers.paths import SHARED_DATA

SECRET = "sk-test-SECRET-123456"
TRAIN = SHARED_DATA / "finetune" / "gpt_format" / "hotpotqa.jsonl"
GOOD = {
    "messages": [
        {"role": "user", "content": "Who wrote Hamlet?"},
        {"role": "assistant", "content": "Thought: I know it.\nAction: finish[Shakespeare]"},
        {"role": "user", "content": "Observation: Episode finished, reward = True"},
    ]
}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIFTServer]:
    with OpenAIFTServer(api_key=SECRET) as srv:
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        yield srv


def small_file(path: Path, n: int = 10) -> Path:
    path.write_text("".join(json.dumps(GOOD) + "\n" for _ in range(n)), encoding="utf-8")
    return path


def test_upload_create_wait_succeeds(server: OpenAIFTServer) -> None:
    file_id = ft.upload(TRAIN)
    assert file_id.startswith("file-") and len(file_id) == 27
    assert server.file_data[file_id] == TRAIN.read_bytes()
    assert server.files[file_id]["purpose"] == "fine-tune"
    assert server.files[file_id]["filename"] == "hotpotqa.jsonl"

    job = ft.create(file_id, "gpt-3.5-turbo", suffix="fireact", n_epochs=3, seed=7)
    assert job["id"].startswith("ftjob-") and job["status"] == "validating_files"
    assert (job["model"], job["training_file"], job["seed"]) == ("gpt-3.5-turbo-0125", file_id, 7)
    assert job["method"]["supervised"]["hyperparameters"]["n_epochs"] == 3

    printed: list[str] = []
    final = ft.wait(job["id"], poll_s=0, echo=printed.append)
    model = final["fine_tuned_model"]
    assert final["status"] == "succeeded"
    assert model == f"ft:gpt-3.5-turbo-0125:fireact:fireact:{job['id'][-8:].lower()}"
    assert printed == [
        f"{job['id']}: queued",
        f"{job['id']}: running",
        f"{job['id']}: succeeded",
        f"{job['id']}: fine-tuned model {model}",
    ]

    status = ft.status(job["id"], events=2)
    assert status["status"] == "succeeded"
    assert [e["message"] for e in status["events"]] == [
        "The job has successfully completed",
        f"New fine-tuned model created: {model}",
    ]


def test_cancel_and_list(server: OpenAIFTServer, tmp_path: Path) -> None:
    file_id = ft.upload(small_file(tmp_path / "t.jsonl"))
    first = ft.create(file_id, "gpt-4o-mini")
    second = ft.create(file_id, "gpt-3.5-turbo", validation_file=file_id)
    cancelled = ft.cancel(first["id"])
    assert cancelled["status"] == "cancelled"
    assert ft.status(first["id"])["status"] == "cancelled"
    assert [j["id"] for j in ft.list_jobs(10)] == [second["id"], first["id"]]
    assert [j["id"] for j in ft.list_jobs(1)] == [second["id"]]
    with pytest.raises(FireactError) as err:
        ft.cancel(first["id"])
    assert str(err.value) == (
        f"cancelling fine-tuning job {first['id']}: API error 400: "
        f"Job has already completed: {first['id']}"
    )


def test_job_on_a_bad_file_fails_with_the_servers_error(
    server: OpenAIFTServer, tmp_path: Path
) -> None:
    # Uploaded around our check (as another tool might): the job fails at validation.
    client = openai.OpenAI(api_key=SECRET, base_url=server.base_url)
    bad = small_file(tmp_path / "bad.jsonl", n=3)
    with bad.open("rb") as handle:
        file_id = client.files.create(file=handle, purpose="fine-tune").id
    job = ft.create(file_id, "gpt-3.5-turbo")
    printed: list[str] = []
    final = ft.wait(job["id"], poll_s=0, echo=printed.append)
    message = "Training file has 3 example(s), but must have at least 10 examples"
    assert final["status"] == "failed" and final["fine_tuned_model"] is None
    assert final["error"]["code"] == "invalid_training_file"
    assert printed == [f"{job['id']}: failed", f"{job['id']}: failed: {message}"]


def test_bad_file_is_refused_before_upload(server: OpenAIFTServer, tmp_path: Path) -> None:
    path = small_file(tmp_path / "few.jsonl", n=3)
    with pytest.raises(FireactError) as err:
        ft.upload(path)
    assert str(err.value) == (
        f"{path}: 1 format error(s), not uploaded; first: 3 examples: OpenAI needs at least 10"
        f" to fine-tune (see: fireact convert --check {path})"
    )
    assert server.files == {} and server.calls == []


def test_create_errors(server: OpenAIFTServer) -> None:
    with pytest.raises(FireactError) as err:
        ft.create("file-missing", "gpt-3.5-turbo")
    assert str(err.value) == (
        "creating a fine-tuning job on file-missing: API error 400: invalid training_file: file-missing"
    )
    with pytest.raises(FireactError) as err:
        ft.create("file-x", "gpt-3.5-turbo", n_epochs=0)
    assert str(err.value) == "n_epochs: Input should be greater than or equal to 1 (got 0)"
    assert server.calls == ["POST /v1/fine_tuning/jobs"]  # the first create only
    with pytest.raises(FireactError) as err:
        ft.status("ftjob-nope")
    assert str(err.value) == (
        "reading fine-tuning job ftjob-nope: not found (404): Could not find fine-tune job: ftjob-nope"
    )


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(FireactError, match="^OPENAI_API_KEY is not set"):
        ft.list_jobs()
    with pytest.raises(FireactError, match="^OPENAI_API_KEY is not set"):
        ft.status("ftjob-x", base_url="http://127.0.0.1:9/v1")


def test_rejected_key_is_not_echoed(server: OpenAIFTServer) -> None:
    wrong = "sk-wrong-KEY-987654321"
    with pytest.raises(FireactError) as err:
        ft.list_jobs(api_key=wrong)
    assert (
        str(err.value)
        == "listing fine-tuning jobs: the API key was rejected (401); check OPENAI_API_KEY"
    )
    assert wrong not in str(err.value) and SECRET not in str(err.value)


def test_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(FireactError) as err:
        ft.status("ftjob-x", base_url=url, max_retries=0)
    assert str(err.value) == (
        f"reading fine-tuning job ftjob-x: cannot reach {url}/ (connection refused);"
        " check base_url / OPENAI_BASE_URL"
    )
    assert SECRET not in str(err.value)


def test_wait_timeout(server: OpenAIFTServer, tmp_path: Path) -> None:
    job = ft.create(ft.upload(small_file(tmp_path / "t.jsonl")), "gpt-3.5-turbo")
    with pytest.raises(FireactError, match=r"is still queued after 0 s; it goes on"):
        ft.wait(job["id"], poll_s=0.01, timeout_s=0, echo=lambda _: None)


def test_scrub_masks_keys() -> None:
    assert ft.scrub("bad key sk-abcdefghijkl\nhere", None) == "bad key sk-abc*** here"
    assert ft.scrub("key=MYKEY!", "MYKEY") == "key=***!"


# -- options and recipes are checked before anything is sent ---------------------------------
def recipe_file(tmp_path: Path, text: str) -> Path:
    small_file(tmp_path / "train.jsonl")
    path = tmp_path / "recipe.yaml"
    path.write_text(f"training_file: {tmp_path / 'train.jsonl'}\n{text}")
    return path


BAD_RECIPES = [
    ("n_epochs: three\nmodel: gpt-3.5-turbo\n", "n_epochs: Input should be a valid integer (got 'three')"),
    ("n_epochs: true\nmodel: gpt-3.5-turbo\n", "n_epochs: Input should be a valid integer (got True)"),
    ("n_epochs: 0\nmodel: gpt-3.5-turbo\n", "n_epochs: Input should be greater than or equal to 1 (got 0)"),
    ("poll_s: fast\nmodel: gpt-3.5-turbo\n", "poll_s: Input should be a valid number (got 'fast')"),
    ("poll_s: -5\nmodel: gpt-3.5-turbo\n", "poll_s: Input should be greater than or equal to 0 (got -5)"),
    ("poll_s: .nan\nmodel: gpt-3.5-turbo\n", "poll_s: Input should be a finite number (got nan)"),
    (f"suffix: {'x' * 65}\nmodel: gpt-3.5-turbo\n", f"suffix: String should have at most 64 characters (got '{'x' * 65}')"),
    ("seed: 1.5\nmodel: gpt-3.5-turbo\n", "seed: Input should be a valid integer (got 1.5)"),
    ("model: 3.5\n", "model: Input should be a valid string (got 3.5)"),
    ("suffix: ft\n", "missing required key 'model'"),
    ("model: gpt-3.5-turbo\nepochs: 3\n", "unknown key(s) epochs; known: ['model', 'n_epochs', 'poll_s', 'seed', 'suffix', 'training_file', 'validation_file']"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "says"), BAD_RECIPES, ids=[says for _, says in BAD_RECIPES])
def test_a_bad_recipe_value_is_refused_before_any_request(
    server: OpenAIFTServer, tmp_path: Path, text: str, says: str
) -> None:
    recipe = recipe_file(tmp_path, text)
    with pytest.raises(FireactError) as err:
        ft.run_recipe(recipe, echo=lambda _: None)
    assert str(err.value) == f"{recipe}: {says}"
    assert server.calls == [] and server.files == {} and server.jobs == {}


def test_a_bad_validation_file_is_refused_before_the_training_file_is_uploaded(
    server: OpenAIFTServer, tmp_path: Path
) -> None:
    few = small_file(tmp_path / "few.jsonl", n=3)
    recipe = recipe_file(tmp_path, f"model: gpt-3.5-turbo\nvalidation_file: {few}\n")
    with pytest.raises(FireactError) as err:
        ft.run_recipe(recipe, echo=lambda _: None)
    assert str(err.value) == (
        f"{few}: 1 format error(s), not uploaded; first: 3 examples: OpenAI needs at least 10"
        f" to fine-tune (see: fireact convert --check {few})"
    )
    missing = tmp_path / "missing.jsonl"
    recipe.write_text(f"training_file: {missing}\nmodel: gpt-3.5-turbo\n")
    with pytest.raises(FireactError) as err:
        ft.run_recipe(recipe, echo=lambda _: None)
    assert str(err.value) == f"{missing}: file not found"
    assert server.calls == []


def test_a_recipe_with_a_validation_file_uploads_both_then_runs_the_job(
    server: OpenAIFTServer, tmp_path: Path
) -> None:
    valid = small_file(tmp_path / "valid.jsonl")
    recipe = recipe_file(tmp_path, f"model: gpt-4o-mini\nvalidation_file: {valid}\npoll_s: 0\n")
    printed: list[str] = []
    job = ft.run_recipe(recipe, echo=printed.append)
    training, validation = server.files
    assert (job["training_file"], job["validation_file"]) == (training, validation)
    assert job["status"] == "succeeded"
    assert printed[:2] == [f"uploaded {training} and {validation}", f"created {job['id']}"]
    at = f"/v1/fine_tuning/jobs/{job['id']}"
    assert (
        server.calls
        == ["POST /v1/files", "POST /v1/files", "POST /v1/fine_tuning/jobs"] + [f"GET {at}"] * 3
    )


def test_check_options_names_the_command_line_flags() -> None:
    with pytest.raises(FireactError) as err:
        ft.check_options(
            {"model": "gpt-3.5-turbo", "n_epochs": 0, "poll_s": float("nan")}, flags=True
        )
    assert str(err.value) == (
        "--n-epochs: Input should be greater than or equal to 1 (got 0);"
        " --poll-s: Input should be a finite number (got nan)"
    )
    with pytest.raises(FireactError) as err:
        ft.check_options({"model": "gpt-3.5-turbo", "n_epoch": 3}, flags=True)
    assert str(err.value) == (
        "unknown key(s) --n-epoch; known: ['--model', '--n-epochs', '--poll-s', '--seed', '--suffix']"
    )
    assert ft.check_options({"model": "gpt-4o-mini", "poll_s": 2}).poll_s == 2.0


def test_wait_checks_its_seconds_before_polling(server: OpenAIFTServer) -> None:
    with pytest.raises(FireactError) as err:
        ft.wait("ftjob-x", poll_s=-1)
    assert str(err.value) == "poll_s: expected a finite number of seconds >= 0, got -1"
    with pytest.raises(FireactError) as err:
        ft.wait("ftjob-x", poll_s=1, timeout_s=float("nan"))
    assert str(err.value) == "timeout_s: expected a finite number of seconds >= 0, got nan"
    assert server.calls == []


def test_cli_run_with_a_bad_recipe_value_is_one_line_and_sends_nothing(
    server: OpenAIFTServer, tmp_path: Path
) -> None:
    recipe = recipe_file(tmp_path, "model: gpt-3.5-turbo\nn_epochs: three\n")
    result = run_cli("openai-ft", "run", str(recipe), "--base-url", server.base_url)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: {recipe}: n_epochs: Input should be a valid integer (got 'three')"
    ]
    assert server.calls == []


# -- answers the API does not promise --------------------------------------------------------
PROXY_PAGE = (
    "answered 200 with an HTML page ('Proxy sign-in') instead of the API's JSON;"
    " check base_url / OPENAI_BASE_URL (or a proxy in between)"
)
BAD_GATEWAY = (
    "answered 502 with an HTML page ('502 Bad Gateway') instead of the API's JSON;"
    " check base_url / OPENAI_BASE_URL (or a proxy in between)"
)
NO_JOB = "answered 200 without 'id' and 'status' (got {\"object\": \"fine_tuning.job\"}); check base_url / OPENAI_BASE_URL"
NO_FILE = 'answered 200 without \'id\' (got {"object": "file"}); check base_url / OPENAI_BASE_URL'
NO_DATA = 'answered 200 without \'data\' (got {"object": "list"}); check base_url / OPENAI_BASE_URL'
FILES, JOBS = "POST /v1/files", "POST /v1/fine_tuning/jobs"
JOB, EVENTS = "GET /v1/fine_tuning/jobs/{job_id}", "GET /v1/fine_tuning/jobs/{job_id}/events"
CANCEL, LIST = "POST /v1/fine_tuning/jobs/{job_id}/cancel", "GET /v1/fine_tuning/jobs"

# (command, route that misbehaves, how, the error: <path>, <url>, <file> and <job> filled in)
BROKEN = [
    ("upload", FILES, "html", f"uploading <path>: POST <url>/files {PROXY_PAGE}"),
    ("upload", FILES, "bare", f"uploading <path>: POST <url>/files {NO_FILE}"),
    ("create", JOBS, "html", f"creating a fine-tuning job on <file>: POST <url>/fine_tuning/jobs {PROXY_PAGE}"),
    ("create", JOBS, "bare", f"creating a fine-tuning job on <file>: POST <url>/fine_tuning/jobs {NO_JOB}"),
    ("status", JOB, "html", f"reading fine-tuning job <job>: GET <url>/fine_tuning/jobs/<job> {PROXY_PAGE}"),
    ("status", JOB, "bare", f"reading fine-tuning job <job>: GET <url>/fine_tuning/jobs/<job> {NO_JOB}"),
    ("status", EVENTS, "bare", f"reading the events of fine-tuning job <job>: GET <url>/fine_tuning/jobs/<job>/events {NO_DATA}"),
    ("cancel", CANCEL, "html", f"cancelling fine-tuning job <job>: POST <url>/fine_tuning/jobs/<job>/cancel {PROXY_PAGE}"),
    ("cancel", CANCEL, "bare", f"cancelling fine-tuning job <job>: POST <url>/fine_tuning/jobs/<job>/cancel {NO_JOB}"),
    ("list", LIST, "bare", f"listing fine-tuning jobs: GET <url>/fine_tuning/jobs {NO_DATA}"),
    ("list", LIST, "bad_gateway", f"listing fine-tuning jobs: GET <url>/fine_tuning/jobs {BAD_GATEWAY}"),
    ("wait", JOB, "bad_gateway", f"reading fine-tuning job <job>: GET <url>/fine_tuning/jobs/<job> {BAD_GATEWAY}"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "route", "how", "says"), BROKEN, ids=[f"{c}-{r}-{h}" for c, r, h, _ in BROKEN]
)
def test_an_answer_the_api_does_not_promise_is_one_line_naming_the_endpoint(
    server: OpenAIFTServer, tmp_path: Path, command: str, route: str, how: str, says: str
) -> None:
    path = small_file(tmp_path / "t.jsonl")
    file_id = ft.upload(path)
    job_id = ft.create(file_id, "gpt-3.5-turbo")["id"]
    server.broken = {route: how}
    calls = {
        "upload": lambda: ft.upload(path),
        "create": lambda: ft.create(file_id, "gpt-3.5-turbo"),
        "status": lambda: ft.status(job_id),
        "cancel": lambda: ft.cancel(job_id),
        "list": lambda: ft.list_jobs(max_retries=0),
        "wait": lambda: ft.wait(job_id, poll_s=0, echo=lambda _: None, max_retries=0),
    }
    with pytest.raises(FireactError) as err:
        calls[command]()
    fills = {"<path>": str(path), "<url>": server.base_url, "<file>": file_id, "<job>": job_id}
    for placeholder, value in fills.items():
        says = says.replace(placeholder, value)
    assert str(err.value) == says
    assert SECRET not in str(err.value)


def test_cli_status_behind_a_proxy_page_is_one_line(server: OpenAIFTServer) -> None:
    server.broken = {JOB: "html"}
    result = run_cli(
        "openai-ft", "status", "ftjob-abc", "--base-url", server.base_url,
        env={"OPENAI_API_KEY": SECRET},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: reading fine-tuning job ftjob-abc: GET {server.base_url}/fine_tuning/jobs/ftjob-abc "
        + PROXY_PAGE
    ]
