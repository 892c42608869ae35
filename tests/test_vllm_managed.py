"""The managed vLLM backend against a fake ``vllm`` executable on PATH (tests/helpers/fake_vllm.py):
start, health wait, a run through the openai backend, shutdown, crash at start, crash mid-run,
signals during the model load, the run folder checked before the load, the LoRA rank and extra
arguments, the progress line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fireact.agent import RunOptions, run
from fireact.errors import FireactError
from fireact.llm.vllm import (
    ADAPTER_NAME,
    FIRST_NOTE_S,
    VLLMLLM,
    VLLMServer,
    adapter_lora_rank,
    free_port,
)
from tests.helpers.clirun import run_cli
from tests.helpers.fake_vllm import install
from tests.helpers.runs import options, tool

INTERRUPTED = "finished work is saved; rerun with --resume to continue"


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch):
    """A fake vllm first on PATH; returns the file its received command line is written to."""
    install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    args_file = tmp_path / "vllm-args.json"
    monkeypatch.setenv("FAKE_VLLM_ARGS", str(args_file))
    monkeypatch.setenv("FAKE_VLLM_PID", str(tmp_path / "vllm.pid"))
    return args_file


def alive(pid: int) -> bool:
    """True while the process runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def server_pid(tmp_path: Path, within: float = 10.0) -> int:
    """The fake server's pid, once it has started (it writes the file first thing)."""
    path = tmp_path / "vllm.pid"
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, "the vllm server did not start"
        time.sleep(0.05)
    return int(path.read_text())


