"""The managed vLLM backend against a fake ``vllm`` executable on PATH (tests/helpers/fake_vllm.py):
start, health wait, a run through the openai backend, shutdown, crash at start, crash mid-run."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from fireact.agent import run
from fireact.errors import FireactError
from fireact.llm.vllm import ADAPTER_NAME, VLLMLLM, VLLMServer, free_port
from tests.helpers.clirun import run_cli
from tests.helpers.fake_vllm import install
from tests.helpers.runs import options, tool


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch):
    """A fake vllm first on PATH; returns the file its received command line is written to."""
    install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    args_file = tmp_path / "vllm-args.json"
    monkeypatch.setenv("FAKE_VLLM_ARGS", str(args_file))
    return args_file


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_command_line_asks_for_prefix_caching_lora_and_the_options():
    server = VLLMServer(
        "meta-llama/Llama-2-7b-hf", "runs/lora", dtype="bfloat16", max_model_len=2048,
        gpu_memory_utilization=0.85, max_lora_rank=8, port=8123, log_path="x.log",
    )  # fmt: skip
    assert server.command() == [
        "vllm", "serve", "meta-llama/Llama-2-7b-hf", "--host", "127.0.0.1", "--port", "8123",
        "--enable-prefix-caching", "--enable-lora", "--lora-modules", f"{ADAPTER_NAME}=runs/lora",
        "--max-lora-rank", "8", "--dtype", "bfloat16", "--max-model-len", "2048",
        "--gpu-memory-utilization", "0.85",
    ]  # fmt: skip
    assert server.served_model == ADAPTER_NAME


def test_start_waits_for_health_then_stop_ends_the_process(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_READY_S", "1.0")
    server = VLLMServer("tiny-base", log_path=tmp_path / "vllm.log")
    started = time.monotonic()
    server.start(progress=lambda message: None)
    assert time.monotonic() - started >= 1.0 and server.healthy()
    pid = server.process.pid
    server.stop()
    assert not alive(pid) or os.waitpid(pid, os.WNOHANG)
    assert not server.healthy()
    assert "Application startup complete" in (tmp_path / "vllm.log").read_text()


def test_a_run_through_the_managed_server_completes_and_stops_it(fake_vllm, tmp_path):
    llm = VLLMLLM(
        "tiny-base", "adapter-dir", server_options={"log_path": tmp_path / "vllm.log"},
        api="completions",
    )  # fmt: skip
    pid = llm.server.process.pid
    summary = run(options(tmp_path, n=6, format="alpaca"), llm=llm, tool=tool())
    asyncio.run(llm.aclose())
    assert (summary["done"], summary["finished"], summary["errors"]) == (6, 6, 0)
    sent = json.loads(fake_vllm.read_text())
    assert "--enable-prefix-caching" in sent and f"{ADAPTER_NAME}=adapter-dir" in sent
    records = [
        json.loads(x) for x in (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()
    ]
    assert all(r["steps"] == 2 and r["prediction"] == "done" for r in records)
    time.sleep(0.2)
    assert not alive(pid)


def test_vllm_missing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FireactError) as info:
        VLLMServer("m", log_path=tmp_path / "l.log").start()
    assert str(info.value) == (
        "vllm:m: the vllm command is not installed: pip install 'fireact[vllm]' (vLLM needs a "
        "CUDA GPU)"
    )


def test_a_crash_at_start_is_one_line_with_the_log_tail(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_MODE", "crash_at_start")
    log = tmp_path / "vllm.log"
    port = free_port()
    with pytest.raises(FireactError) as info:
        VLLMServer("tiny-base", log_path=log, port=port).start()
    assert str(info.value) == (
        f"vLLM exited with code 1 before it was ready (log {log}): INFO: starting vLLM API "
        f"server for tiny-base on port {port} (crash_at_start) | ERROR: "
        "torch.OutOfMemoryError: CUDA out of memory."
    )


def test_a_crash_mid_run_stops_the_run_resumably(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_MODE", "crash_after:5")
    llm = VLLMLLM(
        "tiny-base", server_options={"log_path": tmp_path / "vllm.log"}, api="completions",
        max_retries=1, retry_base_delay=0.01,
    )  # fmt: skip
    with pytest.raises(FireactError) as info:
        run(options(tmp_path, n=6, format="alpaca", concurrency=1), llm=llm, tool=tool())
    asyncio.run(llm.aclose())
    message = str(info.value)
    assert message.startswith("vLLM exited with code 1 during the run")
    assert "Engine core died unexpectedly" in message and message.endswith("rerun with --resume")
    done = (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()
    assert len(done) == 2  # 5 answers: two whole episodes, the third lost its server
    monkeypatch.setenv("FAKE_VLLM_MODE", "ok")
    again = VLLMLLM(
        "tiny-base", server_options={"log_path": tmp_path / "vllm.log"}, api="completions"
    )
    resumed = run(options(tmp_path, n=6, format="alpaca", resume=True), llm=again, tool=tool())
    asyncio.run(again.aclose())
    assert (resumed["done"], resumed["episodes_run"]) == (6, 4)


def test_fireact_run_with_a_vllm_model_starts_runs_and_stops_the_server(fake_vllm, tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "run", "--task", "hotpotqa", "--end", "3", "--model", "vllm:tiny-base:adapter-dir",
        "--format", "alpaca", "--vllm-max-model-len", "2048", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["n"], summary["finished"], summary["errors"]) == (3, 3, 0)
    sent = json.loads(fake_vllm.read_text())
    assert sent[:2] == ["serve", "tiny-base"] and "--max-model-len" in sent
    log = (out / "vllm.log").read_text()
    assert log.count("(completions)") == 6  # alpaca text prompts go to the completions API
    port = int(sent[sent.index("--port") + 1])
    assert not VLLMServer("x", port=port, log_path=tmp_path / "x.log").healthy()
