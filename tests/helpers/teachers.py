"""A deterministic ReAct teacher for the local OpenAI server and the CLI runs against it:
N questions, the CLI arguments, slow runs to interrupt, and records without their timings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

N = 16
TIMINGS = ("wall_s", "llm_latency_s", "tool_latency_s", "latency_s")


def teacher(request) -> str:
    """Search the question's first two words, then answer with the third: a function of the
    request alone, so retries and reorderings cannot change what an episode sees."""
    tail = request.text.rsplit("\n\n", 1)[-1]
    words = tail.split()
    if "Observation:" in tail:
        return f" I have it.\nAction: finish[{words[2]}]"
    return f" I should search.\nAction: search[{' '.join(words[:2])}]"


def questions(tmp_path: Path) -> Path:
    """N questions whose third word is the teacher's answer; half of them have it as gold."""
    rows = [
        {
            "_id": f"q{i}",
            "question": f"Who is answer{i} here?",
            "answer": f"answer{i}" if i % 2 else "x",
        }
        for i in range(N)
    ]
    path = tmp_path / "questions.json"
    path.write_text(json.dumps(rows))
    return path


def cli_args(base_url: str, out: Path, *extra: str) -> list[str]:
    return [
        "--task", "hotpotqa", "--data", str(questions(out.parent)), "--model", "openai:gpt-4",
        "--base-url", base_url, "--tool-style", "wiki", "--concurrency", "8",
        "--llm-timeout", "1", "--retry-delay", "0.02", "--out", str(out), *extra,
    ]  # fmt: skip


def strip(value):
    """A record without its timings (they differ from run to run)."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def records_in(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return sorted((strip(r) for r in rows), key=lambda r: r["id"])


def records(out: Path) -> list[dict]:
    return records_in(out / "episodes.jsonl")


def start_slow_run(base_url: str, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = cli_args(base_url, out)
    args[args.index("8")] = "2"  # concurrency 2: the run takes a while
    return subprocess.Popen(
        [sys.executable, "-m", "fireact", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # a test runner started in the background inherits SIGINT as ignored; a user's
        # terminal does not: give the child the default disposition, as a shell would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_lines(path: Path, n: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().count("\n") >= n:
            return path.read_text().count("\n")
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {n} lines")
