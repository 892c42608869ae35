"""OpenAI fine-tuning jobs (fireact.train.openai_ft) against a real local server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from conftest import SHARED_DATA
from openai_ft_server import OpenAIFTServer

from fireact.errors import FireactError
from fireact.train import openai_ft as ft

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
    assert server.files == {} and server.requests == []


def test_create_errors(server: OpenAIFTServer) -> None:
    with pytest.raises(FireactError) as err:
        ft.create("file-missing", "gpt-3.5-turbo")
    assert str(err.value) == (
        "creating a fine-tuning job on file-missing: API error 400: invalid training_file: file-missing"
    )
    with pytest.raises(FireactError, match="n_epochs must be at least 1"):
        ft.create("file-x", "gpt-3.5-turbo", n_epochs=0)
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