def start_cli(*args: str) -> subprocess.Popen[str]:
    """``fireact ARGS`` in the background (for signals); stderr captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "fireact", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_args(out: Path, model: str = "vllm:tiny-base") -> list[str]:
    return ["run", "--task", "hotpotqa", "--end", "1", "--model", model, "--format", "alpaca",
            "--out", str(out)]  # fmt: skip


def lora_adapter(folder: Path, rank: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank}))
    return folder


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


@pytest.mark.parametrize(("r", "rank"), [(1, 1), (4, 8), (16, 16), (20, 32), (300, 320)])
def test_the_lora_rank_is_the_smallest_vllm_accepts_that_holds_the_adapter(tmp_path, r, rank):
    assert adapter_lora_rank(str(lora_adapter(tmp_path / "lora", r))) == rank


def test_an_explicit_lora_rank_wins_and_a_hub_adapter_gets_vllm_s_default(tmp_path):
    adapter = lora_adapter(tmp_path / "lora", 64)
    assert VLLMServer("m", str(adapter), max_lora_rank=128, port=1).max_lora_rank == 128
    assert VLLMServer("m", "someone/hub-adapter", port=1).max_lora_rank is None


def test_the_run_options_reach_the_server_command(tmp_path):
    from fireact.agent.runner import build_llm

    adapter = lora_adapter(tmp_path / "lora", 64)
    llm = build_llm(
        RunOptions(task="hotpotqa", model=f"vllm:m:{adapter}", out=tmp_path / "run",
                   vllm_max_lora_rank=128, vllm_args="--max-num-seqs 8 --enforce-eager")
    )  # fmt: skip
    assert llm.server.command() == [
        "vllm", "serve", "m", "--host", "127.0.0.1", "--port", str(llm.server.port),
        "--enable-prefix-caching", "--enable-lora", "--lora-modules", f"{ADAPTER_NAME}={adapter}",
        "--max-lora-rank", "128", "--max-num-seqs", "8", "--enforce-eager",
    ]  # fmt: skip
    assert llm.server.process is None  # built, not started: the run starts it after its checks


def test_a_lora_rank_without_an_adapter_is_refused(tmp_path):
    with pytest.raises(FireactError) as info:
        RunOptions(task="hotpotqa", model="vllm:m", out=tmp_path, vllm_max_lora_rank=64)
    assert str(info.value) == (
        "run options: vllm_max_lora_rank: only a vllm:MODEL:ADAPTER model serves a LoRA adapter"
    )


def test_a_lora_rank_vllm_cannot_serve_is_one_line(tmp_path):
    adapter = lora_adapter(tmp_path / "lora", 1024)
    with pytest.raises(FireactError) as info:
        VLLMServer("m", str(adapter), port=1)
    assert str(info.value) == (
        f"{adapter / 'adapter_config.json'}: field r: rank 1024 is above the largest LoRA rank "
        "vLLM serves (512)"
    )


def test_vllm_args_with_an_unclosed_quote_name_the_field(tmp_path):
    with pytest.raises(FireactError) as info:
        RunOptions(task="hotpotqa", model="vllm:m", out=tmp_path, vllm_args="--x 'a b")
    assert str(info.value) == (
        "run option 'vllm_args' = \"--x 'a b\": cannot split it as a shell would (No closing "
        "quotation)"
    )


def test_start_waits_for_health_then_stop_ends_the_process(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_READY_S", "1.0")
    server = VLLMServer("tiny-base", log_path=tmp_path / "vllm.log")
    started = time.monotonic()
    server.start(progress=lambda message: None)
    assert time.monotonic() - started >= 1.0 and server.healthy()
    pid = server.process.pid
    server.stop()
    assert not alive(pid)
    assert not server.healthy()
    assert "Application startup complete" in (tmp_path / "vllm.log").read_text()


def test_a_run_through_the_managed_server_completes_and_stops_it(fake_vllm, tmp_path):
    llm = VLLMLLM(
        "tiny-base", "adapter-dir", server_options={"log_path": tmp_path / "vllm.log"},
        api="completions",
    )  # fmt: skip
    assert llm.server.process is None  # building starts nothing: the first call does
    summary = run(options(tmp_path, n=6, format="alpaca"), llm=llm, tool=tool())
    pid = llm.server.process.pid
    asyncio.run(llm.aclose())
    assert (summary["done"], summary["finished"], summary["errors"]) == (6, 6, 0)
    sent = json.loads(fake_vllm.read_text())
    assert "--enable-prefix-caching" in sent and f"{ADAPTER_NAME}=adapter-dir" in sent
    records = [
        json.loads(x) for x in (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()
    ]
    assert all(r["steps"] == 2 and r["prediction"] == "done" for r in records)
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


def test_a_crash_mid_run_stops_the_run_at_once_and_resumably(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_MODE", "crash_after:5")
    log = tmp_path / "vllm.log"
    llm = VLLMLLM("tiny-base", server_options={"log_path": log}, api="completions")
    asyncio.run(llm.start(progress=lambda message: None))  # the default 6 retries, 1 s backoff
    started = time.monotonic()
    with pytest.raises(FireactError) as info:
        run(options(tmp_path, n=6, format="alpaca", concurrency=1), llm=llm, tool=tool())
    stopped_after = time.monotonic() - started
    asyncio.run(llm.aclose())
    assert stopped_after < 5.0  # was ~40 s: noticed only after every retry
    message = str(info.value)
    assert message.startswith(f"vLLM exited with code 1 during the run (log {log}): ")
    assert "Engine core died unexpectedly" in message and message.endswith("rerun with --resume")
    done = (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()
    assert len(done) == 2  # 5 answers: two whole episodes, the third lost its server
    monkeypatch.setenv("FAKE_VLLM_MODE", "ok")
    again = VLLMLLM("tiny-base", server_options={"log_path": log}, api="completions")
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


def test_the_adapter_s_rank_and_extra_arguments_reach_vllm_serve(fake_vllm, tmp_path):
    adapter = lora_adapter(tmp_path / "lora", 64)
    args = run_args(tmp_path / "run", f"vllm:tiny-base:{adapter}")
    result = run_cli(*args, "--vllm-args", "--enforce-eager --max-num-seqs 8")
    assert result.returncode == 0, result.stderr
    sent = json.loads(fake_vllm.read_text())
    port = sent[sent.index("--port") + 1]
    assert sent == [
        "serve", "tiny-base", "--host", "127.0.0.1", "--port", port, "--enable-prefix-caching",
        "--enable-lora", "--lora-modules", f"{ADAPTER_NAME}={adapter}", "--max-lora-rank", "64",
        "--enforce-eager", "--max-num-seqs", "8",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_signal_during_the_model_load_stops_it_at_once(
    fake_vllm, tmp_path, monkeypatch, sig, code, word
):
    monkeypatch.setenv("FAKE_VLLM_READY_S", "30")
    cli = start_cli(*run_args(tmp_path / "run"))
    pid = server_pid(tmp_path)
    time.sleep(0.3)  # fireact is waiting for /health
    cli.send_signal(sig)
    sent_at = time.monotonic()
    _, stderr = cli.communicate(timeout=30)
    assert (cli.returncode, stderr) == (code, f"{word}: {INTERRUPTED}\n")
    assert time.monotonic() - sent_at < 3.0  # was ~28 s: acted on only once vLLM was healthy
    assert not alive(pid)


def test_a_second_ctrl_c_while_vllm_shuts_down_kills_it(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_READY_S", "30")
    monkeypatch.setenv("FAKE_VLLM_TERM_S", "30")  # ignores SIGTERM for 30 s
    log = tmp_path / "run" / "vllm.log"
    cli = start_cli(*run_args(tmp_path / "run"))
    pid = server_pid(tmp_path)
    cli.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    while "INFO: shutting down (takes 30 s)" not in log.read_text():  # it got SIGTERM
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    assert cli.poll() is None and alive(pid)  # fireact waits for the server to exit
    cli.send_signal(signal.SIGINT)
    sent_at = time.monotonic()
    _, stderr = cli.communicate(timeout=30)
    assert (cli.returncode, stderr) == (130, f"interrupted: {INTERRUPTED}\n")
    assert time.monotonic() - sent_at < 3.0  # SIGKILL at once, not after the 15 s grace
    assert not alive(pid)


def test_a_non_empty_run_folder_is_refused_before_the_model_loads(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_READY_S", "30")
    out = tmp_path / "run"
    out.mkdir()
    (out / "episodes.jsonl").write_text('{"id": "x"}\n')
    (out / "vllm.log").write_text("INFO: the earlier run's server\n")
    started = time.monotonic()
    result = run_cli(*run_args(out))
    assert time.monotonic() - started < 10.0
    assert (result.returncode, result.stderr) == (
        2,
        f"error: out: {out} is not empty; pass --resume to continue that run or --overwrite "
        "to replace it\n",
    )
    assert (out / "vllm.log").read_text() == "INFO: the earlier run's server\n"
    assert not fake_vllm.exists()  # vllm serve never ran


def test_a_long_load_shows_the_progress_line(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_READY_S", str(FIRST_NOTE_S + 0.8))
    result = run_cli(*run_args(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("waiting for vLLM to load tiny-base (") and first.endswith(" s)")
    waited = int(first.rsplit("(", 1)[1].removesuffix(" s)"))
    assert FIRST_NOTE_S <= waited <= FIRST_NOTE_S + 1  # the first look past FIRST_NOTE_S
